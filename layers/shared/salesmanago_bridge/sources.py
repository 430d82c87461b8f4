"""Unwrap SQS records, SNS notifications and EventBridge events into one ``Inbound`` shape.

The SQS consumer also takes what reaches its queue through an SNS subscription (raw or
wrapped) or an EventBridge rule target, so a topic or bus can be buffered through the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from salesmanago_bridge.codec import loads


class Source(StrEnum):
    SQS = "sqs"
    SNS = "sns"
    EVENTBRIDGE = "eventbridge"
    API = "api"


@dataclass(frozen=True)
class Inbound:
    """One message as it arrived, before any validation of its content."""

    message_id: str
    source: Source
    body: Any  # the command object, or the raw text when it is not JSON
    action: str | None = None  # from a message attribute or an EventBridge detail-type
    sent_at_ms: int | None = None
    source_arn: str | None = None
    receive_count: int = 1
    message_group_id: str | None = None  # FIFO queues


def _iso_to_ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return loads(text)
    except ValueError:
        return text


def _unwrap(body: Any, action: str | None, sent_at_ms: int | None) -> tuple[Any, str | None, int | None]:
    """Peel an SNS notification or an EventBridge event found inside an SQS body."""
    if isinstance(body, dict) and body.get("Type") == "Notification" and "Message" in body:
        action = action or _attribute(body.get("MessageAttributes"), "action", "Value")
        return _loads(body["Message"]), action, _iso_to_ms(body.get("Timestamp")) or sent_at_ms
    if isinstance(body, dict) and "detail-type" in body and "detail" in body and "source" in body:
        detail_type = body["detail-type"] if isinstance(body["detail-type"], str) else None
        return body["detail"], action or detail_type, _iso_to_ms(body.get("time")) or sent_at_ms
    return body, action, sent_at_ms


def _attribute(attributes: Any, name: str, key: str) -> str | None:
    """A string message attribute, or None for anything else (envelopes are producer input too)."""
    entry = attributes.get(name) if isinstance(attributes, dict) else None
    value = entry.get(key) if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None


def from_sqs_record(record: dict[str, Any]) -> Inbound:
    attributes = record.get("attributes") or {}
    message_attributes = record.get("messageAttributes") or {}
    action = _attribute(message_attributes, "action", "stringValue")
    sent = attributes.get("SentTimestamp")
    sent_at_ms = int(sent) if isinstance(sent, str) and sent.isdigit() else None
    body, action, sent_at_ms = _unwrap(_loads(record.get("body")), action, sent_at_ms)
    try:
        receive_count = int(attributes.get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        receive_count = 1
    return Inbound(
        message_id=str(record.get("messageId")),
        source=Source.SQS,
        body=body,
        action=action,
        sent_at_ms=sent_at_ms,
        source_arn=record.get("eventSourceARN"),
        receive_count=receive_count,
        message_group_id=attributes.get("MessageGroupId"),
    )


def from_sns_record(record: dict[str, Any]) -> Inbound:
    sns = record.get("Sns") or {}
    attributes = sns.get("MessageAttributes") or {}
    return Inbound(
        message_id=str(sns.get("MessageId")),
        source=Source.SNS,
        body=_loads(sns.get("Message")),
        action=_attribute(attributes, "action", "Value"),
        sent_at_ms=_iso_to_ms(sns.get("Timestamp")),
        source_arn=sns.get("TopicArn") or record.get("EventSubscriptionArn"),
    )


def from_eventbridge_event(event: dict[str, Any]) -> Inbound:
    resources = event.get("resources") or []
    return Inbound(
        message_id=str(event.get("id")),
        source=Source.EVENTBRIDGE,
        body=event.get("detail"),
        action=event.get("detail-type") if isinstance(event.get("detail-type"), str) else None,
        sent_at_ms=_iso_to_ms(event.get("time")),
        source_arn=resources[0] if resources else event.get("source"),
    )


def is_fifo(source_arn: str | None) -> bool:
    return bool(source_arn) and str(source_arn).endswith(".fifo")
