"""What each route does: validate, run now, answer (writes); look a contact up (reads).

Where a write's body is checked, each part once:
    the JSON              parsed by Powertools (``json_body``, cached), within the codec's bounds
    the envelope          Powertools, against the action's ``WriteRequest``: ``group_key``, no other keys,
                          and only the shape of ``data`` (an object, or a non-empty list of objects)
    the tenant            ``resolve_group`` (403, or a 400 naming ``group_key``)
    ``data``              ``build_command``, against the action's model, after the group's field map has
                          routed it (the map is the tenant's: known only now)
    an event's id, date   fixed by the at-most-once path (``Command.identified``), not validated again
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
from salesmanago_bridge.api.errors import ContactNotFoundError, validation_problems
from salesmanago_bridge.api.models import ContactFound
from salesmanago_bridge.api.tenants import api_key_id, query_group_key, resolve_group
from salesmanago_bridge.commands import WriteRequest, build_command
from salesmanago_bridge.errors import FieldProblem, UnavailableError
from salesmanago_bridge.gateway import SalesmanagoGateway
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.mapping import contact_view
from salesmanago_bridge.observability import metrics
from salesmanago_bridge.request_guard import sha256_of

REPLAYED_HEADER = "Idempotent-Replayed"
READ_ACTION = "contact.get"
INVALID_REQUEST = "invalid request"  # the message of every `validation` 400, whichever step refused the body


# ---- writes ------------------------------------------------------------------------------------
def write(
    app: APIGatewayRestResolver, request: WriteRequest[Any], idempotency_key: str | None = None
) -> Response:
    """Validate ``request.data`` for its action in its group, run it now, and answer with what was done.

    Raises:
        BridgeError, ApiError: mapped to a status by ``error_response``.
    """
    action = request.action()
    spec = spec_for(action)
    group_key = resolve_group(app, request.group_key, query_group_key(app))
    dispatcher = api.get_dispatcher()
    group = dispatcher.groups.get(group_key)
    sent_at_ms = _request_time_ms(app)
    # Validated before any idempotency record is written: a refused body binds no key.
    command = build_command(
        action,
        group_key,
        request.data,
        field_map=group.routes_for(action),
        sent_at_ms=sent_at_ms,
        default_location=group.location,
        describe=data_problems,
        refusal=INVALID_REQUEST,
    )
    if spec.at_most_once:  # a client's retry must not create a second event
        command_id, first_seen_ms = event_identity(
            app, group_key, request.data, idempotency_key, sent_at_ms, dated=not command.dated_by_default
        )
        command = command.identified(command_id, first_seen_ms)
    result = dispatcher.run(command, app.lambda_context)
    headers = {REPLAYED_HEADER: "true"} if result.get("duplicate") else {}
    return Response(
        status_code=int(HTTPStatus.OK),
        content_type=content_types.APPLICATION_JSON,
        body=spec.reply.from_result(action, group_key, result),
        headers=headers,
    )


def data_problems(exc: ValidationError, path: tuple[int | str, ...]) -> list[FieldProblem]:
    """The failing fields of ``data`` in the words of every other 400 (``validation_problems``)."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    return validation_problems([{**error, "loc": ("body", *path, *error["loc"])} for error in errors])


def _request_time_ms(app: APIGatewayRestResolver) -> int:
    epoch = (app.current_event.raw_event.get("requestContext") or {}).get("requestTimeEpoch")
    return int(epoch) if isinstance(epoch, int | float) and epoch > 0 else int(time.time() * 1000)


# ---- idempotency of POST /events ---------------------------------------------------------------
def event_identity(
    app: APIGatewayRestResolver,
    group_key: str,
    data: Any,
    idempotency_key: str | None,
    now_ms: int,
    *,
    dated: bool,
) -> tuple[str | None, int]:
    """The event's command id and the date it gets when its body has none (``dated`` is false).

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
    if guard is None or dated:
        return None, now_ms
    return None, guard.first_seen([key_id, group_key, body_hash], body_hash, now_ms, keyed=False)


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
