"""What each route does: validate, run now, answer (writes); look a contact up (reads).

A write's body is parsed once (Powertools, against the request model) and its ``data`` is
validated once, after the group's field map has routed it: see ``write``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from pydantic import ValidationError

from salesmanago_bridge import api
from salesmanago_bridge.actions import spec_for
from salesmanago_bridge.api.errors import ContactNotFoundError
from salesmanago_bridge.api.models import ContactFound
from salesmanago_bridge.api.tenants import api_key_id, query_group_key, resolve_group
from salesmanago_bridge.commands import (
    Action,
    CommandEnvelope,
)
from salesmanago_bridge.errors import (
    UnavailableError,
)
from salesmanago_bridge.gateway import SalesmanagoGateway
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.idempotency import sha256_of
from salesmanago_bridge.mapping import contact_view
from salesmanago_bridge.observability import metrics

REPLAYED_HEADER = "Idempotent-Replayed"
READ_ACTION = "contact.get"


# ---- writes ------------------------------------------------------------------------------------
def write(app: APIGatewayRestResolver, action: Action, idempotency_key: str | None = None) -> Response:
    """Validate the body for ``action`` in its group, run it now, and answer with what was done.

    Raises:
        BridgeError, ApiError: mapped to a status by ``error_response``.
    """
    spec = spec_for(action)
    body = app.current_event.json_body
    group_key = resolve_group(app, body.get("group_key"), query_group_key(app))
    dispatcher = api.get_dispatcher()
    group = dispatcher.groups.get(group_key)
    envelope = CommandEnvelope.parse(
        {"action": str(action), "group_key": group_key, "data": body.get("data")}
    )
    field_map, location = group.routes_for(action), group.location
    sent_at_ms = _request_time_ms(app)
    # Validated before any idempotency record is written: a refused body binds no key.
    command = envelope.to_command(sent_at_ms=sent_at_ms, field_map=field_map, default_location=location)
    if spec.at_most_once:  # a client's retry must not create a second event
        command_id, first_seen_ms = event_identity(
            app, group_key, group, body.get("data"), idempotency_key, sent_at_ms
        )
        if command_id is not None or first_seen_ms != sent_at_ms:
            envelope = envelope.model_copy(update={"id": command_id})
            command = envelope.to_command(
                sent_at_ms=first_seen_ms, field_map=field_map, default_location=location
            )
    result = dispatcher.run(command, app.lambda_context)
    headers = {REPLAYED_HEADER: "true"} if result.get("duplicate") else {}
    return Response(
        status_code=int(HTTPStatus.OK),
        content_type=content_types.APPLICATION_JSON,
        body=spec.reply.from_result(action, group_key, result),
        headers=headers,
    )


def _request_time_ms(app: APIGatewayRestResolver) -> int:
    epoch = (app.current_event.raw_event.get("requestContext") or {}).get("requestTimeEpoch")
    return int(epoch) if isinstance(epoch, int | float) and epoch > 0 else int(time.time() * 1000)


# ---- idempotency of POST /events ---------------------------------------------------------------
def event_identity(
    app: APIGatewayRestResolver,
    group_key: str,
    group: GroupConfig,
    data: Any,
    idempotency_key: str | None,
    now_ms: int,
) -> tuple[str | None, int]:
    """The event's command id and the date it gets when its body has none.

    With an ``Idempotency-Key``, the id is derived from (API key id, group_key, key), so a retry is
    the same event to the idempotency guard, and the key's first use fixes the default date: a
    retry with the same body is then the very same command, even after a lost reply or a crash.
    The same key with another body is refused (409). Without a key, an event that has no date gets
    the date of its body's first sight within BLIND_RETRY_WINDOW_S, so a blind retry is recognised.

    Raises:
        IdempotencyConflictError: the key was used with another body.
        UnavailableError: the idempotency table cannot be used right now.
    """
    guard = api.get_request_guard()
    if guard is not None:
        guard.register(app.lambda_context)
    key_id = api_key_id(app) or ""
    body_hash = sha256_of([group_key, data])
    if idempotency_key is not None:
        command_id = "api:" + sha256_of([key_id, group_key, idempotency_key])[:48]
        if guard is None:
            return command_id, now_ms
        return command_id, guard.first_seen(
            [key_id, group_key, idempotency_key], body_hash, now_ms, keyed=True
        )
    if guard is None or _has_date(data, group):
        return None, now_ms
    return None, guard.first_seen([key_id, group_key, body_hash], body_hash, now_ms, keyed=False)


def _has_date(data: Any, group: GroupConfig) -> bool:
    if not isinstance(data, dict):
        return False
    sources = ["date", *(s for s, t in group.routes_for(Action.EVENT_CREATE).items() if t == "date")]
    return any(data.get(source) is not None for source in sources)


# ---- reads -------------------------------------------------------------------------------------
def contact_by_id(app: APIGatewayRestResolver, sm_id: str, group_key: str | None) -> ContactFound:
    """The contact with SALESmanago id ``sm_id`` (v2 ``contact/listById``).

    Raises:
        ContactNotFoundError: no live contact has that id.
    """
    return _read(
        app,
        group_key,
        lambda gateway, group: gateway.contacts_by_id(group, [sm_id], action=READ_ACTION),
        ("id", "contactId"),
        sm_id,
    )


def contact_by_email(app: APIGatewayRestResolver, email: str, group_key: str | None) -> ContactFound:
    """The contact with that e-mail (v2 ``contact/list``: tags and properties included).

    Raises:
        ContactNotFoundError: no live contact has that e-mail.
    """
    return _read(
        app,
        group_key,
        lambda gateway, group: gateway.contacts_by_email(group, [email], action=READ_ACTION),
        ("email",),
        email.lower(),
    )


def _read(
    app: APIGatewayRestResolver,
    group_key: str | None,
    lookup: Callable[[SalesmanagoGateway, GroupConfig], list[Any]],
    keys: tuple[str, ...],
    wanted: str,
) -> ContactFound:
    resolved = resolve_group(app, group_key)
    dispatcher = api.get_dispatcher()
    group = dispatcher.groups.get(resolved)
    dispatcher.start_budget(app.lambda_context)
    try:
        contacts = lookup(dispatcher.gateway, group)
    finally:
        metrics.flush()
    for raw in contacts:
        if not isinstance(raw, dict) or raw.get("deleted"):
            continue
        if any(str(raw.get(key) or "").lower() == wanted.lower() for key in keys):
            try:
                return ContactFound(group_key=resolved, contact=contact_view(raw))
            except ValidationError:
                raise UnavailableError("SALESmanago answered with a contact we cannot read") from None
    raise ContactNotFoundError("no contact found")
