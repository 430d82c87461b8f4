"""Logger, tracer and metrics, created once per cold start, and the masking of personal data."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from salesmanago_bridge.privacy import EMAIL_PATTERN, pseudonymize, scrub
from salesmanago_bridge.settings import get_settings

__all__ = ["EMAIL_PATTERN", "logger", "metrics", "pseudonymize", "scrub", "tracer"]

# Metric names are a contract with the template's alarms and dashboard (DESIGN.md).
COMMANDS_APPLIED = "CommandsApplied"
COMMANDS_RETRIED = "CommandsRetried"
COMMANDS_DEAD_LETTERED = "CommandsDeadLettered"
DUPLICATES_SUPPRESSED = "DuplicatesSuppressed"
OUTCOME_UNKNOWN = "OutcomeUnknown"
OUTCOME_RECONCILED = "OutcomeReconciled"
SALESMANAGO_REQUESTS = "SalesmanagoRequests"
SALESMANAGO_LATENCY = "SalesmanagoLatency"
SALESMANAGO_AUTH_FAILURES = "SalesmanagoAuthFailures"
IGNORED_PRODUCT_FIELDS = "IgnoredProductFields"
LOCATION_MISMATCHES = "LocationMismatches"
# Also emitted with only the `service` dimension, so a plain alarm can watch them across actions.
SERVICE_WIDE_METRICS = frozenset({COMMANDS_DEAD_LETTERED, SALESMANAGO_AUTH_FAILURES, OUTCOME_UNKNOWN})

logger = Logger(service=get_settings().service_name, utc=True)
# Patch only what the bridge calls: patching all 16 supported modules costs ~130 ms of cold start.
tracer = Tracer(service=get_settings().service_name, patch_modules=("botocore", "requests"))


# What every LogRecord carries; anything else on a record came in as `extra` (Powertools logs it).
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _scrub_value(value: Any) -> Any:
    """``value`` with every e-mail in its strings pseudonymized, inside dicts, lists and tuples too."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrub_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(item) for item in value]
    return value


class _ScrubFilter(logging.Filter):
    """Defence in depth: no e-mail reaches a log line, whatever a message or its `extra` was built from."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str | dict):
            record.msg = _scrub_value(record.msg)
        fields = record.__dict__
        for key in fields.keys() - _RECORD_ATTRIBUTES:
            fields[key] = _scrub_value(fields[key])
        return True


logger.addFilter(_ScrubFilter())


class MetricsRecorder:
    """Counts per (metric, dimensions) during an invocation and flushes them as a few EMF blobs.

    One EMF line per dimension set instead of one per command keeps a 500-record batch cheap.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self._latencies: dict[tuple[tuple[str, str], ...], list[float]] = {}

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        key = tuple(sorted(dimensions.items()))
        with self._lock:
            self._counts[(name, key)] += value
            if name in SERVICE_WIDE_METRICS and key:
                self._counts[(name, ())] += value

    def latency(self, millis: float, **dimensions: str) -> None:
        with self._lock:
            self._latencies.setdefault(tuple(sorted(dimensions.items())), []).append(millis)

    def snapshot(self) -> dict[str, float]:
        """Totals per metric name (all dimensions summed): for tests and the local runner."""
        totals: Counter[str] = Counter()
        with self._lock:
            for (name, dims), value in self._counts.items():
                if dims or name not in SERVICE_WIDE_METRICS:
                    totals[name] += value
        return dict(totals)

    def flush(self) -> None:
        """Emit everything counted so far as EMF (stdout) and start again."""
        with self._lock:
            counts, latencies = self._counts, self._latencies
            self._counts, self._latencies = Counter(), {}
        by_dims: dict[tuple[tuple[str, str], ...], list[tuple[str, float]]] = {}
        for (name, dims), value in counts.items():
            by_dims.setdefault(dims, []).append((name, value))
        for dims in latencies:
            by_dims.setdefault(dims, [])
        settings = get_settings()
        for dims, values in by_dims.items():
            emf = EphemeralMetrics(namespace=settings.metrics_namespace, service=settings.service_name)
            for key, value in dims:
                emf.add_dimension(name=key, value=value)
            for name, value in values:
                emf.add_metric(name=name, unit=MetricUnit.Count, value=value)
            # EMF takes at most 100 values a metric; at 100 Powertools flushes by itself mid-way.
            for millis in latencies.get(dims, [])[:99]:
                emf.add_metric(name=SALESMANAGO_LATENCY, unit=MetricUnit.Milliseconds, value=millis)
            emf.flush_metrics()


metrics = MetricsRecorder()
