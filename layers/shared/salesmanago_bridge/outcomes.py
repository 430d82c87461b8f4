"""What happened to each inbound message: applied, dead-lettered with its reason, or handed back
to its source; the metrics and logs of each, and the reply to the source.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from salesmanago_bridge.commands import GROUP_KEY_PATTERN, Action, Command
from salesmanago_bridge.deadletters import DeadLetterSink, failure_reason, replayable_body
from salesmanago_bridge.errors import (
    BridgeError,
    OutcomeUnknownError,
    TransientError,
)
from salesmanago_bridge.fields import LOCATION_MISMATCH
from salesmanago_bridge.observability import (
    COMMANDS_APPLIED,
    COMMANDS_DEAD_LETTERED,
    COMMANDS_RETRIED,
    IGNORED_PRODUCT_FIELDS,
    LOCATION_MISMATCHES,
    OUTCOME_UNKNOWN,
    logger,
    metrics,
    scrub,
)
from salesmanago_bridge.settings import Settings
from salesmanago_bridge.sources import (
    Inbound,
    Source,
)
from salesmanago_bridge.work import Result

if TYPE_CHECKING:
    pass


GROUP_KEY_RE = re.compile(GROUP_KEY_PATTERN)
ACTION_NAMES = frozenset(action.value for action in Action)


class Status(StrEnum):
    APPLIED = "applied"
    DEAD_LETTERED = "dead_lettered"  # parked with its reason (or only logged when no queue is set)
    RETRY = "retry"  # handed back to the source


@dataclass
class Outcome:
    """What happened to one inbound message."""

    message_id: str
    status: Status
    action: str | None = None
    group_key: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: BridgeError | None = None

    def as_dict(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "message_id": self.message_id,
            "status": str(self.status),
            "action": self.action,
        }
        if self.result:
            summary["result"] = self.result
        if self.error is not None:
            summary["error"] = self.error.as_reason()
        return summary


class BatchOutcomes:
    """Outcomes of one invocation, keyed by message id, reported to the source afterwards."""

    def __init__(self, outcomes: Iterable[Outcome]) -> None:
        self.outcomes = list(outcomes)
        self._by_id = {o.message_id: o for o in self.outcomes}

    def report(self, record: Any) -> dict[str, Any]:
        """Record handler for Powertools' BatchProcessor: raise for the records to redeliver."""
        message_id = record.message_id if hasattr(record, "message_id") else record["messageId"]
        outcome = self._by_id[message_id]
        if outcome.status is Status.RETRY:
            assert outcome.error is not None
            raise outcome.error
        return outcome.as_dict()

    def raise_for_retry(self) -> dict[str, Any]:
        """For SNS and EventBridge: raise so Lambda's async retries and on-failure destination apply."""
        for outcome in self.outcomes:
            if outcome.status is Status.RETRY:
                assert outcome.error is not None
                raise outcome.error
        return {"outcomes": [o.as_dict() for o in self.outcomes]}


