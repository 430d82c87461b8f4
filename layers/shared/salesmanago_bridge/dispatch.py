"""One path for every source: validate, plan, send in bulk, decide each message's outcome.

Every message ends in exactly one of: applied, dead-lettered with its reason, or handed back to
its source for a retry (SQS ``batchItemFailures``; SNS and EventBridge by raising).
"""

from __future__ import annotations

import gc
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache, partial
from traceback import format_exc
from typing import TYPE_CHECKING, Any

from salesmanago_bridge.batching import Chunk, Work, held_back_keys, ordering_keys, plan_chunks, plan_rounds
from salesmanago_bridge.claims import ClaimKind, IdempotencyConflictError
from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.commands import (
    GROUP_KEY_PATTERN,
    LOCATION_MISMATCH,
    Action,
    Command,
    CommandEnvelope,
)
from salesmanago_bridge.deadletters import DeadLetterSink, failure_reason
from salesmanago_bridge.errors import (
    AuthError,
    BridgeError,
    DeadlineError,
    EventInFlightError,
    HeldForOrderError,
    InternalError,
    OutcomeUnknownError,
    TransientError,
)
from salesmanago_bridge.groups import GroupStore, group_store_for
from salesmanago_bridge.observability import (
    COMMANDS_APPLIED,
    COMMANDS_DEAD_LETTERED,
    COMMANDS_RETRIED,
    DUPLICATES_SUPPRESSED,
    IGNORED_PRODUCT_FIELDS,
    LOCATION_MISMATCHES,
    OUTCOME_RECONCILED,
    OUTCOME_UNKNOWN,
    logger,
    metrics,
    scrub,
)
from salesmanago_bridge.senders import Result, Results, merge_results, send_chunk
from salesmanago_bridge.settings import Settings, get_settings
from salesmanago_bridge.sources import (
    Inbound,
    Source,
    from_eventbridge_event,
    from_sns_record,
    from_sqs_record,
)

if TYPE_CHECKING:
    from salesmanago_bridge.idempotency import EventGuard

CONTACT_LIST_LIMIT = 50  # salesmanago-api.md §5
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


