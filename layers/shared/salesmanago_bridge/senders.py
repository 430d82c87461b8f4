"""Sending one chunk to SALESmanago and mapping the reply back to each command.

The rules follow salesmanago-api.md §3: upserts (contacts, products) are idempotent, so a chunk
refused without naming the culprit is split and re-sent until the bad records are isolated; an
event batch is never re-sent once any event may have been created, only its failed records;
request-level refusals (credentials, owner, catalog) fail the chunk without splitting. A chunk
of one uses the single-record endpoint, whose reply carries the id and the precise reason.
"""

from __future__ import annotations

import re
from typing import Any

from salesmanago_bridge.batching import Chunk, ProductItem, Work
from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.commands import Action
from salesmanago_bridge.errors import (
    AuthError,
    BridgeError,
    FieldProblem,
    GroupConfigError,
    OutcomeUnknownError,
    SalesmanagoRejectedError,
    TransientError,
)
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.mapping import contact_delete_body, contact_upsert_item, event_item, product_item

Result = dict[str, Any] | BridgeError
Results = dict[int, Result]

# Replies that concern the whole request, not a record in it: splitting cannot help.
REQUEST_LEVEL_MARKERS = ("owner", "not authenticated", "catalog")
# Replies of contact/delete that mean "there is no such contact" (wording: L confidence).
DELETE_ABSENT = ("not found", "not exist", "no such contact")
PRODUCT_PROBLEM_PATH = re.compile(r"^products\[(\d+)\]\.?(.*)$")


def send_chunk(client: SalesmanagoClient, chunk: Chunk, group: GroupConfig | None = None) -> Results:
    """Send ``chunk`` (optionally with a fresher group config); one result per command."""
    group = group or chunk.group
    if chunk.action is Action.CONTACT_UPSERT:
        return upsert_contacts(client, group, chunk.works)
    if chunk.action is Action.EVENT_CREATE:
        return add_events(client, group, chunk.works)
    if chunk.action is Action.CONTACT_DELETE:
        return {work.position: delete_contact(client, group, work) for work in chunk.works}
    return upsert_products(client, group, chunk.products)


def _is_request_level(error: BridgeError) -> bool:
    return isinstance(error, AuthError) or any(m in error.message.lower() for m in REQUEST_LEVEL_MARKERS)


def _all(works: list[Work], result: Result) -> Results:
    return {work.position: result for work in works}


def _send_one(
    client: SalesmanagoClient, group: GroupConfig, work: Work, path: str, body: dict[str, Any], id_key: str
) -> Results:
    """A chunk of one: the single endpoint, whose reply carries the id and the precise reason."""
    try:
        reply = client.call_v2(group, path, body, action=str(work.command.action))
    except BridgeError as error:
        return {work.position: error}
    return {work.position: {id_key: reply.get(id_key)}}


def _send_bulk(
    client: SalesmanagoClient,
    group: GroupConfig,
    works: list[Work],
    path: str,
    body: dict[str, Any],
    resend: Any,
) -> tuple[dict[str, Any] | None, Results]:
    """Send a bulk request: (reply, {}) or, when it failed, (None, one result per command).

    On a refusal that names no record, split in two and ``resend`` each half.

    Splitting is safe here: either the action is idempotent (contacts) or a refused request
    applied nothing (events, ``success: false`` for the whole batch).
    """
    try:
        return client.call_v2(group, path, body, action=str(works[0].command.action)), {}
    except SalesmanagoRejectedError as error:
        if _is_request_level(error):
            return None, _all(works, error)
        middle = len(works) // 2
        return None, {**resend(client, group, works[:middle]), **resend(client, group, works[middle:])}
    except BridgeError as error:
        return None, _all(works, error)


# ---- contacts ------------------------------------------------------------------------------
def upsert_contacts(client: SalesmanagoClient, group: GroupConfig, works: list[Work]) -> Results:
    if len(works) == 1:
        body = contact_upsert_item(works[0].command.data)  # type: ignore[arg-type]
        return _send_one(client, group, works[0], "contact/upsert", body, "contactId")
    body = {"upsertDetails": [contact_upsert_item(w.command.data) for w in works]}  # type: ignore[arg-type]
    reply, refused = _send_bulk(client, group, works, "contact/batchupsert", body, upsert_contacts)
    if reply is None:
        return refused
    ids = {str(email).lower(): contact_id for email, contact_id in (reply.get("contactIds") or {}).items()}
    results: Results = {}
    for work in works:
        contact_id = ids.get(work.command.email or "")
        if contact_id:
            results[work.position] = {"contactId": contact_id}
        else:  # not in the reply: ask again alone, for a definite answer (upserts are idempotent)
            results.update(upsert_contacts(client, group, [work]))
    return results