class Concluder:
    """Turns a command's result into its message's outcome: counts, logs, parks or hands back."""

    def __init__(self, settings: Settings, dead_letters: DeadLetterSink) -> None:
        self.settings = settings
        self.dead_letters = dead_letters

    def conclude(self, inbound: Inbound, command: Command | None, result: Result) -> Outcome:
        action = _action_of(inbound, command)
        if isinstance(result, TransientError):
            self.count_failure(action, result)
            return self.retry_or_park(inbound, command, result)
        if isinstance(result, BridgeError):
            return self.park(inbound, command, result)
        assert command is not None
        self.count_applied(command, result)
        if logger.log_level <= logging.DEBUG:  # command.id may be a hash to compute
            logger.debug(
                "command applied",
                extra={"message_id": inbound.message_id, "command_id": command.id, "action": action},
            )
        return Outcome(inbound.message_id, Status.APPLIED, action, command.group_key, result)

    def count_applied(self, command: Command, result: dict[str, Any]) -> None:
        metrics.count(COMMANDS_APPLIED, action=str(command.action))
        if command.warnings:
            self._report_warnings(command, result)
        if command.ignored_fields:
            result["ignored_fields"] = list(command.ignored_fields)
            metrics.count(IGNORED_PRODUCT_FIELDS, len(command.ignored_fields), action=str(command.action))
            logger.warning(
                "product fields ignored: no field map takes them",
                extra={"ignored_fields": command.ignored_fields, "command_id": command.id},
            )

    @staticmethod
    def _report_warnings(command: Command, result: dict[str, Any]) -> None:
        """Ours first (trims, location), then SALESmanago's own; each once, whatever the retries."""
        theirs = [w for w in result.get("warnings") or [] if w not in command.warnings]
        result["warnings"] = [*command.warnings, *theirs]
        mismatches = sum(w.startswith(LOCATION_MISMATCH) for w in command.warnings)
        if mismatches:
            metrics.count(LOCATION_MISMATCHES, mismatches, action=str(command.action))
        logger.warning(
            "command applied with warnings",
            extra={"warnings": list(command.warnings), "command_id": command.id},
        )

    @staticmethod
    def count_failure(action: str, error: BridgeError) -> None:
        if isinstance(error, OutcomeUnknownError):
            metrics.count(OUTCOME_UNKNOWN, action=action)

    def retry_or_park(self, inbound: Inbound, command: Command | None, error: TransientError) -> Outcome:
        if inbound.source is Source.SQS and inbound.receive_count >= self.settings.max_receive_count:
            # Last receive: park it ourselves, with its reason, instead of the redrive (which has none).
            return self.park(inbound, command, error)
        metrics.count(COMMANDS_RETRIED, action=_action_of(inbound, command))
        logger.warning(
            "command handed back for retry",
            extra={
                "message_id": inbound.message_id,
                "error_type": str(error.error_type),
                "error": error.describe(),
            },
        )
        return Outcome(
            inbound.message_id,
            Status.RETRY,
            _action_of(inbound, command),
            _group_of(inbound, command),
            error=error,
        )

    def park(self, inbound: Inbound, command: Command | None, error: BridgeError) -> Outcome:
        action = _action_of(inbound, command)
        group_key = _group_of(inbound, command)
        reason = failure_reason(
            error,
            group_key=group_key,
            action=action,
            source=str(inbound.source),
            source_arn=inbound.source_arn,
            receive_count=inbound.receive_count,
        )
        if command is not None:
            body = command.normalized()
        else:  # not a command yet: what a replay needs from outside the body goes in
            body = replayable_body(inbound.body, inbound.action, inbound.sent_at_ms)
        try:
            self.dead_letters.park(body, reason)
        except TransientError as park_error:
            metrics.count(COMMANDS_RETRIED, action=action)
            logger.error(
                "dead-letter queue unavailable; message kept at its source",
                extra={"error": park_error.describe()},
            )
            return Outcome(inbound.message_id, Status.RETRY, action, group_key, error=park_error)
        metrics.count(COMMANDS_DEAD_LETTERED, action=action, error_type=str(error.error_type))
        logger.error(
            "command dead-lettered",
            extra={
                "message_id": inbound.message_id,
                "error_type": str(error.error_type),
                "error": scrub(error.describe()),
            },
        )
        return Outcome(inbound.message_id, Status.DEAD_LETTERED, action, group_key, error=error)

    @staticmethod
    def log_summary(outcomes: Iterable[Outcome]) -> None:
        counts = Counter(f"{o.action}:{o.status}" for o in outcomes)
        if counts:
            logger.info("invocation done", extra={"outcomes": dict(counts)})


def _action_of(inbound: Inbound, command: Command | None) -> str:
    if command is not None:
        return str(command.action)
    body_action = inbound.body.get("action") if isinstance(inbound.body, dict) else None
    candidate = inbound.action or body_action
    return candidate if isinstance(candidate, str) and candidate in ACTION_NAMES else "unknown"


def _group_of(inbound: Inbound, command: Command | None) -> str | None:
    if command is not None:
        return command.group_key
    key = inbound.body.get("group_key") if isinstance(inbound.body, dict) else None
    # Echo only a well-formed key: anything else is producer text that may hold personal data.
    return key if isinstance(key, str) and GROUP_KEY_RE.fullmatch(key) else None
