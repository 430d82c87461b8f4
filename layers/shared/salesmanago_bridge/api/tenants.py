"""Tenants: which group a request may use, from the API key API Gateway identified."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from salesmanago_bridge import api
from salesmanago_bridge.api.errors import ForbiddenError
from salesmanago_bridge.errors import (
    BridgeError,
    FieldProblem,
    UnavailableError,
    UnknownGroupError,
    ValidationFailedError,
)


# ---- tenants -----------------------------------------------------------------------------------
def api_key_id(app: APIGatewayRestResolver) -> str | None:
    """The id of the API key the caller used (set by API Gateway, never by the caller)."""
    identity = (app.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    value = identity.get("apiKeyId")
    return value if isinstance(value, str) and value else None


def resolve_group(app: APIGatewayRestResolver, *named: Any) -> str:
    """The group this request may use: the one it names, or the key's only group.

    Raises:
        ForbiddenError: the key is not bound to the named group (or to any group).
        ValidationFailedError: no group named and the key is bound to several; names the choices.
    """
    key_id = api_key_id(app)
    try:
        allowed = api.get_dispatcher().groups.group_keys_for_api_key(key_id) if key_id else []
    except BridgeError:
        raise
    except Exception as exc:  # SSM throttled or unreachable
        raise UnavailableError("could not read the group configs") from exc
    requested = sorted({name for name in named if name is not None})
    if len(requested) > 1:
        raise ValidationFailedError(
            "group_key differs between the body and the query string",
            details=[FieldProblem("group_key", "must be given once, or be the same in body and query")],
        )
    if requested:
        if requested[0] not in allowed:
            raise ForbiddenError("this API key may not use this group_key")
        return _bound(key_id, requested[0])
    if len(allowed) == 1:
        return _bound(key_id, allowed[0])
    if not allowed:
        raise ForbiddenError("this API key may not use any group")
    raise ValidationFailedError(
        "group_key is required: this API key may use several groups",
        details=[FieldProblem("group_key", "is required; one of: " + ", ".join(allowed))],
    )


def _bound(key_id: str | None, group_key: str) -> str:
    """``group_key`` if its own config lists the key: the index may lag, the config decides."""
    try:
        listed = api.get_dispatcher().groups.get(group_key).api_key_ids
    except UnknownGroupError:
        listed = ()
    if key_id is None or key_id not in listed:
        raise ForbiddenError("this API key may not use this group_key")
    return group_key


def query_group_key(app: APIGatewayRestResolver) -> str | None:
    value = (app.current_event.query_string_parameters or {}).get("group_key")
    return value or None
