"""HTTP client for SALESmanago API v2 (contacts, events) and v3 (product catalog).

One ``requests.Session`` per process, reused across invocations. urllib3's ``Retry`` retries
connection errors, 429 and 5xx in the call, with backoff, jitter and ``Retry-After``; the
subclass below adds what it cannot know: the invocation's time budget, and that an event
must never be sent twice because a reply was lost.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.util.retry import Retry

from salesmanago_bridge.codec import dumps, loads
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
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.observability import (
    SALESMANAGO_AUTH_FAILURES,
    SALESMANAGO_REQUESTS,
    logger,
    metrics,
    scrub,
)
from salesmanago_bridge.settings import Settings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# An event call answered with one of these may have been applied: never repeat it in the call.
OUTCOME_UNKNOWN_STATUSES = frozenset({500, 502, 504})
# Paths whose effect is not idempotent in SALESmanago (salesmanago-api.md §3).
AT_MOST_ONCE_PATHS = ("addContactExtEvent", "addBatchContactExtEvent")
JSON_BODY = {"Content-Type": "application/json"}
AUTH_MESSAGES = ("not authenticated", "authentication", "invalid api key", "user not authenticated")
BACKOFF_FACTOR_S = 0.25
BACKOFF_MAX_S = 4.0
BACKOFF_JITTER_S = 0.25
MIN_TIME_LEFT_S = 1.0  # kept free at the end of an invocation for reporting outcomes
MIN_TIMEOUT_S = 0.25
V3_AUTH_REASON = 10
V3_WARNING_REASON = 12


class Clock(Protocol):
    """Time source; tests and the chaos suite plug in a fake one so nothing sleeps for real."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class TimeBudget:
    """How long the current invocation may still wait, shared by every retry of its requests."""

    clock: Clock
    max_retry_after_s: float
    request_time_s: float
    deadline: float | None = None  # clock.monotonic() value; None = no deadline (local runs)

    def set_remaining(self, millis: int | None) -> None:
        self.deadline = None if millis is None else self.clock.monotonic() + millis / 1000

    def remaining_s(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - self.clock.monotonic()

    def timeout(self, connect_s: float, read_s: float) -> tuple[float, float]:
        """The per-request timeouts, shortened so that no request outlives the invocation."""
        left = self.remaining_s() - MIN_TIME_LEFT_S
        if left >= connect_s + read_s:
            return connect_s, read_s
        left = max(left, 2 * MIN_TIMEOUT_S)
        connect = min(connect_s, left / 2)
        return connect, max(MIN_TIMEOUT_S, min(read_s, left - connect))

    def allowed_wait_s(self) -> float:
        """A wait longer than this would leave no time for the retried request itself."""
        return max(0.0, min(self.max_retry_after_s, self.remaining_s() - self.request_time_s))


def _is_at_most_once(url: str | None) -> bool:
    return bool(url) and any(url.split("?")[0].endswith(path) for path in AT_MOST_ONCE_PATHS)  # type: ignore[union-attr]


class BridgeRetry(Retry):
    """urllib3 Retry that respects the time budget and never repeats an event after a lost reply."""

    budget: TimeBudget

    def new(self, **kw: Any) -> BridgeRetry:
        retry = super().new(**kw)
        retry.budget = self.budget
        return retry

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> BridgeRetry:
        if _is_at_most_once(url):
            if error is not None and self._is_read_error(error):
                raise error  # sent, no reply: SALESmanago may have created the event
            if response is not None and response.status in OUTCOME_UNKNOWN_STATUSES:
                raise MaxRetryError(_pool, url, ResponseError(f"{response.status} on a non-idempotent call"))
        if response is not None:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.budget.allowed_wait_s():
                # Sleeping that long would run past the budget: answer now, the source retries later.
                raise MaxRetryError(
                    _pool, url, ResponseError(f"Retry-After {wait:.0f}s exceeds the time left")
                )
        return super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[return-value]

    def sleep(self, response: Any = None) -> None:
        wait = None
        if self.respect_retry_after_header and response is not None:
            wait = self.get_retry_after(response)
        if wait is None:
            wait = self.get_backoff_time()
        wait = min(wait, self.budget.allowed_wait_s())
        if wait > 0:
            logger.info(
                "retrying SALESmanago request",
                extra={"attempt": len(self.history), "sleep_s": round(wait, 3), "path": _last_path(self)},
            )
            self.budget.clock.sleep(wait)


def _last_path(retry: Retry) -> str | None:
    if not retry.history:
        return None
    url = retry.history[-1].url or ""
    return url.split("?")[0]


def build_session(settings: Settings, budget: TimeBudget) -> requests.Session:
    """A session whose adapter retries POST too (every v2 call is a POST; urllib3 skips it by default)."""
    retry = BridgeRetry(
        total=settings.max_retries,
        connect=settings.max_retries,
        # No retry once a request was sent and no reply came: SALESmanago may still apply it late,
        # after a later command for the same contact (a stale write). The source retries instead.
        read=0,
        status=settings.max_retries,
        other=0,
        allowed_methods=None,  # None = every method, POST included
        status_forcelist=RETRY_STATUSES,
        backoff_factor=BACKOFF_FACTOR_S,
        backoff_max=BACKOFF_MAX_S,
        backoff_jitter=BACKOFF_JITTER_S,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=True,
    )
    retry.budget = budget
    session = requests.Session()
    # requests scans the environment for proxies twice per request; read it once instead.
    session.trust_env = False
    session.proxies = urllib.request.getproxies()
    adapter = HTTPAdapter(
        max_retries=retry, pool_connections=8, pool_maxsize=max(10, settings.max_parallel_requests * 2)
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "salesmanago-bridge/0.1"})
    return session