class Dispatcher:
    """Executes commands for every source; the handlers only unwrap and report."""

    def __init__(
        self,
        settings: Settings,
        groups: GroupStore,
        client: SalesmanagoClient,
        dead_letters: DeadLetterSink,
        guard: EventGuard | Callable[[], EventGuard] | None = None,
    ) -> None:
        """``guard`` may be a factory: it is then called for the first batch holding an event."""
        self.settings = settings
        self.groups = groups
        self.client = client
        self.dead_letters = dead_letters
        self._guard = guard
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_parallel_requests, thread_name_prefix="salesmanago"
        )
        self._remaining: Callable[[], int | None] = lambda: None

    @property
    def guard(self) -> EventGuard | None:
        """The idempotency guard, built when first needed: a cold start that meets no event never
        loads Powertools Idempotency, boto3 or DynamoDB's client."""
        if callable(self._guard):  # a factory (an EventGuard is not callable)
            self._guard = self._guard()
        return self._guard

    # ---- per source -----------------------------------------------------------------------
    def dispatch_sqs(self, event: dict[str, Any], context: Any = None) -> BatchOutcomes:
        return self.dispatch_batch([from_sqs_record(r) for r in event.get("Records") or []], context)

    def dispatch_sns(self, event: dict[str, Any], context: Any = None) -> BatchOutcomes:
        return self.dispatch_batch([from_sns_record(r) for r in event.get("Records") or []], context)

    def dispatch_eventbridge(self, event: dict[str, Any], context: Any = None) -> BatchOutcomes:
        return self.dispatch_batch([from_eventbridge_event(event)], context)

    def dispatch_batch(self, inbounds: list[Inbound], context: Any = None) -> BatchOutcomes:
        """Handle every message of one invocation, within its time budget."""
        self._start_budget(context)
        outcomes: dict[int, Outcome] = {}
        try:
            works = []
            held: dict[str, int] = {}  # ordering key -> first message handed back before it was work
            for position, inbound in enumerate(inbounds):
                prepared = self._prepare(position, inbound)
                if isinstance(prepared, Outcome):
                    outcomes[position] = prepared
                    if prepared.status is Status.RETRY:
                        for key in held_back_keys(inbound):
                            held.setdefault(key, position)
                else:
                    works.append(prepared)
            results = self._execute(
                works, held, park=lambda work, error: self._conclude_work(work, error, outcomes)
            )
            for work in works:
                if work.position not in outcomes:
                    outcomes[work.position] = self._conclude(
                        work.inbound, work.command, results[work.position]
                    )
        finally:
            self._log_summary(outcomes.values())
            metrics.flush()
        return BatchOutcomes(outcomes[p] for p in range(len(inbounds)))

    def run(self, command: Command, context: Any = None) -> dict[str, Any]:
        """Execute one validated command now (the HTTP API's path): errors are raised, not parked."""
        self._start_budget(context)
        try:
            group = self.groups.get(command.group_key)
            inbound = Inbound(message_id=command.id, source=Source.API, body=command.normalized())
            work = Work(0, inbound, command, group, ordering_keys(command, inbound))
            result = self._execute([work])[0]
            if isinstance(result, BridgeError):
                self._count_failure(str(command.action), result)
                raise result
            self._count_applied(command, result)
            return result
        finally:
            metrics.flush()

    # ---- preparing ------------------------------------------------------------------------
    def _start_budget(self, context: Any) -> None:
        getter = getattr(context, "get_remaining_time_in_millis", None)
        self._remaining = (lambda: int(getter())) if callable(getter) else (lambda: None)
        self.client.budget.set_remaining(self._remaining())

    def _deadline_near(self) -> bool:
        left = self._remaining()
        return left is not None and left < self.settings.deadline_margin_ms

    def _prepare(self, position: int, inbound: Inbound) -> Work | Outcome:
        """Validate one message into a ``Work``, or conclude it at once when it cannot be one."""
        command: Command | None = None
        try:
            envelope = CommandEnvelope.parse(inbound.body, action=inbound.action)
            group = self.groups.get(envelope.group_key)
            command = envelope.to_command(
                field_map=group.routes_for(envelope.action),  # type: ignore[arg-type]
                sent_at_ms=inbound.sent_at_ms,
                default_location=group.location,
            )
        except BridgeError as error:
            return self._conclude(inbound, command, error)
        except Exception as exc:  # a bug must not lose the message: retry it, then park it with a reason
            return self._conclude(inbound, command, self._internal(exc))
        return Work(position, inbound, command, group, ordering_keys(command, inbound))

    @staticmethod
    def _internal(exc: Exception) -> InternalError:
        logger.error(
            "unexpected error while handling a command",
            extra={"exception_type": type(exc).__name__, "traceback": scrub(format_exc())},
        )
        return InternalError(f"unexpected {type(exc).__name__}")

    # ---- executing ------------------------------------------------------------------------
    def _conclude_work(self, work: Work, error: BridgeError, outcomes: dict[int, Outcome]) -> Outcome:
        outcomes[work.position] = outcome = self._conclude(work.inbound, work.command, error)
        return outcome

    def _execute(
        self,
        works: list[Work],
        held: dict[str, int] | None = None,
        park: Callable[[Work, BridgeError], Outcome] | None = None,
    ) -> Results:
        """Run the plan round by round; a transient failure holds back its contact's later commands,
        as does a message handed back before it became work (``held``: key -> its position).

        ``park`` concludes a permanent failure as soon as its round ends: if the dead-letter queue
        cannot take it, it stays at its source, and its later commands must wait for it too."""
        results: Results = {}
        blocked: set[str] = set()
        held = held or {}
        for round_works in plan_rounds(works):
            ready = []
            for work in round_works:
                if work.keys & blocked or any(
                    held.get(key, work.position) < work.position for key in work.keys
                ):
                    results[work.position] = HeldForOrderError(
                        "an earlier command for the same contact must succeed first"
                    )
                elif self._deadline_near():
                    results[work.position] = DeadlineError(
                        "not started: the invocation is close to its deadline"
                    )
                else:
                    ready.append(work)
            try:
                results.update(self._execute_round(ready))
            except Exception as exc:  # never lose a round to a bug: every command of it is retried
                error = self._internal(exc)
                results.update({work.position: error for work in ready})
            for work in round_works:
                result = results[work.position]
                if isinstance(result, BridgeError) and not result.retryable and park is not None:
                    if park(work, result).status is Status.RETRY:
                        blocked |= work.keys
                elif isinstance(result, BridgeError) and result.retryable:
                    blocked |= work.keys
        return results

    def _execute_round(self, works: list[Work]) -> Results:
        results: Results = {}
        to_send = [w for w in works if w.command.action is not Action.EVENT_CREATE]
        events = [w for w in works if w.command.action is Action.EVENT_CREATE]
        if not events or self.guard is None:
            return self._send_chunks(plan_chunks(to_send + events, self.settings))
        claimed: list[Work] = []
        doubtful: list[Work] = []
        for work, claim in zip(
            events, self.guard.claim_all([w.command for w in events], self._remaining()), strict=True
        ):
            if isinstance(claim, BridgeError):
                results[work.position] = claim
            elif claim.kind is ClaimKind.DUPLICATE:
                metrics.count(DUPLICATES_SUPPRESSED, action=str(Action.EVENT_CREATE))
                results[work.position] = {**(claim.stored or {}), "duplicate": True}
            elif claim.kind is ClaimKind.BUSY:
                results[work.position] = EventInFlightError(
                    "the same event is being sent by another invocation"
                )
            elif claim.kind is ClaimKind.CONFLICT:
                results[work.position] = IdempotencyConflictError(
                    "this event id was already used for other content"
                )
            else:
                claimed.append(work)
                (doubtful if claim.kind is ClaimKind.DOUBTFUL else to_send).append(work)
        reconciled, unsent = self._reconcile(doubtful)
        results.update(reconciled)
        results.update(self._send_chunks(plan_chunks(to_send + unsent, self.settings)))
        still_doubtful = {p for p, r in reconciled.items() if isinstance(r, BridgeError)}
        self._settle_claims(claimed, results, still_doubtful)
        return results

    def _send_chunks(self, chunks: list[Chunk]) -> Results:
        """Independent chunks go out in parallel, bounded by MAX_PARALLEL_REQUESTS."""
        results: Results = {}
        for chunk_results in self._pool.map(self._send_with_reauth, chunks):
            for position, result in chunk_results.items():
                merged = results.get(position)
                results[position] = result if merged is None else merge_results(merged, result)
        return results

    def _send_with_reauth(self, chunk: Chunk) -> Results:
        results = send_chunk(self.client, chunk)
        if not any(isinstance(result, AuthError) for result in results.values()):
            return results
        # Credentials may have rotated since the config was cached: re-read once, retry once.
        try:
            fresh = self.groups.get(chunk.works[0].command.group_key, force_fetch=True)
        except BridgeError:
            return results
        if fresh == chunk.group:
            return results
        logger.warning("SALESmanago refused cached credentials; retrying with a fresh group config")
        return send_chunk(self.client, chunk, fresh)

    # ---- exactly-once events --------------------------------------------------------------
    def _reconcile(self, works: list[Work]) -> tuple[Results, list[Work]]:
        """Look doubtful events up among their contacts' events; return the found and the unsent."""
        found: Results = {}
        unsent: list[Work] = []
        by_group: dict[str, list[Work]] = {}
        for work in works:
            by_group.setdefault(work.command.group_key, []).append(work)
        for members in by_group.values():
            group = members[0].group
            emails = sorted({w.command.email for w in members if w.command.email})
            events: dict[str, list[dict[str, Any]]] = {}
            failed: dict[str, BridgeError] = {}
            for start in range(0, len(emails), CONTACT_LIST_LIMIT):
                batch = emails[start : start + CONTACT_LIST_LIMIT]
                try:
                    reply = self.client.call_v2(
                        group, "contact/list", {"email": batch}, action=str(Action.EVENT_CREATE)
                    )
                except BridgeError as error:
                    # Whatever the lookup's trouble, the events may exist: hand them back, still doubtful.
                    doubt = OutcomeUnknownError(
                        f"the event may exist and could not be looked up: {error.describe()}"
                    )
                    failed.update(dict.fromkeys(batch, doubt))
                    continue
                for contact in reply.get("contacts") or []:
                    email = str(contact.get("email", "")).lower()
                    stored = contact.get("contactExtEvents")
                    if readable_events(stored):
                        events[email] = list(stored)
                    else:  # the item shape is unverified: never read "not found" into a shape we miss
                        failed[email] = OutcomeUnknownError(
                            "the contact's events came in a shape the bridge cannot read; not sent again"
                        )
            for work in members:
                email = work.command.email or ""
                metrics.count(OUTCOME_RECONCILED, action=str(Action.EVENT_CREATE))
                if email in failed:
                    found[work.position] = failed[email]
                elif (match := find_event(events.get(email, []), work.command)) is not None:
                    logger.info("doubtful event found in SALESmanago: not sent again")
                    found[work.position] = {
                        "eventId": match.get("eventId") or match.get("id"),
                        "reconciled": True,
                    }
                else:
                    unsent.append(work)
        return found, unsent

    def _settle_claims(self, claimed: list[Work], results: Results, still_doubtful: set[int]) -> None:
        """Complete applied events, mark unknown ones for reconciliation, release surely-unsent ones."""
        assert self.guard is not None
        applied = [(w.command, r) for w in claimed if isinstance(r := results[w.position], dict)]
        failed = [w for w in claimed if isinstance(results[w.position], BridgeError)]
        unknown = [
            w.command
            for w in failed
            if isinstance(results[w.position], OutcomeUnknownError) or w.position in still_doubtful
        ]
        unsent = [w.command for w in failed if w.command not in unknown]
        for (command, _), error in zip(applied, self.guard.complete_all(applied), strict=True):
            if (
                error is not None
            ):  # applied, but not recorded: the next attempt reconciles instead of re-sending
                logger.warning(
                    "event applied but its idempotency record was not completed",
                    extra={"command_id": command.id},
                )
        self.guard.mark_unknown_all(unknown)
        self.guard.release_all(unsent)

    # ---- concluding -----------------------------------------------------------------------
    def _conclude(self, inbound: Inbound, command: Command | None, result: Result) -> Outcome:
        action = _action_of(inbound, command)
        if isinstance(result, TransientError):
            self._count_failure(action, result)
            return self._retry_or_park(inbound, command, result)
        if isinstance(result, BridgeError):
            return self._park(inbound, command, result)
        assert command is not None
        self._count_applied(command, result)
        if logger.isEnabledFor(logging.DEBUG):  # command.id may be a hash to compute
            logger.debug(
                "command applied",
                extra={"message_id": inbound.message_id, "command_id": command.id, "action": action},
            )
        return Outcome(inbound.message_id, Status.APPLIED, action, command.group_key, result)

    def _count_applied(self, command: Command, result: dict[str, Any]) -> None:
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
    def _count_failure(action: str, error: BridgeError) -> None:
        if isinstance(error, OutcomeUnknownError):
            metrics.count(OUTCOME_UNKNOWN, action=action)

    def _retry_or_park(self, inbound: Inbound, command: Command | None, error: TransientError) -> Outcome:
        if inbound.source is Source.SQS and inbound.receive_count >= self.settings.max_receive_count:
            # Last receive: park it ourselves, with its reason, instead of the redrive (which has none).
            return self._park(inbound, command, error)
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
    def _log_summary(outcomes: Iterable[Outcome]) -> None:
        counts = Counter(f"{o.action}:{o.status}" for o in outcomes)
        if counts:
            logger.info("invocation done", extra={"outcomes": dict(counts)})


