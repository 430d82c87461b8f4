"""Reading dead letters in the three shapes AWS and the bridge produce, as one normalized record.

    bridge-failure      our SQS consumer and functions park the normalized command with a
                        ``bridge-failure`` attribute (DESIGN.md, "Dead letters")
    lambda-destination  a Lambda on-failure destination record: ``requestPayload`` (the SNS or
                        EventBridge event), ``responseContext``, ``responsePayload``
    eventbridge-dlq     an EventBridge target's dead letter: the event, with ``ERROR_CODE`` and
                        ``ERROR_MESSAGE`` message attributes
    no-reason           anything else: a record moved by a queue's redrive policy, an SNS
                        subscription's dead letter

Each becomes the command to replay, ``{"action", "group_key", "data", "id"}``. An event that had
no ``date`` gets the time it was first sent, which is the date the bridge gave it: a replay then
keeps its date and, for an event without an ``id``, the idempotency key derived from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from salesmanago_bridge.deadletters import REASON_ATTRIBUTE, replayable_body
from salesmanago_bridge.observability import pseudonymize, scrub
from salesmanago_bridge.sources import Inbound, from_eventbridge_event, from_sns_record, from_sqs_record

PRODUCTS_ACTION = "products.upsert"
NO_REASON = "no_reason"
UNREADABLE = "unreadable"
ERROR_TAG = re.compile(r"^\[([a-z_]+)\]")
MASK = "***"
# Contact and event fields shown in clear by `dlq show`; anything else may be personal data.
CLEAR_FIELDS = frozenset(
    {
        "contactExtEventType",
        "date",
        "value",
        "products",
        "location",
        "shopDomain",
        "externalId",
        "state",
        "tags",
        "removeTags",
        "lang",
        "forceOptIn",
        "forceOptOut",
        "forcePhoneOptIn",
        "forcePhoneOptOut",
        "permanently",
    }
)
EMAIL_FIELDS = frozenset({"email", "newEmail"})


class Shape(StrEnum):
    BRIDGE = "bridge-failure"
    LAMBDA_DESTINATION = "lambda-destination"
    EVENTBRIDGE_TARGET = "eventbridge-dlq"
    NO_REASON = "no-reason"


@dataclass
class DeadLetter:
    """One message of a dead-letter or failure queue, whatever its shape."""

    queue: str
    queue_url: str
    message_id: str
    receipt_handle: str
    shape: Shape
    error_type: str
    error_message: str
    action: str | None
    group_key: str | None
    source: str | None
    first_failure_at: datetime
    issued_at: datetime | None  # when the command was first sent, where the shape tells
    command: dict[str, Any] | None  # what a redrive sends; None when the message holds no command
    body: str

    @property
    def email(self) -> str | None:
        data = (self.command or {}).get("data")
        email = data.get("email") if isinstance(data, dict) else None
        return str(email).strip().lower() if isinstance(email, str) else None

    @property
    def moment(self) -> datetime:
        """When the command was issued, as far as the message tells: orders deletes and upserts."""
        return self.issued_at or self.first_failure_at

    def masked_command(self) -> dict[str, Any] | None:
        """The command with e-mails pseudonymized (as in the logs) and other personal fields hidden."""
        if self.command is None:
            return None
        command = dict(self.command)
        data = command.get("data")
        if isinstance(data, dict) and command.get("action") != PRODUCTS_ACTION:
            command["data"] = {key: _mask_field(key, value) for key, value in data.items()}
        return command


def _mask_field(key: str, value: Any) -> Any:
    if key in EMAIL_FIELDS and isinstance(value, str):
        return pseudonymize(value)
    if key in CLEAR_FIELDS:
        return value
    return MASK


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ms_to_datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalize(body: Any, action: str | None, sent_at_ms: int | None) -> dict[str, Any] | None:
    """``{"action", "group_key", "data", "id"}`` from a command body; None when it is not one."""
    body = replayable_body(body, action, sent_at_ms)  # the action and an event's date, as the bridge parks
    if not isinstance(body, dict):
        return None
    group_key = body.get("group_key")
    data = body.get("data")
    action = body.get("action")
    if not isinstance(group_key, str) or not group_key or data is None or not isinstance(action, str):
        return None
    command: dict[str, Any] = {"action": action, "group_key": group_key, "data": data}
    if body.get("id") is not None:
        command["id"] = body["id"]
    return command


def _from_payload(payload: Any) -> Inbound | None:
    """The SNS notification or EventBridge event a Lambda on-failure record carries."""
    if not isinstance(payload, dict):
        return None
    records = payload.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict) and "Sns" in records[0]:
        return from_sns_record(records[0])
    if "detail-type" in payload and "detail" in payload:
        return from_eventbridge_event(payload)
    return None


def _safely(unwrap: Callable[..., Inbound | None], *args: Any) -> Inbound | None:
    """The layer's unwrapping trusts the types inside a body; a dead letter may hold anything."""
    try:
        return unwrap(*args)
    except (TypeError, ValueError, AttributeError, KeyError):
        return None


