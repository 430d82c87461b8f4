"""Every failure the bridge knows, with one retry meaning per branch.

    BridgeError                       error_type, message, details
    ├── TransientError                retry later: the source redelivers
    │   ├── ThrottledError            429 after our retries (throttled)
    │   ├── UnavailableError          5xx, connection refused or reset, bad reply (unavailable)
    │   ├── SalesmanagoTimeoutError   no reply in time, nothing sent twice (timeout)
    │   ├── OutcomeUnknownError       an event may or may not exist now (outcome_unknown)
    │   ├── DeadLetterUnavailableError the dead-letter queue refused the message (dead_letter_failed)
    │   ├── DeadlineError             not started, the Lambda deadline is near (deadline)
    │   ├── HeldForOrderError         not started, an earlier command of its contact failed (held_for_order)
    │   ├── EventInFlightError        the same event is being sent by another invocation (event_in_flight)
    │   ├── RequestInProgressError    the same Idempotency-Key is being served right now (request_in_progress)
    │   └── InternalError             an unexpected exception in our code (internal)
    └── PermanentError                never retry: dead-letter with the reason
        ├── ValidationFailedError     the payload breaks the contract (validation)
        ├── UnmappedFieldError        a field no model or field map takes (unmapped_field)
        ├── UnknownGroupError         no config for that group_key (unknown_group)
        ├── GroupConfigError          the group's config is unusable (invalid_group_config)
        ├── AuthError                 SALESmanago refused our credentials (auth)
        ├── IdempotencyConflictError  an event id reused for other content (idempotency_conflict)
        └── SalesmanagoRejectedError  SALESmanago refused the payload (salesmanago_rejected)

Messages name the field and the problem, never the value: payloads carry personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from salesmanago_bridge.privacy import scrub


class ErrorType(StrEnum):
    """The fixed list shared by dead-letter reasons, metrics and API error codes."""

    VALIDATION = "validation"
    UNMAPPED_FIELD = "unmapped_field"
    UNKNOWN_GROUP = "unknown_group"
    INVALID_GROUP_CONFIG = "invalid_group_config"
    AUTH = "auth"
    SALESMANAGO_REJECTED = "salesmanago_rejected"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    OUTCOME_UNKNOWN = "outcome_unknown"
    DEAD_LETTER_FAILED = "dead_letter_failed"
    DEADLINE = "deadline"
    HELD_FOR_ORDER = "held_for_order"
    EVENT_IN_FLIGHT = "event_in_flight"
    REQUEST_IN_PROGRESS = "request_in_progress"
    INVALID_SETTINGS = "invalid_settings"
    INTERNAL = "internal"


@dataclass(frozen=True)
class FieldProblem:
    """One failing field: a dotted path such as ``data.products[3].url`` and what is wrong."""

    field: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        # A field path can hold producer text (an unknown key, a map key): mask e-mails in it.
        return {"field": scrub(self.field), "problem": scrub(self.problem)}


class BridgeError(Exception):
    """Root of the bridge's errors; ``retryable`` tells the consumers what to do."""

    error_type: ErrorType
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        details: list[FieldProblem] | None = None,
        status: int | None = None,
        group_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.status = status
        self.group_key = group_key

    def describe(self) -> str:
        """The message with the group and every failing field: safe to log and to return."""
        text = f"group {self.group_key}: {self.message}" if self.group_key else self.message
        if self.details:
            text += " (" + "; ".join(f"{d.field}: {d.problem}" for d in self.details) + ")"
        return scrub(text)

    def __str__(self) -> str:
        return f"[{self.error_type}] {self.describe()}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(error_type={self.error_type!s}, status={self.status!r})"

    def as_reason(self) -> dict[str, Any]:
        """The JSON-safe part of a dead-letter reason or API error body."""
        return {
            "error_type": str(self.error_type),
            "error_message": self.describe(),
            "details": [d.as_dict() for d in self.details],
        }


