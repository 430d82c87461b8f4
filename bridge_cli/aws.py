"""The AWS side of every command: ``--stage``, ``--region``, ``--profile`` and the clients they give."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bridge_cli.errors import UsageError, explain_aws_error
from salesmanago_bridge.settings import Settings, SettingsError

# botocore's own retries (throttling, 5xx, connection resets) before a call is reported as failed.
CLIENT_MAX_ATTEMPTS = 5
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
DEFAULT_STACK_PREFIX = "salesmanago-bridge"
STACK_ENV = "BRIDGE_STACK"


def default_stage() -> str:
    """``STAGE`` through the project's one settings model, ``dev`` when unset or unusable."""
    try:
        return Settings.from_env().stage
    except SettingsError:
        return "dev"


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    """The options every command takes."""
    group = parser.add_argument_group("stage and AWS")
    group.add_argument(
        "--stage", default=default_stage(), help="deployment stage (default: $STAGE, else dev)"
    )
    group.add_argument("--region", help="AWS region (default: your AWS config or $AWS_REGION)")
    group.add_argument("--profile", help="AWS named profile (default: $AWS_PROFILE)")
    # Hidden: a local AWS (moto server, LocalStack). boto3 also honours $AWS_ENDPOINT_URL.
    group.add_argument("--endpoint-url", help=argparse.SUPPRESS)


class TakesArguments(Protocol):
    """A parser or an argument group: anything ``add_argument`` can be called on."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Any: ...


def add_stack_option(parser: TakesArguments) -> None:
    parser.add_argument(
        "--stack",
        default=os.environ.get(STACK_ENV),
        help=f"CloudFormation stack of the bridge (default: ${STACK_ENV}, else {DEFAULT_STACK_PREFIX}-STAGE)",
    )


@dataclass
class AwsContext:
    """Lazily built boto3 session and clients for one command run."""

    stage: str
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    max_pool_connections: int = 10
    _session: Any = field(default=None, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _outputs: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AwsContext:
        stage = args.stage
        try:
            Settings.model_validate({"STAGE": stage})
        except Exception:
            raise UsageError(
                f"--stage '{stage}' is not a valid stage name (letters, digits, _ and -)"
            ) from None
        return cls(stage=stage, region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3

            try:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            except BotoCoreError as exc:
                raise explain_aws_error(exc) from None
        return self._session

    @property
    def region_name(self) -> str:
        region = self.session.region_name
        if not region:
            raise UsageError("no AWS region: pass --region or set AWS_REGION")
        return str(region)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            config = Config(
                retries={"mode": "standard", "max_attempts": CLIENT_MAX_ATTEMPTS},
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                max_pool_connections=self.max_pool_connections,
            )
            kwargs: dict[str, Any] = {"region_name": self.region_name, "config": config}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            try:
                self._clients[service] = self.session.client(service, **kwargs)
            except BotoCoreError as exc:
                raise explain_aws_error(exc) from None
        return self._clients[service]

    def stack_name(self, requested: str | None) -> str:
        return requested or f"{DEFAULT_STACK_PREFIX}-{self.stage}"

    def stack_outputs(self, stack: str) -> dict[str, str]:
        """The outputs of ``stack`` (DescribeStacks), fetched once per run.

        Raises:
            UsageError: the stack does not exist in this account and region.
        """
        if stack not in self._outputs:
            try:
                reply = self.client("cloudformation").describe_stacks(StackName=stack)
            except ClientError as exc:
                message = str(exc.response.get("Error", {}).get("Message", ""))
                if "does not exist" in message:
                    raise UsageError(
                        f"stack '{stack}' not found in {self.region_name} "
                        "(check --stack, --stage, --region and --profile)"
                    ) from None
                raise explain_aws_error(exc, f"stack {stack}") from None
            except BotoCoreError as exc:
                raise explain_aws_error(exc, f"stack {stack}") from None
            stacks = reply.get("Stacks") or []
            outputs = stacks[0].get("Outputs") or [] if stacks else []
            self._outputs[stack] = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        return self._outputs[stack]

    def stack_output(self, stack: str, key: str) -> str:
        outputs = self.stack_outputs(stack)
        if key not in outputs:
            raise UsageError(f"stack '{stack}' has no output {key}: is it a salesmanago-bridge stack?")
        return outputs[key]
