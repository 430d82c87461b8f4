"""Parking permanent failures in the dead-letter queue, with their reason attached."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from salesmanago_bridge.codec import pruned
from salesmanago_bridge.commands import Action
from salesmanago_bridge.errors import BridgeError, DeadLetterUnavailableError
from salesmanago_bridge.observability import logger, scrub

REASON_ATTRIBUTE = "bridge-failure"
MAX_REASON_DETAILS = 50
MAX_REASON_MESSAGE = 2000


def failure_reason(
    error: BridgeError,
    *,
    group_key: str | None,
    action: str | None,
    source: str,
    source_arn: str | None,
    receive_count: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``bridge-failure`` attribute (DESIGN.md): one JSON value, since SQS allows 10 attributes."""
    reason = error.as_reason()
    details = reason["details"]
    if len(details) > MAX_REASON_DETAILS:  # SQS caps a message (body and attributes together)
        more = {"field": "…", "problem": f"and {len(details) - MAX_REASON_DETAILS} more"}
        details = [*details[:MAX_REASON_DETAILS], more]
    return {
        **reason,
        "details": details,
        "error_message": scrub(error.describe())[:MAX_REASON_MESSAGE],
        "group_key": group_key,
        "action": action,
        "source": source,
        "source_arn": source_arn,
        "first_failure_at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "receive_count": receive_count,
    }


def replayable_body(body: Any, action: str | None, sent_at_ms: int | None) -> Any:
    """A message body as a replay must carry it, when the bridge parks it before it became a command
    (its group config unreadable, its group unknown, its data invalid).

    Two things a replay cannot get back travel outside the body: an ``action`` given as a message
    attribute (or ``detail-type``) goes in; an undated event takes the time its message was first
    sent, the date the bridge gives it (a replay is a new message, sent later, so it would get another
    date and another idempotency key, and the same event could be created twice). Nothing else
    changes: the producer's fields stay as they came, for the operator to read or fix.
    """
    if not isinstance(body, dict):
        return body
    completed = dict(body)
    if completed.get("action") is None and isinstance(action, str) and action:
        completed["action"] = action
    data = completed.get("data")
    if (
        completed.get("action") == Action.EVENT_CREATE
        and isinstance(data, dict)
        and data.get("date") is None
        and sent_at_ms
    ):
        completed["data"] = {**data, "date": sent_at_ms}
    return completed


def _body_text(body: Any) -> str:
    try:
        return json.dumps(body, separators=(",", ":"), default=str)
    except (RecursionError, ValueError):  # nested past what the encoder can walk: park it pruned
        return json.dumps(pruned(body), separators=(",", ":"), default=str)


class DeadLetterSink:
    """Sends a failed command to ``DEAD_LETTER_QUEUE_URL``; without one it only logs (DESIGN.md)."""

    def __init__(self, queue_url: str | None, sqs_client: Any = None) -> None:
        self.queue_url = queue_url
        self._sqs = sqs_client

    @property
    def sqs_built(self) -> bool:
        return self._sqs is not None

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            import boto3

            self._sqs = boto3.client("sqs")
        return self._sqs

    def park(self, body: Any, reason: dict[str, Any]) -> bool:
        """Send ``body`` with its reason. Returns False when no queue is configured.

        Raises:
            DeadLetterUnavailableError: the queue refused it, so the source must keep the message.
        """
        if not self.queue_url:
            logger.error("permanent failure, no dead-letter queue configured", extra={"reason": reason})
            return False
        text = body if isinstance(body, str) else _body_text(body)
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": text or "{}",
            "MessageAttributes": {
                REASON_ATTRIBUTE: {
                    "DataType": "String",
                    "StringValue": json.dumps(reason, separators=(",", ":")),
                }
            },
        }
        if self.queue_url.endswith(".fifo"):
            request["MessageGroupId"] = str(reason.get("group_key") or "unknown")
            request["MessageDeduplicationId"] = hashlib.sha256(request["MessageBody"].encode()).hexdigest()
        try:
            self.sqs.send_message(**request)
        except Exception as exc:  # any failure here must keep the message at its source
            raise DeadLetterUnavailableError(
                f"could not send to the dead-letter queue: {type(exc).__name__}"
            ) from exc
        return True
