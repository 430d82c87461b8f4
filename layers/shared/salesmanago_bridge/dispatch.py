"""One path for every source: validate, resolve the group, call SALESmanago, decide the outcome.

Every message ends in exactly one of: applied, dead-lettered with its reason, or handed back to
its source for a retry (SQS ``batchItemFailures``; SNS and EventBridge by raising).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from traceback import format_exc
from typing import Any

from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.commands import Action, Command, CommandEnvelope, ProductData
from salesmanago_bridge.deadletters import DeadLetterSink, failure_reason
from salesmanago_bridge.errors import (
    AuthError,
    BridgeError,
    DeadlineError,
    GroupConfigError,
    InternalError,
    OutcomeUnknownError,
    PermanentError,
    SalesmanagoRejectedError,
    TransientError,
)
from salesmanago_bridge.groups import GroupConfig, GroupStore, group_store_for
from salesmanago_bridge.mapping import contact_delete_body, contact_upsert_item, event_item, product_item
from salesmanago_bridge.observability import (
    COMMANDS_APPLIED,
    COMMANDS_DEAD_LETTERED,
    COMMANDS_RETRIED,
    IGNORED_PRODUCT_FIELDS,
    OUTCOME_UNKNOWN,
    logger,
    metrics,
    pseudonymize,
    scrub,
    tracer,
)
from salesmanago_bridge.settings import Settings, get_settings
from salesmanago_bridge.sources import (
    Inbound,
    Source,
    from_eventbridge_event,
    from_sns_record,
    from_sqs_record,
    is_fifo,
)

# Replies of contact/delete that mean "there is no such contact".
DELETE_ABSENT = ("not found", "not exist", "no such contact")


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


class Dispatcher:
    """Executes commands for every source; the handlers only unwrap and report."""

    def __init__(
        self,
        settings: Settings,
        groups: GroupStore,
        client: SalesmanagoClient,
        dead_letters: DeadLetterSink,
    ) -> None:
        self.settings = settings
        self.groups = groups
        self.client = client
        self.dead_letters = dead_letters

    # ---- per source -----------------------------------------------------------------------
    def dispatch_sqs(self, event: dict[str, Any], context: Any = None) -> BatchOutcomes:
        return self.dispatch_batch([from_sqs_record(r) for r in event.get("Records") or []], context)

    def dispatch_sns(self, event: dict[str, Any], context: Any = None) -> BatchOutcomes:
        return self.dispatch_batch([from_sns_record(r) for r in event.get("Records") or []], context)

    def dispatch_eventbridge(self, event: dict[str, Any], context: Any = None) -> BatchOutcomes:
        return self.dispatch_batch([from_eventbridge_event(event)], context)

    def dispatch_batch(self, inbounds: list[Inbound], context: Any = None) -> BatchOutcomes:
        """Handle every message of one invocation, within its time budget."""
        remaining = _remaining_ms(context)
        self.client.budget.set_remaining(remaining())
        failed_groups: set[str] = set()
        outcomes = []
        try:
            for inbound in inbounds:
                if inbound.message_group_id in failed_groups and is_fifo(inbound.source_arn):
                    # FIFO: a later message of a failed group must not overtake the failed one.
                    error: BridgeError = DeadlineError("an earlier message of its FIFO group failed")
                    outcomes.append(self._retry_or_park(inbound, None, error))
                elif (left := remaining()) is not None and left < self.settings.deadline_margin_ms:
                    error = DeadlineError("not started: the invocation is close to its deadline")
                    outcomes.append(self._retry_or_park(inbound, None, error))
                else:
                    outcomes.append(self.handle(inbound))
                if outcomes[-1].status is Status.RETRY and inbound.message_group_id:
                    failed_groups.add(inbound.message_group_id)
        finally:
            metrics.flush()
        return BatchOutcomes(outcomes)

    # ---- one message ----------------------------------------------------------------------
    def handle(self, inbound: Inbound) -> Outcome:
        """Validate, execute and classify one message; never raises for a message's fault."""
        command: Command | None = None
        logger.append_keys(message_id=inbound.message_id, source=str(inbound.source))
        try:
            envelope = CommandEnvelope.parse(inbound.body, action=inbound.action)
            logger.append_keys(
                action=str(envelope.action), group_key=envelope.group_key, command_id=envelope.id
            )
            group = self.groups.get(envelope.group_key)
            command = envelope.to_command(
                field_map=group.routes_for(envelope.action),  # type: ignore[arg-type]
                sent_at_ms=inbound.sent_at_ms,
                default_location=group.location,
            )
            result = self._execute_with_reauth(command, group)
        except TransientError as error:
            return self._retry_or_park(inbound, command, error)
        except PermanentError as error:
            return self._park(inbound, command, error)
        except Exception as exc:  # a bug must not lose the message: retry it, then park it with a reason
            logger.error(
                "unexpected error while handling a command",
                extra={"exception_type": type(exc).__name__, "traceback": scrub(format_exc())},
            )
            return self._retry_or_park(inbound, command, InternalError(f"unexpected {type(exc).__name__}"))
        finally:
            logger.remove_keys(["message_id", "source", "action", "group_key", "command_id"])
        metrics.count(COMMANDS_APPLIED, action=str(command.action))
        logger.info(
            "command applied", extra={"contact": pseudonymize(command.email) if command.email else None}
        )
        return Outcome(inbound.message_id, Status.APPLIED, str(command.action), command.group_key, result)

    def run(self, command: Command) -> dict[str, Any]:
        """Execute a validated command now (the HTTP API's path): errors are raised, not parked."""
        group = self.groups.get(command.group_key)
        return self._execute_with_reauth(command, group)

    def _execute_with_reauth(self, command: Command, group: GroupConfig) -> dict[str, Any]:
        try:
            return self.execute(command, group)
        except AuthError:
            # Credentials may have rotated since the config was cached: re-read once and retry once.
            fresh = self.groups.get(command.group_key, force_fetch=True)
            if fresh == group:
                raise
            logger.warning("SALESmanago refused cached credentials; retrying with a fresh group config")
            return self.execute(command, fresh)

    @tracer.capture_method(capture_response=False)
    def execute(self, command: Command, group: GroupConfig) -> dict[str, Any]:
        """Send one command to SALESmanago; return the ids it gave back."""
        action = str(command.action)
        data = command.data
        if command.action is Action.CONTACT_UPSERT:
            reply = self.client.call_v2(group, "contact/upsert", contact_upsert_item(data), action=action)  # type: ignore[arg-type]
            return {"contactId": reply.get("contactId")}
        if command.action is Action.CONTACT_DELETE:
            try:
                self.client.call_v2(group, "contact/delete", contact_delete_body(data), action=action)  # type: ignore[arg-type]
            except SalesmanagoRejectedError as error:
                # Deleting an absent contact reaches the goal state: a redelivered delete must not be
                # dead-lettered. (The wording of SALESmanago's reply is L confidence: see DELETE_ABSENT.)
                if not any(marker in error.message.lower() for marker in DELETE_ABSENT):
                    raise
                return {"deleted": False, "already_absent": True}
            return {"deleted": True}
        if command.action is Action.EVENT_CREATE:
            try:
                reply = self.client.call_v2(
                    group, "v2/contact/addContactExtEvent", event_item(data), action=action
                )  # type: ignore[arg-type]
            except OutcomeUnknownError:
                metrics.count(OUTCOME_UNKNOWN, action=action)
                raise
            return {"eventId": reply.get("eventId")}
        return self._upsert_products(command, group)

    def _upsert_products(self, command: Command, group: GroupConfig) -> dict[str, Any]:
        if not group.catalog_id:
            raise GroupConfigError("the group has no catalog_id for products", group_key=command.group_key)
        products: tuple[ProductData, ...] = command.data  # type: ignore[assignment]
        product_ids: list[str] = []
        warnings: list[str] = []
        size = self.settings.product_batch_size
        for start in range(0, len(products), size):
            body = {
                "catalogId": group.catalog_id,
                "products": [product_item(p) for p in products[start : start + size]],
            }
            reply, chunk_warnings = self.client.call_v3(
                group, "POST", "product/upsert", body, action=str(command.action)
            )
            product_ids.extend(str(pid) for pid in reply.get("productIds") or [])
            warnings.extend(chunk_warnings)
        if command.ignored_fields:
            metrics.count(IGNORED_PRODUCT_FIELDS, len(command.ignored_fields), action=str(command.action))
            logger.warning(
                "product fields ignored: no field map takes them",
                extra={"ignored_fields": command.ignored_fields},
            )
        result: dict[str, Any] = {"productIds": product_ids}
        if command.ignored_fields:
            result["ignored_fields"] = list(command.ignored_fields)
        if warnings:
            result["warnings"] = warnings
        return result

    # ---- failures -------------------------------------------------------------------------
    def _retry_or_park(self, inbound: Inbound, command: Command | None, error: TransientError) -> Outcome:
        if inbound.source is Source.SQS and inbound.receive_count >= self.settings.max_receive_count:
            # Last receive: park it ourselves, with its reason, instead of the redrive (which has none).
            return self._park(inbound, command, error)
        metrics.count(COMMANDS_RETRIED, action=_action_of(inbound, command))
        logger.warning(
            "command handed back for retry", extra={"error_type": str(error.error_type), "error": str(error)}
        )
        return Outcome(
            inbound.message_id,
            Status.RETRY,
            _action_of(inbound, command),
            _group_of(inbound, command),
            error=error,
        )

    def _park(self, inbound: Inbound, command: Command | None, error: BridgeError) -> Outcome:
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
        body = command.normalized() if command is not None else inbound.body
        try:
            self.dead_letters.park(body, reason)
        except TransientError as park_error:
            metrics.count(COMMANDS_RETRIED, action=action)
            logger.error(
                "dead-letter queue unavailable; message kept at its source", extra={"error": str(park_error)}
            )
            return Outcome(inbound.message_id, Status.RETRY, action, group_key, error=park_error)
        metrics.count(COMMANDS_DEAD_LETTERED, action=action, error_type=str(error.error_type))
        logger.error(
            "command dead-lettered", extra={"error_type": str(error.error_type), "error": str(error)}
        )
        return Outcome(inbound.message_id, Status.DEAD_LETTERED, action, group_key, error=error)


def _action_of(inbound: Inbound, command: Command | None) -> str:
    if command is not None:
        return str(command.action)
    body_action = inbound.body.get("action") if isinstance(inbound.body, dict) else None
    candidate = inbound.action or body_action
    return candidate if candidate in {a.value for a in Action} else "unknown"


def _group_of(inbound: Inbound, command: Command | None) -> str | None:
    if command is not None:
        return command.group_key
    key = inbound.body.get("group_key") if isinstance(inbound.body, dict) else None
    return key if isinstance(key, str) and len(key) <= 128 else None


def _remaining_ms(context: Any) -> Callable[[], int | None]:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return (lambda: int(getter())) if callable(getter) else (lambda: None)


@lru_cache(maxsize=1)
def get_dispatcher() -> Dispatcher:
    """The process-wide dispatcher: one session, one group cache, created at cold start."""
    settings = get_settings()
    return Dispatcher(
        settings=settings,
        groups=group_store_for(settings),
        client=SalesmanagoClient(settings),
        dead_letters=DeadLetterSink(settings.dead_letter_queue_url),
    )
