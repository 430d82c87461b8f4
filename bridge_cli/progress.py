"""A progress bar on stderr (rate and ETA) and a rate limiter, both with an injectable clock.

On a terminal the bar redraws in place; elsewhere (a log, a CI job, a transcript) it prints one
line at each tenth of the way, so the output stays readable.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 30
REDRAW_INTERVAL_S = 0.1
LOG_STEPS = 10


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """``with Progress(total, "sending") as bar: bar.advance(10)``; thread-safe."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        initial: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(0, total)
        self.label = label
        self.done = initial
        self._initial = initial
        self._stream = stream or sys.stderr
        self._enabled = enabled and self.total > 0
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._clock = clock
        self._started = clock()
        self._last_draw = 0.0
        self._last_step = initial * LOG_STEPS // self.total if self.total else 0
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done = min(self.total, self.done + count)
            if not self._enabled:
                return
            now = self._clock()
            if self._tty:
                if now - self._last_draw >= REDRAW_INTERVAL_S or self.done == self.total:
                    self._last_draw = now
                    self._stream.write("\r" + self.render(now))
                    self._stream.flush()
            else:
                step = self.done * LOG_STEPS // self.total
                if step > self._last_step:
                    self._last_step = step
                    self._stream.write(self.render(now) + "\n")
                    self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._enabled and self._tty:
                self._stream.write("\r" + self.render(self._clock()) + "\n")
                self._stream.flush()
            self._enabled = False

    def rate(self, now: float | None = None) -> float:
        elapsed = (self._clock() if now is None else now) - self._started
        return (self.done - self._initial) / elapsed if elapsed > 0 else 0.0

    def render(self, now: float | None = None) -> str:
        now = self._clock() if now is None else now
        fraction = self.done / self.total if self.total else 1.0
        filled = int(BAR_WIDTH * fraction)
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        rate = self.rate(now)
        if self.done >= self.total:
            tail = f"in {_duration(now - self._started)}"
        elif rate > 0:
            tail = f"ETA {_duration((self.total - self.done) / rate)}"
        else:
            tail = "ETA --:--"
        return f"{self.label} {bar} {fraction:4.0%}  {self.done:,}/{self.total:,}  {rate:,.0f}/s  {tail}"


class RateLimiter:
    """A token bucket: ``acquire(n)`` blocks until ``n`` more items fit under ``per_second``."""

    def __init__(
        self,
        per_second: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self._clock = clock
        self._sleep = sleep
        # One second's worth may go at once (a batch of 10 never waits for 10 single tokens).
        self._capacity = max(per_second or 0.0, 10.0)
        self._tokens = self._capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, count: int) -> None:
        if not self.per_second:
            return
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            self._tokens -= count
            wait = -self._tokens / self.per_second if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