def parse_message(queue: str, queue_url: str, message: dict[str, Any]) -> DeadLetter:
    """One received SQS message (with ``All`` attributes) as a :class:`DeadLetter`."""
    attributes = message.get("MessageAttributes") or {}
    system = message.get("Attributes") or {}
    text = message.get("Body") or ""
    body = _loads(text)
    arrived = _ms_to_datetime(system.get("SentTimestamp")) or datetime.now(UTC)
    base = {
        "queue": queue,
        "queue_url": queue_url,
        "message_id": str(message.get("MessageId")),
        "receipt_handle": str(message.get("ReceiptHandle")),
        "body": text,
    }
    if REASON_ATTRIBUTE in attributes:
        reason = _loads(attributes[REASON_ATTRIBUTE].get("StringValue"))
        reason = reason if isinstance(reason, dict) else {}
        command = normalize(body, _text(reason.get("action")), None)
        return DeadLetter(
            **base,
            shape=Shape.BRIDGE,
            error_type=str(reason.get("error_type") or UNREADABLE),
            error_message=str(reason.get("error_message") or ""),
            action=_text(reason.get("action")) or (command or {}).get("action"),
            group_key=_text(reason.get("group_key")) or (command or {}).get("group_key"),
            source=_text(reason.get("source")),
            first_failure_at=_iso(reason.get("first_failure_at")) or arrived,
            issued_at=None,
            command=command,
        )
    if "ERROR_CODE" in attributes:
        inbound = _safely(from_eventbridge_event, body) if isinstance(body, dict) else None
        code = str(attributes["ERROR_CODE"].get("StringValue") or "UNKNOWN")
        message_text = (attributes.get("ERROR_MESSAGE") or {}).get("StringValue") or ""
        return _from_inbound(
            base, Shape.EVENTBRIDGE_TARGET, f"eventbridge:{code}", message_text, inbound, arrived
        )
    if (
        isinstance(body, dict)
        and "requestContext" in body
        and ("requestPayload" in body or "responseContext" in body)
    ):
        context = body.get("requestContext") or {}
        response = body.get("responsePayload")
        response = response if isinstance(response, dict) else {}
        message_text = str(response.get("errorMessage") or context.get("condition") or "")
        tag = ERROR_TAG.match(message_text)
        error_type = (
            tag.group(1) if tag else f"lambda:{response.get('errorType') or context.get('condition')}"
        )
        failed_at = _iso(body.get("timestamp")) or arrived
        inbound = _safely(_from_payload, body.get("requestPayload"))
        return _from_inbound(base, Shape.LAMBDA_DESTINATION, error_type, message_text, inbound, failed_at)
    record = {
        "messageId": base["message_id"],
        "body": text,
        "attributes": system,
        "messageAttributes": {k: {"stringValue": v.get("StringValue")} for k, v in attributes.items()},
    }
    return _from_inbound(base, Shape.NO_REASON, NO_REASON, "", _safely(from_sqs_record, record), arrived)


def _from_inbound(
    base: dict[str, Any],
    shape: Shape,
    error_type: str,
    message: str,
    inbound: Inbound | None,
    failed_at: datetime,
) -> DeadLetter:
    command = normalize(inbound.body, inbound.action, inbound.sent_at_ms) if inbound else None
    issued = _ms_to_datetime(inbound.sent_at_ms) if inbound and inbound.sent_at_ms else None
    return DeadLetter(
        **base,
        shape=shape,
        error_type=error_type,
        error_message=scrub(message)[:500],
        action=(command or {}).get("action") or (_text(inbound.action) if inbound else None),
        group_key=(command or {}).get("group_key"),
        source=str(inbound.source) if inbound else None,
        first_failure_at=failed_at,
        issued_at=issued,
        command=command,
    )