def delete_contact(client: SalesmanagoClient, group: GroupConfig, work: Work) -> Result:
    try:
        client.call_v2(
            group, "contact/delete", contact_delete_body(work.command.data), action=str(Action.CONTACT_DELETE)
        )  # type: ignore[arg-type]
    except SalesmanagoRejectedError as error:
        # Deleting an absent contact reaches the goal state: a redelivered delete must not be dead-lettered.
        if any(marker in error.message.lower() for marker in DELETE_ABSENT):
            return {"deleted": False, "already_absent": True}
        return error
    except BridgeError as error:
        return error
    return {"deleted": True}


# ---- events --------------------------------------------------------------------------------
def add_events(client: SalesmanagoClient, group: GroupConfig, works: list[Work]) -> Results:
    if len(works) == 1:
        body = event_item(works[0].command.data)  # type: ignore[arg-type]
        return _send_one(client, group, works[0], "v2/contact/addContactExtEvent", body, "eventId")
    body = {"events": [event_item(w.command.data) for w in works]}  # type: ignore[arg-type]
    reply, refused = _send_bulk(client, group, works, "v2/contact/addBatchContactExtEvent", body, add_events)
    if reply is None:
        return refused
    failed_keys = failed_contact_keys(reply.get("failedContacts"))
    failed = [w for w in works if (w.command.email or "") in failed_keys]
    created = [w for w in works if w not in failed]
    failed_amount = int(reply.get("failedAmount") or 0)
    results: Results = {}
    if failed_amount > len(failed):
        # Failures we cannot attribute: any of the others may or may not exist. Never re-send them;
        # the idempotency guard reconciles them on the next attempt.
        unknown = OutcomeUnknownError(f"{failed_amount} events of a batch failed without naming them")
        results.update(_all(created, unknown))
    else:
        results.update({w.position: {"eventId": None, "batched": True} for w in created})
    for work in failed:  # not created: re-send alone, for its own precise answer
        results.update(add_events(client, group, [work]))
    return results


def failed_contact_keys(items: Any) -> set[str]:
    """The lower-cased e-mails ``failedContacts`` names.

    What it holds is not documented (salesmanago-api.md §3, L): e-mails, or objects naming the
    contact. Both are read; an item naming no e-mail names nothing, and the batch's unattributed
    failures then make its other events outcome unknown (never re-sent).
    """
    keys = set()
    for item in items if isinstance(items, list) else []:
        email = item.get("email") if isinstance(item, dict) else item
        if isinstance(email, str) and email:
            keys.add(email.lower())
    return keys


# ---- products ------------------------------------------------------------------------------
def upsert_products(client: SalesmanagoClient, group: GroupConfig, items: list[ProductItem]) -> Results:
    """Upsert products of several commands in one request; one merged result per command."""
    outcomes = _upsert_items(client, group, items)
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


def _upsert_items(client: SalesmanagoClient, group: GroupConfig, items: list[ProductItem]) -> dict[int, Any]:
    if not items:
        return {}
    if not group.catalog_id:
        error = GroupConfigError(
            "the group has no catalog_id for products", group_key=items[0].work.command.group_key
        )
        return {id(item): error for item in items}
    body = {"catalogId": group.catalog_id, "products": [product_item(item.product) for item in items]}
    try:
        _, warnings = client.call_v3(
            group, "POST", "product/upsert", body, action=str(Action.PRODUCTS_UPSERT)
        )
    except SalesmanagoRejectedError as error:
        return _isolate_products(client, group, items, error)
    except (AuthError, TransientError) as error:
        return {id(item): error for item in items}
    return {id(item): {"productIds": [item.product.id], "warnings": warnings} for item in items}


def _isolate_products(
    client: SalesmanagoClient, group: GroupConfig, items: list[ProductItem], error: SalesmanagoRejectedError
) -> dict[int, Any]:
    """Blame the items the reply names; re-send the others (upserts are idempotent)."""
    if any(problem.field.startswith("catalogId") for problem in error.details) or _is_request_level(error):
        return {id(item): error for item in items}
    blamed: dict[int, list[FieldProblem]] = {}
    for problem in error.details:
        match = PRODUCT_PROBLEM_PATH.match(problem.field)
        if match and int(match.group(1)) < len(items):
            item = items[int(match.group(1))]
            field_name = f"data[{item.index}]" + (
                f" (SALESmanago field {match.group(2)})" if match.group(2) else ""
            )
            blamed.setdefault(id(item.work), []).append(FieldProblem(field_name, problem.problem))
    if not blamed:
        if len(items) == 1:
            return {id(items[0]): error}
        middle = len(items) // 2
        return {
            **_upsert_items(client, group, items[:middle]),
            **_upsert_items(client, group, items[middle:]),
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
    outcomes.update(_upsert_items(client, group, rest))
    return outcomes
