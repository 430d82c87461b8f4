"""Exit codes, the errors that stop a command, and AWS failures turned into one readable line.

CliError              exit 1: the command ran, but some items failed (a file lists them)
└── UsageError        exit 2: the arguments, a file or the environment make it impossible;
                      nothing was done (unknown stack, missing queue, no credentials, ...)
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

EXIT_OK = 0
EXIT_FAILED_ITEMS = 1
EXIT_USAGE = 2

MISSING_CODES = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",  # SQS
        "QueueDoesNotExist",
        "NotFound",  # SNS
        "NotFoundException",
        "ResourceNotFoundException",  # EventBridge
    }
)
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
REFUSED_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "AuthFailure",
    }
)
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AuthorizationError"})


class CliError(Exception):
    """Raised to end a command with a one-line message; exit 1 unless a subclass says otherwise."""

    exit_code = EXIT_FAILED_ITEMS

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    """Raised when the command cannot start: bad arguments, files, stack, queue or credentials."""

    exit_code = EXIT_USAGE


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def explain_aws_error(exc: BaseException, resource: str | None = None) -> CliError:
    """One line saying what went wrong with AWS and what to do about it; never a traceback.

    Args:
        exc: a botocore exception.
        resource: what was being used (``queue https://…``, ``topic arn:…``), for the message.
    """
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return UsageError(
            "no AWS credentials found: pass --profile, set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
        )
    if isinstance(exc, ProfileNotFound):
        return UsageError(f"AWS profile '{exc.kwargs.get('profile')}' is not in your AWS config")
    if isinstance(exc, NoRegionError):
        return UsageError("no AWS region: pass --region or set AWS_REGION")
    if isinstance(exc, EndpointConnectionError):
        return UsageError(f"cannot reach {exc.kwargs.get('endpoint_url')}: check the network and --region")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")).strip()
        what = resource or "the resource"
        if code in MISSING_CODES:
            return UsageError(f"{what} does not exist (check --stack, --region and --profile)")
        if code in EXPIRED_CODES:
            return UsageError("the AWS credentials have expired: refresh them (e.g. `aws sso login`)")
        if code in REFUSED_CODES:
            return UsageError(f"AWS refused the credentials ({code}): check --profile and --region")
        if code in DENIED_CODES:
            return UsageError(f"access denied to {exc.operation_name} on {what}: {message or code}")
        return CliError(f"AWS {exc.operation_name} on {what} failed: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        # Credential providers (SSO, assume-role) report an expired login as plain BotoCoreErrors.
        text = str(exc)
        if "sso" in type(exc).__name__.lower() or "token" in type(exc).__name__.lower():
            return UsageError(f"the AWS login has expired or is incomplete: {text} (run `aws sso login`)")
        return CliError(f"AWS call failed: {text}")
    return CliError(f"{type(exc).__name__}: {exc}")
