"""One path for every source: validate, plan, send in bulk, decide each message's outcome.

Every message ends in exactly one of: applied, dead-lettered with its reason, or handed back to
its source for a retry (SQS ``batchItemFailures``; SNS and EventBridge by raising).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from traceback import format_exc
from typing import TYPE_CHECKING, Any

from salesmanago_bridge import exactly_once
from salesmanago_bridge.actions import send_chunk, spec_for
from salesmanago_bridge.batching import held_back_keys, ordering_keys, plan_chunks, plan_rounds
from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.commands import (
    Command,
    CommandEnvelope,
)
from salesmanago_bridge.deadletters import DeadLetterSink
from salesmanago_bridge.errors import (
    AuthError,
    BridgeError,
    DeadlineError,
    HeldForOrderError,
    InternalError,
)
from salesmanago_bridge.exactly_once import find_event
from salesmanago_bridge.gateway import SalesmanagoGateway
from salesmanago_bridge.groups import GroupStore, group_store_for
from salesmanago_bridge.observability import (
    logger,
    metrics,
    scrub,
)
from salesmanago_bridge.outcomes import BatchOutcomes, Concluder, Outcome, Status
from salesmanago_bridge.senders import merge_results
from salesmanago_bridge.settings import Settings, get_settings
from salesmanago_bridge.sources import (
    Inbound,
    Source,
    from_eventbridge_event,
    from_sns_record,
    from_sqs_record,
)
from salesmanago_bridge.work import Chunk, Result, Results, Work

if TYPE_CHECKING:
    from salesmanago_bridge.idempotency import EventGuard


__all__ = ["BatchOutcomes", "Dispatcher", "Outcome", "Status", "find_event", "get_dispatcher"]


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
        self.gateway = SalesmanagoGateway(client)
        self.dead_letters = dead_letters
        self._concluder = Concluder(settings, dead_letters)
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

    @property
    def guard_if_built(self) -> EventGuard | None:
        """The guard when it exists already (never builds it)."""
        return None if callable(self._guard) else self._guard

    def forget_invocation(self) -> None:
        """Drop the last invocation's deadline getter (its context ended)."""
        self._remaining = lambda: None

    # ---- per source -----------------------------------------------------------------------
    def dispatch_sqs(self, event: dict[str, Any], context: Any = None) -> BatchOutcomes:
        return self.dispatch_batch([from_sqs_record(r) for r in event.get("Records") or []], context)

    def dispatch_sns(self, event: dict[str, Any], context: Any = None) -> BatchOutcomes:
        return self.dispatch_batch([from_sns_record(r) for r in event.get("Records") or []], context)

    def dispatch_eventbridge(self, event: dict[str, Any], context: Any = None) -> BatchOutcomes:
        return self.dispatch_batch([from_eventbridge_event(event)], context)

    def dispatch_batch(self, inbounds: list[Inbound], context: Any = None) -> BatchOutcomes:
        """Handle every message of one invocation, within its time budget."""
        self.start_budget(context)
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
            self._concluder.log_summary(outcomes.values())
            metrics.flush()
        return BatchOutcomes(outcomes[p] for p in range(len(inbounds)))

    def run(self, command: Command, context: Any = None) -> dict[str, Any]:
        """Execute one validated command now (the HTTP API's path): errors are raised, not parked."""
        self.start_budget(context)
        try:
            group = self.groups.get(command.group_key)
            inbound = Inbound(message_id=command.id, source=Source.API, body=command.normalized())
            work = Work(0, inbound, command, group, ordering_keys(command, inbound))
            result = self._execute([work])[0]
            if isinstance(result, BridgeError):
                self._concluder.count_failure(str(command.action), result)
                raise result
            self._concluder.count_applied(command, result)
            return result
        finally:
            metrics.flush()

    # ---- preparing ------------------------------------------------------------------------
    def start_budget(self, context: Any) -> None:
        """Start the time budget of an invocation: every request after this fits in what is left."""
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
                field_map=group.routes_for(envelope.known_action),
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
        # At most once upstream (events): claimed in the guard first, reconciled when doubtful.
        to_send: list[Work] = []
        events: list[Work] = []
        for work in works:
            (events if spec_for(work.command.action).at_most_once else to_send).append(work)
        if not events or self.guard is None:
            return self._send_chunks(plan_chunks(to_send + events, self.settings))
        settled, claimed, doubtful, ready = exactly_once.claim(self.guard, events, self._remaining())
        results.update(settled)
        to_send += ready
        reconciled, unsent = self._reconcile(doubtful)
        results.update(reconciled)
        results.update(self._send_chunks(plan_chunks(to_send + unsent, self.settings)))
        still_doubtful = {p for p, r in reconciled.items() if isinstance(r, BridgeError)}
        exactly_once.settle(self.guard, claimed, results, still_doubtful)
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
        results = send_chunk(self.gateway, chunk)
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
        # Only the refused commands: the others were answered (an event among them may be created).
        refused = {position for position, result in results.items() if isinstance(result, AuthError)}
        retry = Chunk(
            chunk.action,
            fresh,
            [work for work in chunk.works if work.position in refused],
            [item for item in chunk.products if item.work.position in refused],
        )
        return {**results, **send_chunk(self.gateway, retry, fresh)}

    # ---- exactly-once events --------------------------------------------------------------
    def _reconcile(self, works: list[Work]) -> tuple[Results, list[Work]]:
        """Look doubtful events up among their contacts' events; return the found and the unsent."""
        return exactly_once.reconcile(self.gateway, works)

    # ---- concluding -----------------------------------------------------------------------
    def _conclude(self, inbound: Inbound, command: Command | None, result: Result) -> Outcome:
        return self._concluder.conclude(inbound, command, result)


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
