"""Retries in the call: the invocation's time budget, and urllib3's ``Retry`` taught two things it
cannot know (how long the invocation may still wait, and that an event must never be sent twice
because a reply was lost)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from salesmanago_bridge.gateway import AT_MOST_ONCE_PATHS
from salesmanago_bridge.observability import logger

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# An event call answered with one of these may have been applied: never repeat it in the call.
OUTCOME_UNKNOWN_STATUSES = frozenset({500, 502, 504})
BACKOFF_FACTOR_S = 0.25
BACKOFF_MAX_S = 4.0
BACKOFF_JITTER_S = 0.25
MIN_TIME_LEFT_S = 1.0  # kept free at the end of an invocation for reporting outcomes
MIN_TIMEOUT_S = 0.25


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


# urllib3's private API, behind this one adapter (tests/unit/test_private_api.py fails when it moves).
URLLIB3_PRIVATE = {"_is_read_error": ("self", "err")}


def sent_without_reply(retry: Retry, error: Exception) -> bool:
    """Whether urllib3 counts ``error`` as a read error: the request went out, no reply came.

    urllib3 has no public predicate for it; its own ``Retry.increment`` uses ``_is_read_error``.
    """
    return bool(retry._is_read_error(error))


def is_at_most_once(url: str | None) -> bool:
    """Whether ``url`` is a call SALESmanago must never receive twice (an event's)."""
    if not url:
        return False
    return any(url.split("?")[0].endswith(path) for path in AT_MOST_ONCE_PATHS)


class BridgeRetry(Retry):
    """urllib3 Retry that respects the time budget and never repeats an event after a lost reply."""

    budget: TimeBudget

    def new(self, **kw: Any) -> BridgeRetry:
        retry = super().new(**kw)
        retry.budget = self.budget
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> BridgeRetry:
        if is_at_most_once(url):
            if error is not None and sent_without_reply(self, error):
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
        return super().increment(method, url, response, error, _pool, _stacktrace)

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
