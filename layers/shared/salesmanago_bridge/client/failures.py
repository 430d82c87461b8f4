"""SALESmanago's answers and the transport's failures, as ``BridgeError``s: one place decides
what is transient (throttled, unavailable, timed out, outcome unknown) and what is permanent
(rejected, refused credentials, a redirect). Messages are scrubbed: no e-mail in clear."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from salesmanago_bridge.client.retry import OUTCOME_UNKNOWN_STATUSES, is_at_most_once
from salesmanago_bridge.codec import loads
from salesmanago_bridge.errors import (
    AuthError,
    BridgeError,
    FieldProblem,
    GroupConfigError,
    OutcomeUnknownError,
    SalesmanagoRejectedError,
    SalesmanagoTimeoutError,
    ThrottledError,
    UnavailableError,
)
from salesmanago_bridge.observability import SALESMANAGO_AUTH_FAILURES, metrics, scrub

AUTH_MESSAGES = ("not authenticated", "authentication", "invalid api key", "user not authenticated")
V3_AUTH_REASON = 10
V3_WARNING_REASON = 12
# A reply that broke off in its body: SALESmanago had the request, whatever it did with it.
BODY_FAILURES = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)


def transport_failure(exc: requests.exceptions.RequestException, at_most_once: bool) -> BridgeError:
    """What a request that got no usable reply means: retry later, or outcome unknown (events)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return UnavailableError("SALESmanago did not accept a connection in time")
    # A read timeout comes as a ReadTimeout before the reply's head, and as a ConnectionError around
    # urllib3's ReadTimeoutError when it struck in the body (SALESmanago had the request and was
    # answering) or exhausted the retries. Whatever its shape, an event's outcome is then unknown.
    if isinstance(exc, requests.exceptions.ReadTimeout) or chain_has(exc, ReadTimeoutError):
        if at_most_once:
            return OutcomeUnknownError("no reply in time after the event was sent")
        return SalesmanagoTimeoutError("SALESmanago did not reply in time")
    if isinstance(exc, requests.exceptions.ConnectionError):
        refused = chain_has(exc, NewConnectionError, ConnectionRefusedError, ConnectTimeoutError)
        if refused or not at_most_once:
            return UnavailableError("connection to SALESmanago failed")
        return OutcomeUnknownError("the connection broke after the event was sent")
    if at_most_once and isinstance(exc, BODY_FAILURES):
        return OutcomeUnknownError("the reply broke off after the event was sent")
    return UnavailableError(f"request to SALESmanago failed: {type(exc).__name__}")


def status_failure(response: requests.Response, url: str, at_most_once: bool) -> BridgeError | None:
    """The error a reply's status means before its body is read (redirect, 429, 5xx), else None."""
    status = response.status_code
    if response.is_redirect or response.is_permanent_redirect or 300 <= status < 400:
        host = urlsplit(url).hostname
        return GroupConfigError(
            f"SALESmanago host {host} answered {status} with a redirect; redirects are not followed: "
            "set the group's endpoint to the host the account really uses"
        )
    if status == 429:
        return ThrottledError("SALESmanago is throttling", retry_after_s=retry_after(response), status=status)
    if status >= 500:
        if at_most_once and status in OUTCOME_UNKNOWN_STATUSES:
            return OutcomeUnknownError(f"SALESmanago answered {status} to an event call", status=status)
        return UnavailableError(
            f"SALESmanago answered {status}", retry_after_s=retry_after(response), status=status
        )
    return None


def reply_json(response: requests.Response, url: str) -> dict[str, Any]:
    """The reply's JSON object (a bare 200 counts as success).

    A reply it cannot read came from a SALESmanago that had the request: an event's outcome is unknown.
    """
    if not response.content and response.status_code < 300:
        return {"success": True}  # contact/delete may answer a bare 200 (salesmanago-api.md §2)
    error_class = OutcomeUnknownError if is_at_most_once(url) else UnavailableError
    try:
        if (response.encoding or "utf-8").lower().replace("_", "-") in ("utf-8", "utf8"):
            reply = loads(response.content)
        else:  # a declared charset other than UTF-8: requests decodes it
            reply = response.json()
    except ValueError:
        raise error_class(
            f"SALESmanago answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
        ) from None
    if not isinstance(reply, dict):
        raise error_class("SALESmanago answered with JSON that is not an object", status=response.status_code)
    return reply


def v2_rejection(messages: Any, status: int, action: str) -> BridgeError:
    """A v2 reply with ``success: false`` (or a 4xx): refused credentials, else rejected."""
    if not isinstance(messages, list):
        messages = [messages]
    text = scrub("; ".join(str(m) for m in messages))[:500]
    if status in (401, 403) or any(marker in text.lower() for marker in AUTH_MESSAGES):
        metrics.count(SALESMANAGO_AUTH_FAILURES, action=action)
        return AuthError(f"SALESmanago refused the credentials: {text}", status=status)
    return SalesmanagoRejectedError(f"SALESmanago rejected the request: {text}", status=status)


def v3_warnings(response: requests.Response, reply: dict[str, Any], action: str) -> list[str]:
    """A v3 reply's warnings (reason 12) when it succeeded.

    Raises:
        AuthError: reason 10 or 401/403. SalesmanagoRejectedError: any other problem or a 4xx.
    """
    problems = [p for p in reply.get("problems") or [] if isinstance(p, dict)]
    warnings = [scrub(str(p.get("message"))) for p in problems if p.get("reasonCode") == V3_WARNING_REASON]
    errors = [p for p in problems if p.get("reasonCode") != V3_WARNING_REASON]
    if response.status_code < 400 and not errors:
        return warnings
    reasons = {p.get("reasonCode") for p in errors} | {reply.get("reasonCode")}
    text = scrub("; ".join(str(m) for m in reply.get("messages") or [])) or f"HTTP {response.status_code}"
    if response.status_code in (401, 403) or V3_AUTH_REASON in reasons:
        metrics.count(SALESMANAGO_AUTH_FAILURES, action=action)
        raise AuthError(f"SALESmanago refused the API key: {text}", status=response.status_code)
    details = [_problem(p) for p in errors]
    raise SalesmanagoRejectedError(
        f"SALESmanago rejected the request: {text if not details else 'field problems'}",
        details=details,
        status=response.status_code,
    )


def _problem(problem: dict[str, Any]) -> FieldProblem:
    field_name, _, text = str(problem.get("message", "")).partition("|")
    return FieldProblem(
        field_name or "body", scrub(f"{text or 'rejected'} (reason {problem.get('reasonCode')})")
    )


def retry_after(response: requests.Response) -> float | None:
    """The reply's ``Retry-After`` in seconds (never negative), when it names a number."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def chain_has(exc: BaseException, *types: type[BaseException]) -> bool:
    """Whether ``exc`` or anything it wraps (urllib3 reasons, causes, contexts) is one of ``types``."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, types):
            return True
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__, *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return False