def sign(api_key: str, client_id: str, api_secret: str) -> str:
    """v2 ``sha``: lowercase hex SHA-1 of apiKey + clientId + apiSecret, no separator."""
    return hashlib.sha1((api_key + client_id + api_secret).encode(), usedforsecurity=False).hexdigest()


class SalesmanagoClient:
    """Calls SALESmanago for one process; ``budget`` is reset per invocation by the dispatcher."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, session: requests.Session | None = None
    ) -> None:
        self._settings = settings
        self.clock = clock or SystemClock()
        self.budget = TimeBudget(
            clock=self.clock,
            max_retry_after_s=settings.max_retry_after_s,
            request_time_s=settings.connect_timeout_s + settings.read_timeout_s,
        )
        self._session = session or build_session(settings, self.budget)
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)

    # ---- API v2 -------------------------------------------------------------------------
    def call_v2(self, group: GroupConfig, path: str, body: dict[str, Any], *, action: str) -> dict[str, Any]:
        """POST ``{endpoint}/api/{path}`` with the body auth; return the reply of a ``success: true``.

        Raises:
            TransientError: throttled, unavailable, timed out, or outcome unknown (events).
            PermanentError: ``success: false``, authentication refused.
        """
        api_key = secrets.token_hex(16)  # any string works; a fresh one per request
        payload = {
            "clientId": group.client_id,
            "apiKey": api_key,
            "requestTime": int(self.clock.time() * 1000),
            "sha": sign(api_key, group.client_id, group.api_secret.get_secret_value()),
            "owner": str(group.owner),
            **body,
        }
        url = f"{group.endpoint}/api/{path}"
        response = self._send("POST", url, action=action, data=dumps(payload), headers=JSON_BODY)
        reply = self._json(response, url)
        if response.status_code >= 400 or reply.get("success") is not True:
            messages = reply.get("message") or [f"HTTP {response.status_code}"]
            raise self._v2_rejection(messages, response.status_code, action)
        return reply

    def _v2_rejection(self, messages: Any, status: int, action: str) -> BridgeError:
        if not isinstance(messages, list):
            messages = [messages]
        text = scrub("; ".join(str(m) for m in messages))[:500]
        if status in (401, 403) or any(marker in text.lower() for marker in AUTH_MESSAGES):
            metrics.count(SALESMANAGO_AUTH_FAILURES, action=action)
            return AuthError(f"SALESmanago refused the credentials: {text}", status=status)
        return SalesmanagoRejectedError(f"SALESmanago rejected the request: {text}", status=status)

    # ---- API v3 -------------------------------------------------------------------------
    def call_v3(
        self, group: GroupConfig, method: str, path: str, body: dict[str, Any] | None = None, *, action: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Call ``{products_endpoint}/v3/{path}`` with the ``API-KEY`` header; return (reply, warnings).

        Raises:
            AuthError: reason 10 or 401/403. SalesmanagoRejectedError: 400 with ``problems``.
        """
        if group.products_api_key is None:
            raise AuthError("the group has no products_api_key for the product catalog API")
        url = f"{group.products_endpoint}/v3/{path}"
        headers = {"API-KEY": group.products_api_key.get_secret_value()}
        if body is not None:
            headers.update(JSON_BODY)
        response = self._send(
            method, url, action=action, data=None if body is None else dumps(body), headers=headers
        )
        reply = self._json(response, url)
        problems = [p for p in reply.get("problems") or [] if isinstance(p, dict)]
        warnings = [
            scrub(str(p.get("message"))) for p in problems if p.get("reasonCode") == V3_WARNING_REASON
        ]
        errors = [p for p in problems if p.get("reasonCode") != V3_WARNING_REASON]
        if response.status_code < 400 and not errors:
            return reply, warnings
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

    # ---- transport ----------------------------------------------------------------------
    def _send(self, method: str, url: str, *, action: str, **kwargs: Any) -> requests.Response:
        started = self.clock.monotonic()
        at_most_once = _is_at_most_once(url)
        try:
            timeout = self.budget.timeout(*self._timeout)
            # Never follow a redirect: it would carry the API-KEY header (or the signed body) to
            # whatever host the reply names.
            response = self._session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            raise UnavailableError("SALESmanago did not accept a connection in time") from exc
        except requests.exceptions.ReadTimeout as exc:
            if at_most_once:
                raise OutcomeUnknownError("no reply in time after the event was sent") from exc
            raise SalesmanagoTimeoutError("SALESmanago did not reply in time") from exc
        except requests.exceptions.ConnectionError as exc:
            # requests reports read timeouts that exhausted the retries as a ConnectionError too.
            if _chain_has(exc, ReadTimeoutError):
                raise SalesmanagoTimeoutError("SALESmanago did not reply in time") from exc
            if (
                _chain_has(exc, NewConnectionError, ConnectionRefusedError, ConnectTimeoutError)
                or not at_most_once
            ):
                raise UnavailableError("connection to SALESmanago failed") from exc
            raise OutcomeUnknownError("the connection broke after the event was sent") from exc
        except requests.exceptions.RequestException as exc:
            raise UnavailableError(f"request to SALESmanago failed: {type(exc).__name__}") from exc
        finally:
            elapsed_ms = (self.clock.monotonic() - started) * 1000
            metrics.count(SALESMANAGO_REQUESTS, action=action)
            metrics.latency(elapsed_ms, action=action)
        status = response.status_code
        if response.is_redirect or response.is_permanent_redirect or 300 <= status < 400:
            host = urlsplit(url).hostname
            raise GroupConfigError(
                f"SALESmanago host {host} answered {status} with a redirect; redirects are not followed: "
                "set the group's endpoint to the host the account really uses"
            )
        if status == 429:
            raise ThrottledError(
                "SALESmanago is throttling", retry_after_s=_retry_after(response), status=status
            )
        if status >= 500:
            if at_most_once and status in OUTCOME_UNKNOWN_STATUSES:
                raise OutcomeUnknownError(f"SALESmanago answered {status} to an event call", status=status)
            raise UnavailableError(
                f"SALESmanago answered {status}", retry_after_s=_retry_after(response), status=status
            )
        return response

    @staticmethod
    def _json(response: requests.Response, url: str) -> dict[str, Any]:
        if not response.content and response.status_code < 300:
            return {"success": True}  # contact/delete may answer a bare 200 (salesmanago-api.md §2)
        try:
            if (response.encoding or "utf-8").lower().replace("_", "-") in ("utf-8", "utf8"):
                reply = loads(response.content)
            else:  # a declared charset other than UTF-8: requests decodes it
                reply = response.json()
        except ValueError:
            error_class = OutcomeUnknownError if _is_at_most_once(url) else UnavailableError
            raise error_class(
                f"SALESmanago answered {response.status_code} with a body that is not JSON",
                status=response.status_code,
            ) from None
        if not isinstance(reply, dict):
            raise UnavailableError(
                "SALESmanago answered with JSON that is not an object", status=response.status_code
            )
        return reply


def _problem(problem: dict[str, Any]) -> FieldProblem:
    field_name, _, text = str(problem.get("message", "")).partition("|")
    return FieldProblem(
        field_name or "body", scrub(f"{text or 'rejected'} (reason {problem.get('reasonCode')})")
    )


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _chain_has(exc: BaseException, *types: type[BaseException]) -> bool:
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