def readable_events(stored: Any) -> bool:
    """Whether a contact's ``contactExtEvents`` has the item shape ``find_event`` reads.

    That shape is not shown by any source we have (docs/salesmanago.md): a missing list, or items
    without a type and a date, make a lookup inconclusive rather than a proof of absence.
    """
    return isinstance(stored, list) and all(
        isinstance(item, dict) and "contactExtEventType" in item and "date" in item for item in stored
    )


def find_event(events: list[dict[str, Any]], command: Command) -> dict[str, Any] | None:
    """The stored event matching ``command``: by externalId, else by type, date and value."""
    data: Any = command.data
    for event in events:
        if data.externalId:
            if (
                event.get("externalId") == data.externalId
                and event.get("contactExtEventType") == data.contactExtEventType
            ):
                return event
            continue
        same_value = (event.get("value") is None and data.value is None) or (
            event.get("value") is not None
            and data.value is not None
            and float(event["value"]) == float(data.value)
        )
        if (
            event.get("contactExtEventType") == data.contactExtEventType
            and event.get("date") == data.date
            and same_value
        ):
            return event
    return None


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


@lru_cache(maxsize=1)
def get_dispatcher() -> Dispatcher:
    """The process-wide dispatcher: one session, one group cache, one pool, created at cold start."""
    settings = get_settings()
    client = SalesmanagoClient(settings)
    guard = partial(_event_guard, settings, client.clock) if settings.idempotency_table_name else None
    dispatcher = Dispatcher(
        settings=settings,
        groups=group_store_for(settings),
        client=client,
        dead_letters=DeadLetterSink(settings.dead_letter_queue_url),
        guard=guard,
    )
    _freeze_cold_start_heap()
    return dispatcher


def _event_guard(settings: Settings, clock: Any) -> EventGuard:
    from salesmanago_bridge.idempotency import EventGuard  # boto3 and DynamoDB's client come with it

    assert settings.idempotency_table_name is not None
    return EventGuard(settings.idempotency_table_name, settings.idempotency_ttl_s, clock=clock)


@lru_cache(maxsize=1)
def _freeze_cold_start_heap() -> None:
    """Move what the cold start built (~90k objects: modules, schemas, clients) out of the cyclic
    collector's reach: they live as long as the process, and each full collection during a batch
    would otherwise walk them all (~10 ms a time). Once per process."""
    gc.freeze()
