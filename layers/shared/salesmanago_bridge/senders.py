"""Sending one chunk to SALESmanago and mapping the reply back to each command.

The rules follow salesmanago-api.md §3: upserts (contacts, products) and the stock and price
updates are idempotent, so a chunk refused without naming the culprit is split and re-sent until
the bad records are isolated; an event batch is never re-sent once any event may have been
created, only its failed records;
request-level refusals (credentials, owner, catalog) fail the chunk without splitting. A chunk
of one uses the single-record endpoint, whose reply carries the id and the precise reason.
Paths, body envelopes and how a reply is read are the gateway's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from salesmanago_bridge.errors import (
    AuthError,
    BridgeError,
    FieldProblem,
    GroupConfigError,
    OutcomeUnknownError,
    SalesmanagoRejectedError,
    TransientError,
)
from salesmanago_bridge.gateway import SalesmanagoGateway, is_request_level, product_problems
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.work import Chunk, ProductItem, Result, Results, Work

# An action's item builder (its ActionSpec's ``item``): validated data → the SALESmanago item.
Build = Callable[[Any], dict[str, Any]]


class ProductsWrite(Protocol):
    """A gateway's v3 products write (upsert, quantities, prices): SALESmanago's warnings."""

    def __call__(
        self, group: GroupConfig, catalog_id: str, items: list[dict[str, Any]], *, action: str
    ) -> list[str]: ...


# ---- the senders an ActionSpec names: (gateway, group, chunk, item builder) → results ---------
def send_contacts(gateway: SalesmanagoGateway, group: GroupConfig, chunk: Chunk, build: Build) -> Results:
    return upsert_contacts(gateway, group, chunk.works, build)


def send_each_delete(gateway: SalesmanagoGateway, group: GroupConfig, chunk: Chunk, build: Build) -> Results:
    return {work.position: delete_contact(gateway, group, work, build) for work in chunk.works}


def send_events(gateway: SalesmanagoGateway, group: GroupConfig, chunk: Chunk, build: Build) -> Results:
    return add_events(gateway, group, chunk.works, build)


def send_products(gateway: SalesmanagoGateway, group: GroupConfig, chunk: Chunk, build: Build) -> Results:
    return write_products(gateway.upsert_products, group, chunk.products, build)


def send_quantities(gateway: SalesmanagoGateway, group: GroupConfig, chunk: Chunk, build: Build) -> Results:
    return write_products(gateway.update_quantities, group, chunk.products, build)


def send_prices(gateway: SalesmanagoGateway, group: GroupConfig, chunk: Chunk, build: Build) -> Results:
    return write_products(gateway.update_prices, group, chunk.products, build)


def _all(works: list[Work], result: Result) -> Results:
    return {work.position: result for work in works}


def _one_or_bulk(
    works: list[Work],
    build: Build,
    one: Callable[[dict[str, Any]], Result],
    bulk: Callable[[list[dict[str, Any]]], Any],
    resend: Callable[[list[Work]], Results],
) -> tuple[Any, Results | None]:
    """(the bulk reply, None) to read; or (None, the results) when there are no more to read:
    a chunk of one went to the single endpoint, or the bulk call failed."""
    if len(works) == 1:
        item = build(works[0].command.data)
        return None, _one(works[0], lambda: one(item))
    items = [build(w.command.data) for w in works]
    return _bulk(works, lambda: bulk(items), resend)


def _one(work: Work, send: Any) -> Results:
    """A chunk of one: the single endpoint, whose reply carries the id and the precise reason."""
    try:
        return {work.position: send()}
    except BridgeError as error:
        return {work.position: error}


def _bulk(
    works: list[Work], send: Callable[[], Any], resend: Callable[[list[Work]], Results]
) -> tuple[Any, Results | None]:
    """(``send()``'s reply, None) or, when it failed, (None, one result per command).

    On a refusal that names no record, split in two and ``resend`` each half.

    Splitting is safe here: either the action is idempotent (contacts) or a refused request
    applied nothing (events, ``success: false`` for the whole batch).
    """
    try:
        return send(), None
    except SalesmanagoRejectedError as error:
        if is_request_level(error):
            return None, _all(works, error)
        middle = len(works) // 2
        return None, {**resend(works[:middle]), **resend(works[middle:])}
    except BridgeError as error:
        return None, _all(works, error)


# ---- contacts ------------------------------------------------------------------------------
def upsert_contacts(
    gateway: SalesmanagoGateway, group: GroupConfig, works: list[Work], build: Build
) -> Results:
    action = str(works[0].command.action)  # the metric dimension of these requests
    ids, done = _one_or_bulk(
        works,
        build,
        lambda item: {"contactId": gateway.upsert_contact(group, item, action=action)},
        lambda items: gateway.upsert_contacts(group, items, action=action),
        lambda half: upsert_contacts(gateway, group, half, build),
    )
    if done is not None:
        return done
    results: Results = {}
    for work in works:
        contact_id = ids.get(work.command.email or "")
        if contact_id:
            results[work.position] = {"contactId": contact_id}
        else:  # not in the reply: ask again alone, for a definite answer (upserts are idempotent)
            results.update(upsert_contacts(gateway, group, [work], build))
    return results


def delete_contact(gateway: SalesmanagoGateway, group: GroupConfig, work: Work, build: Build) -> Result:
    body = build(work.command.data)
    try:
        deleted = gateway.delete_contact(group, body, action=str(work.command.action))
    except BridgeError as error:
        return error
    return {"deleted": True} if deleted else {"deleted": False, "already_absent": True}


# ---- events --------------------------------------------------------------------------------
def add_events(gateway: SalesmanagoGateway, group: GroupConfig, works: list[Work], build: Build) -> Results:
    action = str(works[0].command.action)
    reply, done = _one_or_bulk(
        works,
        build,
        lambda item: {"eventId": gateway.add_event(group, item, action=action)},
        lambda items: gateway.add_events(group, items, action=action),
        lambda half: add_events(gateway, group, half, build),
    )
    if done is not None:
        return done
    failed = [w for w in works if (w.command.email or "") in reply.failed_emails]
    created = [w for w in works if w not in failed]
    results: Results = {}
    if reply.failed_amount > len(failed):
        # Failures we cannot attribute: any of the others may or may not exist. Never re-send them;
        # the idempotency guard reconciles them on the next attempt.
        unknown = OutcomeUnknownError(f"{reply.failed_amount} events of a batch failed without naming them")
        results.update(_all(created, unknown))
    else:
        results.update({w.position: {"eventId": None, "batched": True} for w in created})
    for work in failed:  # not created: re-send alone, for its own precise answer
        results.update(add_events(gateway, group, [work], build))
    return results


# ---- products: upserts, quantities, prices --------------------------------------------------
def write_products(
    write: ProductsWrite, group: GroupConfig, items: list[ProductItem], build: Build
) -> Results:
    """Write the products of several commands in one request; one merged result per command.

    The three v3 writes set absolute values, so a refusal is isolated by re-sending: the products
    the reply names fail their own command (its whole record, with SALESmanago's reason), the
    others are sent again without them; a refusal naming none is split in halves.
    """
    outcomes = _write_items(write, group, items, build)
    results: Results = {}
    for item in items:
        position = item.work.position
        results[position] = merge_results(results.get(position), outcomes[id(item)])
    return results


def merge_results(current: Result | None, new: Result) -> Result:
    """A command whose products span requests succeeds when every part does; a permanent failure wins."""
    if current is None:
        return (
            new
            if isinstance(new, BridgeError)
            else {"productIds": list(new["productIds"]), "warnings": list(new["warnings"])}
        )
    if isinstance(current, BridgeError):
        return new if isinstance(new, BridgeError) and current.retryable and not new.retryable else current
    if isinstance(new, BridgeError):
        return new
    warnings = current["warnings"] + [w for w in new["warnings"] if w not in current["warnings"]]
    return {"productIds": current["productIds"] + new["productIds"], "warnings": warnings}


def _write_items(
    write: ProductsWrite, group: GroupConfig, items: list[ProductItem], build: Build
) -> dict[int, Any]:
    if not items:
        return {}
    if not group.catalog_id:
        error = GroupConfigError(
            "the group has no catalog_id for products", group_key=items[0].work.command.group_key
        )
        return {id(item): error for item in items}
    bodies = [build(item.product) for item in items]
    try:
        warnings = write(group, group.catalog_id, bodies, action=str(items[0].work.command.action))
    except SalesmanagoRejectedError as error:
        return _isolate_products(write, group, items, build, error)
    except (AuthError, TransientError) as error:
        return {id(item): error for item in items}
    return {id(item): {"productIds": [item.product.id], "warnings": warnings} for item in items}


def _isolate_products(
    write: ProductsWrite,
    group: GroupConfig,
    items: list[ProductItem],
    build: Build,
    error: SalesmanagoRejectedError,
) -> dict[int, Any]:
    """Blame the items the reply names; re-send the others (every products write is idempotent)."""
    named = product_problems(error)
    if named is None:
        return {id(item): error for item in items}
    blamed: dict[int, list[FieldProblem]] = {}
    for problem in named:
        if problem.index < len(items):
            item = items[problem.index]
            field_name = f"data[{item.index}]" + (
                f" (SALESmanago field {problem.field})" if problem.field else ""
            )
            blamed.setdefault(id(item.work), []).append(FieldProblem(field_name, problem.problem))
    if not blamed:
        if len(items) == 1:
            return {id(items[0]): error}
        middle = len(items) // 2
        return {
            **_write_items(write, group, items[:middle], build),
            **_write_items(write, group, items[middle:], build),
        }
    outcomes: dict[int, Any] = {}
    rest = []
    for item in items:
        if id(item.work) in blamed:
            outcomes[id(item)] = SalesmanagoRejectedError(
                "SALESmanago rejected product fields", details=blamed[id(item.work)], status=error.status
            )
        else:
            rest.append(item)
    outcomes.update(_write_items(write, group, rest, build))
    return outcomes
