"""AWS faults for the chaos run, injected in botocore's event system, never in the bridge's code.

Every botocore session created while a run is alive carries two hooks (``botocore.handlers.BUILTIN_HANDLERS``,
the way moto installs its own stubber), so the clients the bridge builds for itself are reached too:
Powertools' SSM provider and idempotency store each open their own ``boto3.session.Session``.

- ``before-call`` (once per API call, after botocore's own retries would have run): answer with an
  AWS error (throttling, an internal error, a refusal) or raise a read timeout, and the call never
  reaches moto: nothing was done.
- ``after-call``: the call reached moto and took effect, then the caller gets a read timeout; the
  ambiguous case (an idempotency claim written, a dead letter accepted, and the caller not knowing).

Only the calls the bridge makes on its hot path are faulted (``TARGETS``); the harness's own calls
(creating the table, reading the dead-letter queue) pass untouched.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

TIMEOUT = "timeout"
AFTER_APPLY = "timeout_after_apply"
AFTER_ACCEPT = "timeout_after_accept"
CONTEXT_KEY = "chaos_aws_fault"


@dataclass(frozen=True)
class AwsFault:
    """One way an AWS call fails: an error reply (``status``, ``code``) or a read timeout."""

    kind: str
    weight: float
    status: int = 0
    code: str = ""
    message: str = ""

    @property
    def after(self) -> bool:
        """The call takes effect before the caller hears of the failure."""
        return self.kind in (AFTER_APPLY, AFTER_ACCEPT)


THROTTLED = "throttling"
INTERNAL = "internal_error"
REFUSED = "refused"

SSM_FAULTS = (
    AwsFault(THROTTLED, 2.0, 400, "ThrottlingException", "Rate exceeded"),
    AwsFault(INTERNAL, 1.0, 500, "InternalServerError", "An internal error occurred"),
    AwsFault(TIMEOUT, 1.0),
)
DYNAMODB_FAULTS = (
    AwsFault(THROTTLED, 1.0, 400, "ProvisionedThroughputExceededException", "Throughput exceeded"),
    AwsFault("throttling_on_demand", 1.0, 400, "ThrottlingException", "Throughput exceeds the limit"),
    AwsFault(INTERNAL, 1.0, 500, "InternalServerError", "Internal server error"),
    AwsFault(AFTER_APPLY, 1.5),
)
SQS_FAULTS = (
    AwsFault(REFUSED, 1.0, 403, "AccessDenied", "Access to the resource is denied"),
    AwsFault(THROTTLED, 1.0, 400, "RequestThrottled", "Request is throttled"),
    AwsFault(INTERNAL, 1.0, 500, "InternalError", "We encountered an internal error"),
    AwsFault(AFTER_ACCEPT, 1.5),
)
# (service, operation) -> the faults it may meet: every call the bridge makes to AWS.
TARGETS: dict[tuple[str, str], tuple[AwsFault, ...]] = {
    **{("ssm", op): SSM_FAULTS for op in ("GetParameter", "GetParameters", "GetParametersByPath")},
    **{
        ("dynamodb", op): DYNAMODB_FAULTS
        for op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem")
    },
    ("sqs", "SendMessage"): SQS_FAULTS,
}


class AwsFaultDraw:
    """Draws a fault for each targeted AWS call with probability ``rate``; counts calls and faults.

    ``on_unknown_send`` hears the body of every dead letter SQS accepted while the bridge was told
    it failed (the bridge will park it again: a dead letter written twice).
    """

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # by service
        self.drawn: Counter[tuple[str, str]] = Counter()  # by (service, kind)
        self.on_unknown_send: Callable[[str], None] = lambda body: None
        self.script: list[list[Any]] = []  # scenarios: [service, operation, kind, calls to let pass first]

    def reset(self) -> None:
        self.calls.clear()
        self.drawn.clear()
        self.script.clear()

    def inject(self, service: str, operation: str, kind: str, *, after: int = 0) -> None:
        """Scenarios: fail the next call of ``operation`` (``*``: any) with ``kind``, once ``after``
        such calls went through."""
        faults = next(f for (s, _), f in TARGETS.items() if s == service)
        if not any(fault.kind == kind for fault in faults):
            raise ValueError(f"{service} has no fault {kind!r}")
        self.script.append([service, operation, kind, after])

    def _draw(self, service: str, operation: str) -> AwsFault | None:
        faults = TARGETS.get((service, operation))
        if faults is None:
            return None
        with self._lock:
            self.calls[service] += 1
            for index, (s, op, kind, after) in enumerate(self.script):
                if s == service and op in (operation, "*"):
                    if after:
                        self.script[index][3] -= 1
                        continue
                    del self.script[index]
                    fault = next(f for f in faults if f.kind == kind)
                    break
            else:
                if self.rate <= 0 or self._rng.random() >= self.rate:
                    return None
                fault = self._rng.choices(faults, [f.weight for f in faults])[0]
            self.drawn[(service, fault.kind)] += 1
        return fault

    # ---- the hooks
    def before_call(self, model: Any, params: dict[str, Any], context: dict[str, Any]) -> Any:
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ReadTimeoutError

        fault = self._draw(model.service_model.service_name, model.name)
        if fault is None:
            return None
        if fault.after:
            context[CONTEXT_KEY] = (fault, params.get("body"))
            return None
        if fault.kind == TIMEOUT:
            raise ReadTimeoutError(endpoint_url=params.get("url", "aws"))
        parsed = {
            "Error": {"Code": fault.code, "Message": fault.message},
            "ResponseMetadata": {"HTTPStatusCode": fault.status, "HTTPHeaders": {}, "RetryAttempts": 0},
        }
        return AWSResponse(params.get("url", "aws"), fault.status, {}, None), parsed

    def after_call(self, model: Any, http_response: Any, context: dict[str, Any]) -> None:
        from botocore.exceptions import ReadTimeoutError

        fault, body = context.pop(CONTEXT_KEY, (None, None))
        if fault is None:
            return
        if http_response is None or http_response.status_code >= 300:
            with self._lock:  # the call failed on its own (a conditional check): nothing to hide
                self.drawn[(model.service_model.service_name, fault.kind)] -= 1
            return
        if fault.kind == AFTER_ACCEPT:
            self.on_unknown_send(_message_body(body))
        raise ReadTimeoutError(endpoint_url=getattr(http_response, "url", "aws"))


def _message_body(raw: Any) -> str:
    """The ``MessageBody`` of a serialized SendMessage (JSON protocol, or the older query protocol)."""
    if isinstance(raw, bytes):
        raw = raw.decode()
    if not isinstance(raw, str):
        return ""
    try:
        return str(json.loads(raw).get("MessageBody", ""))
    except ValueError:
        return (parse_qs(raw).get("MessageBody") or [""])[0]


# ---- installing the hooks on every session --------------------------------------------------------
_active: list[AwsFaultDraw] = []  # the draw of the innermost live run


def _before_call(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> Any:
    if not _active:
        return None
    return _active[-1].before_call(model, params, context)


def _after_call(model: Any, http_response: Any, context: dict[str, Any], **_: Any) -> None:
    if _active:
        _active[-1].after_call(model, http_response, context)


HOOKS = (("before-call", _before_call), ("after-call", _after_call))


@contextmanager
def aws_faults(draw: AwsFaultDraw) -> Iterator[AwsFaultDraw]:
    """Make ``draw`` answer for every AWS call while the block runs.

    New sessions get the hooks from botocore's builtin handlers; the default boto3 session (which
    ``boto3.client`` reuses) may predate them, so it gets them too; Powertools' cached parameter
    providers are dropped, as a cold start would, so their next client carries the hooks.
    """
    import boto3
    from aws_lambda_powertools.utilities.parameters import clear_caches
    from botocore.handlers import BUILTIN_HANDLERS

    for hook in HOOKS:
        if hook not in BUILTIN_HANDLERS:
            BUILTIN_HANDLERS.append(hook)
    if boto3.DEFAULT_SESSION is not None:
        for event, handler in HOOKS:
            boto3.DEFAULT_SESSION._session.register(event, handler, unique_id=f"chaos-{event}")
    clear_caches()
    _active.append(draw)
    try:
        yield draw
    finally:
        _active.remove(draw)
