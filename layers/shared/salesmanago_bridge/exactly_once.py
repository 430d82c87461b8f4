"""Events at most once: claim each in the idempotency guard, reconcile the doubtful ones with what
SALESmanago lists, settle the claims after sending (complete, mark unknown, or release).

The dispatcher calls these for the actions whose ActionSpec is ``at_most_once``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from salesmanago_bridge.claims import ClaimKind, IdempotencyConflictError
from salesmanago_bridge.commands import (
    Command,
)
from salesmanago_bridge.errors import (
    BridgeError,
    EventInFlightError,
    OutcomeUnknownError,
)
from salesmanago_bridge.gateway import CONTACT_LIST_LIMIT, SalesmanagoGateway
from salesmanago_bridge.observability import (
    DUPLICATES_SUPPRESSED,
    OUTCOME_RECONCILED,
    logger,
    metrics,
)
from salesmanago_bridge.work import Results, Work

if TYPE_CHECKING:
    from salesmanago_bridge.idempotency import EventGuard


def claim(
    guard: EventGuard, events: list[Work], remaining_ms: int | None
) -> tuple[Results, list[Work], list[Work], list[Work]]:
    """Claim each event: (results of the settled ones, the claimed, the doubtful, the ones to send)."""
    results: Results = {}
    to_send: list[Work] = []
    claimed: list[Work] = []
    doubtful: list[Work] = []
    for work, claim in zip(events, guard.claim_all([w.command for w in events], remaining_ms), strict=True):
        if isinstance(claim, BridgeError):
            results[work.position] = claim
        elif claim.kind is ClaimKind.DUPLICATE:
            metrics.count(DUPLICATES_SUPPRESSED, action=str(work.command.action))
            results[work.position] = {**(claim.stored or {}), "duplicate": True}
        elif claim.kind is ClaimKind.BUSY:
            results[work.position] = EventInFlightError("the same event is being sent by another invocation")
        elif claim.kind is ClaimKind.CONFLICT:
            results[work.position] = IdempotencyConflictError(
                "this event id was already used for other content"
            )
        else:
            claimed.append(work)
            (doubtful if claim.kind is ClaimKind.DOUBTFUL else to_send).append(work)
    return results, claimed, doubtful, to_send


def reconcile(shop: SalesmanagoGateway, works: list[Work]) -> tuple[Results, list[Work]]:
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
                listed = shop.contact_events(group, batch, action=str(members[0].command.action))
            except BridgeError as error:
                # Whatever the lookup's trouble, the events may exist: hand them back, still doubtful.
                doubt = OutcomeUnknownError(
                    f"the event may exist and could not be looked up: {error.describe()}"
                )
                failed.update(dict.fromkeys(batch, doubt))
                continue
            for email, stored in listed.items():
                if stored is not None:
                    events[email] = stored
                else:  # the item shape is unverified: never read "not found" into a shape we miss
                    failed[email] = OutcomeUnknownError(
                        "the contact's events came in a shape the bridge cannot read; not sent again"
                    )
        for work in members:
            email = work.command.email or ""
            metrics.count(OUTCOME_RECONCILED, action=str(work.command.action))
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


def settle(guard: EventGuard, claimed: list[Work], results: Results, still_doubtful: set[int]) -> None:
    """Complete applied events, mark unknown ones for reconciliation, release surely-unsent ones."""
    applied = [(w.command, r) for w in claimed if isinstance(r := results[w.position], dict)]
    failed = [w for w in claimed if isinstance(results[w.position], BridgeError)]
    unknown = [
        w.command
        for w in failed
        if isinstance(results[w.position], OutcomeUnknownError) or w.position in still_doubtful
    ]
    unsent = [w.command for w in failed if w.command not in unknown]
    for (command, _), error in zip(applied, guard.complete_all(applied), strict=True):
        if error is not None:  # applied, but not recorded: the next attempt reconciles instead of re-sending
            logger.warning(
                "event applied but its idempotency record was not completed",
                extra={"command_id": command.id},
            )
    guard.mark_unknown_all(unknown)
    guard.release_all(unsent)


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
