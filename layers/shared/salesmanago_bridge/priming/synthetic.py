"""What priming runs through the code: a synthetic tenant, commands, events and an API request.

Nothing here names a real tenant: the group ``priming`` exists only in the rehearsal's own answers,
its SALESmanago is the rehearsal's loopback listener, and its e-mail is example.com's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from salesmanago_bridge.actions import SPECS, Chunking, spec_for
from salesmanago_bridge.codec import dumps
from salesmanago_bridge.commands import Action, Command, CommandEnvelope
from salesmanago_bridge.observability import logger
from salesmanago_bridge.sources import Source, from_eventbridge_event, from_sns_record, from_sqs_record

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

SYNTHETIC_GROUP = "priming"  # looked up only by the rehearsal, answered by its own listener
SYNTHETIC_API_KEY_ID = "priming"
SYNTHETIC_EMAIL = "priming@example.com"
SYNTHETIC_SENT_AT_MS = 1_700_000_000_000
# A field of each action routed through a group's field map, as tenants' configs do.
SYNTHETIC_FIELD_MAP = {
    "contact.upsert": {"priming_tier": "properties.tier"},
    "event.create": {"priming_channel": "detail5"},
    "products.upsert": {"priming_ean": "detail4"},
}
# Fields routed by SYNTHETIC_FIELD_MAP, added to the specs' examples.
_ROUTED_FIELDS: dict[Action, dict[str, Any]] = {
    Action.CONTACT_UPSERT: {"priming_tier": "t"},
    Action.EVENT_CREATE: {"priming_channel": "web"},
    Action.PRODUCTS_UPSERT: {"priming_ean": "5901234123457"},
}


def _with_routed_fields(action: Action, example: Any) -> Any:
    extra = _ROUTED_FIELDS.get(action, {})
    if isinstance(example, list):
        return [{**item, **extra} for item in example]
    return {**example, **extra}


# Every action's: its spec's example (actions.py), with the fields a field map routes.
SYNTHETIC_COMMANDS: dict[Action, Any] = {
    action: _with_routed_fields(action, spec.example) for action, spec in SPECS.items()
}


class InitContext:
    """What the dry runs pass as a Lambda context."""

    function_name = "priming"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:000000000000:function:priming"
    memory_limit_in_mb = 256
    aws_request_id = "priming"
    log_group_name = "priming"
    log_stream_name = "priming"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


# ---- validators and serializers ----------------------------------------------------------------
def dry_run_commands() -> list[str]:
    """Each action's synthetic command through unwrapping, validation, ids and the mapping to the
    SALESmanago body, as JSON: every validator and serializer a first command needs, built."""
    done = []
    for action, data in SYNTHETIC_COMMANDS.items():
        command = _synthetic_command(action, data)
        dumps(_body(command))
        dumps(command.normalized())
        _ = command.id
        done.append(str(action))
    return done


def _synthetic_command(action: Action, data: Any) -> Command:
    body = {"action": str(action), "group_key": SYNTHETIC_GROUP, "data": data}
    text = dumps(body).decode()
    # Through every source's unwrapping, each with its own validators of the envelope.
    from_sns_record({"Sns": {"MessageId": "priming", "Message": text, "Timestamp": "2023-11-14T22:13:20Z"}})
    from_eventbridge_event({"id": "priming", "detail-type": str(action), "detail": body, "source": "priming"})
    inbound = from_sqs_record(
        {"messageId": "priming", "body": text, "attributes": {"SentTimestamp": str(SYNTHETIC_SENT_AT_MS)}}
    )
    envelope = CommandEnvelope.parse(inbound.body, action=inbound.action)
    routes = SYNTHETIC_FIELD_MAP.get(str(action), {})
    return envelope.to_command(field_map=routes, sent_at_ms=inbound.sent_at_ms, default_location="priming")


def _body(command: Command) -> list[dict[str, Any]]:
    """The command's SALESmanago items, built by its spec's item builder (an unknown action raises)."""
    spec = spec_for(command.action)
    items: list[Any] = list(command.data) if spec.chunking is Chunking.ITEMS else [command.data]
    return [spec.item(item) for item in items]


# ---- the API's request -------------------------------------------------------------------------
def synthetic_api_event(api_key_id: str | None = None) -> dict[str, Any]:
    """A valid ``POST /events`` with an Idempotency-Key. Without an API key id the route refuses
    it (403) before any tenant lookup, after the whole request validation has run."""
    body = dumps({"group_key": SYNTHETIC_GROUP, "data": SYNTHETIC_COMMANDS[Action.EVENT_CREATE]}).decode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": "priming"}
    identity = {"sourceIp": "127.0.0.1", **({"apiKeyId": api_key_id} if api_key_id else {})}
    return {
        "resource": "/events",
        "path": "/events",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {
            "resourcePath": "/events",
            "httpMethod": "POST",
            "stage": "priming",
            "requestId": "priming",
            "requestTimeEpoch": SYNTHETIC_SENT_AT_MS,
            "identity": identity,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def dry_run_request(app: Any) -> int:
    """Resolve the synthetic request without an API key; its refusal is not logged."""
    level = logger.log_level
    logger.setLevel(logging.WARNING)
    try:
        return resolve_status(app, None)
    finally:
        logger.setLevel(level)


def resolve_status(app: Any, api_key_id: str | None, handler: Handler | None = None) -> int:
    """The status of the synthetic request through ``handler`` (else ``app.resolve``)."""
    run = handler or app.resolve
    return int(run(synthetic_api_event(api_key_id), InitContext())["statusCode"])


# ---- the consumers' events ---------------------------------------------------------------------
def synthetic_sources() -> dict[Source, dict[str, Any]]:
    """One event per consumer, as its trigger delivers it: SQS a contact and an event, SNS and
    EventBridge an event."""
    contact = {
        "action": "contact.upsert",
        "group_key": SYNTHETIC_GROUP,
        "data": SYNTHETIC_COMMANDS[Action.CONTACT_UPSERT],
    }
    event = {
        "action": "event.create",
        "group_key": SYNTHETIC_GROUP,
        "data": SYNTHETIC_COMMANDS[Action.EVENT_CREATE],
    }
    attributes = {"SentTimestamp": str(SYNTHETIC_SENT_AT_MS), "ApproximateReceiveCount": "1"}
    return {
        Source.SQS: {
            "Records": [
                {"messageId": f"priming-{n}", "body": dumps(body).decode(), "attributes": attributes}
                for n, body in enumerate((contact, event))
            ]
        },
        Source.SNS: {
            "Records": [
                {
                    "Sns": {
                        "MessageId": "priming",
                        "Message": dumps(event).decode(),
                        "Timestamp": "2023-11-14T22:13:20Z",
                    }
                }
            ]
        },
        Source.EVENTBRIDGE: {
            "id": "priming",
            "detail-type": "event.create",
            "source": "priming",
            "detail": event,
        },
    }


def synthetic_group(url: str) -> dict[str, Any]:
    """A tenant that exists only for the rehearsal: its SALESmanago is ``url`` (loopback)."""
    return {
        "client_id": "priming",
        "api_secret": "priming",
        "owner": SYNTHETIC_EMAIL,
        "endpoint": url,
        "products_api_key": "priming",
        "catalog_id": "priming",
        "products_endpoint": url,
        "location": "priming",
        "api_key_ids": [SYNTHETIC_API_KEY_ID],
        "field_map": SYNTHETIC_FIELD_MAP,
    }