def aws_refusal(exc: BaseException) -> dict[str, str]:
    """The AWS operation and error code behind ``exc`` (from botocore's ClientError in its chain).

    Only the operation name and AWS's error code: never the error message, which can quote a
    resource name or a value.
    """
    seen: BaseException | None = exc
    for _ in range(8):  # a bounded walk: chains are short, and a cycle must not loop forever
        if seen is None:
            break
        response = getattr(seen, "response", None)
        operation = getattr(seen, "operation_name", None)
        if isinstance(response, dict) and isinstance(operation, str):
            code = (response.get("Error") or {}).get("Code")
            return {"aws_operation": operation, "aws_error_code": str(code or "unknown")}
        seen = seen.__cause__ or seen.__context__
    return {}


class TransientError(BridgeError):
    """Raised when trying again later may succeed; the source must redeliver."""

    retryable = True
    error_type = ErrorType.UNAVAILABLE

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class ThrottledError(TransientError):
    """Raised when SALESmanago still answers 429 after the in-call retries."""

    error_type = ErrorType.THROTTLED


class UnavailableError(TransientError):
    """Raised on 5xx, refused or reset connections and replies that are not JSON."""

    error_type = ErrorType.UNAVAILABLE


class SalesmanagoTimeoutError(TransientError):
    """Raised when SALESmanago does not answer within the read timeout."""

    error_type = ErrorType.TIMEOUT


class OutcomeUnknownError(TransientError):
    """Raised when a non-idempotent call (an event) may have been applied but no reply came."""

    error_type = ErrorType.OUTCOME_UNKNOWN


class DeadLetterUnavailableError(TransientError):
    """Raised when a permanent failure could not be parked in the dead-letter queue."""

    error_type = ErrorType.DEAD_LETTER_FAILED


class DeadlineError(TransientError):
    """Raised for work not started because the Lambda deadline is too close."""

    error_type = ErrorType.DEADLINE


class HeldForOrderError(TransientError):
    """Raised for a command held back because an earlier one of the same contact must succeed first."""

    error_type = ErrorType.HELD_FOR_ORDER


class EventInFlightError(TransientError):
    """Raised when another invocation holds the claim on the same event and may still send it."""

    error_type = ErrorType.EVENT_IN_FLIGHT


class RequestInProgressError(TransientError):
    """Raised when a request with the same Idempotency-Key is still being served."""

    error_type = ErrorType.REQUEST_IN_PROGRESS


class InternalError(TransientError):
    """Raised in place of an unexpected exception, so the message is retried and then parked."""

    error_type = ErrorType.INTERNAL


class PermanentError(BridgeError):
    """Raised when retrying cannot help; the command is dead-lettered with its reason."""

    retryable = False
    error_type = ErrorType.SALESMANAGO_REJECTED


class ValidationFailedError(PermanentError):
    """Raised when a payload breaks the contract; ``details`` lists every failing field."""

    error_type = ErrorType.VALIDATION


class UnmappedFieldError(PermanentError):
    """Raised when ``data`` holds a field that neither the model nor the group's field map takes."""

    error_type = ErrorType.UNMAPPED_FIELD


class UnknownGroupError(PermanentError):
    """Raised when no config exists for a ``group_key``."""

    error_type = ErrorType.UNKNOWN_GROUP


class GroupConfigError(PermanentError):
    """Raised when a group's stored config is not a valid ``GroupConfig``."""

    error_type = ErrorType.INVALID_GROUP_CONFIG


class AuthError(PermanentError):
    """Raised when SALESmanago rejects the group's credentials (v2 sha, v3 API key)."""

    error_type = ErrorType.AUTH


class SalesmanagoRejectedError(PermanentError):
    """Raised when SALESmanago refuses the request itself (``success: false``, v3 ``problems``)."""

    error_type = ErrorType.SALESMANAGO_REJECTED
