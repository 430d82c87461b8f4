"""Publishing commands in the largest batches each service takes, retrying the entries it refuses.

    SendMessageBatch (SQS) · PublishBatch (SNS) · PutEvents (EventBridge):
    at most 10 entries and 256 KiB a call.

A batch call can succeed while some of its entries fail; those are retried (with backoff) when
the service says the fault is its own, and reported otherwise. A failure of the whole call
(after botocore's own retries) stops the run: it is the queue, the credentials or the network,
and the next batch would fail the same way.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from bridge_cli.errors import explain_aws_error
from bridge_cli.targets import Target, TargetKind

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 262_144
MAX_ATTEMPTS = 5
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 5.0
EVENT_SOURCE = "salesmanago-bridge.cli"
# EventBridge sizes an entry as Source + DetailType + Detail, plus 14 bytes for a Time.
EVENT_TIME_BYTES = 14
EVENT_RETRYABLE_CODES = frozenset({"InternalFailure", "InternalException", "ThrottlingException"})

# The backoff's sleep; tests replace it so that nothing waits for real.
sleep = time.sleep


@dataclass(frozen=True)
class Entry:
    """One command to publish."""

    key: str  # entry id, unique within its batch
    text: str  # the message body: {"action", "group_key", "data", "id"}
    action: str
    group_key: str
    command_id: str
    order_key: str | None = None  # the contact, for FIFO message groups
    ref: Any = None  # what the caller tracks: a line number, a dead letter


@dataclass(frozen=True)
class EntryFailure:
    entry: Entry
    code: str
    message: str
    retryable: bool


class Publisher(Protocol):
    target: Target

    def check(self) -> None: ...

    def size_of(self, entry: Entry) -> int: ...

    def publish(self, entries: list[Entry]) -> list[EntryFailure]: ...


def _dedup_id(entry: Entry) -> str:
    return hashlib.sha256(entry.command_id.encode()).hexdigest()


def _group_id(entry: Entry) -> str:
    return hashlib.sha256((entry.order_key or entry.group_key).encode()).hexdigest()[:64]


class SqsPublisher:
    def __init__(self, client: Any, target: Target) -> None:
        self.client = client
        self.target = target
        self._fifo = target.address.endswith(".fifo")

    def check(self) -> None:
        try:
            self.client.get_queue_attributes(QueueUrl=self.target.address, AttributeNames=["QueueArn"])
        except (ClientError, BotoCoreError) as exc:
            raise explain_aws_error(exc, f"queue {self.target.address}") from None

    def size_of(self, entry: Entry) -> int:
        return len(entry.text.encode())

    def publish(self, entries: list[Entry]) -> list[EntryFailure]:
        request = []
        for entry in entries:
            item: dict[str, Any] = {"Id": entry.key, "MessageBody": entry.text}
            if self._fifo:
                item["MessageGroupId"] = _group_id(entry)
                item["MessageDeduplicationId"] = _dedup_id(entry)
            request.append(item)
        reply = self.client.send_message_batch(QueueUrl=self.target.address, Entries=request)
        return _failures(entries, reply.get("Failed") or [])


class SnsPublisher:
    def __init__(self, client: Any, target: Target) -> None:
        self.client = client
        self.target = target
        self._fifo = target.address.endswith(".fifo")

    def check(self) -> None:
        try:
            self.client.get_topic_attributes(TopicArn=self.target.address)
        except (ClientError, BotoCoreError) as exc:
            raise explain_aws_error(exc, f"topic {self.target.address}") from None

    def size_of(self, entry: Entry) -> int:
        return len(entry.text.encode())

    def publish(self, entries: list[Entry]) -> list[EntryFailure]:
        request = []
        for entry in entries:
            item: dict[str, Any] = {"Id": entry.key, "Message": entry.text}
            if self._fifo:
                item["MessageGroupId"] = _group_id(entry)
                item["MessageDeduplicationId"] = _dedup_id(entry)
            request.append(item)
        reply = self.client.publish_batch(TopicArn=self.target.address, PublishBatchRequestEntries=request)
        return _failures(entries, reply.get("Failed") or [])


class EventBusPublisher:
    def __init__(self, client: Any, target: Target) -> None:
        self.client = client
        self.target = target

    def check(self) -> None:
        try:
            self.client.describe_event_bus(Name=self.target.address)
        except (ClientError, BotoCoreError) as exc:
            raise explain_aws_error(exc, f"event bus {self.target.address}") from None

    def size_of(self, entry: Entry) -> int:
        return len(EVENT_SOURCE.encode()) + len(entry.action.encode()) + len(entry.text.encode())

    def publish(self, entries: list[Entry]) -> list[EntryFailure]:
        request = [
            {
                "EventBusName": self.target.address,
                "Source": EVENT_SOURCE,
                "DetailType": entry.action,
                "Detail": entry.text,
            }
            for entry in entries
        ]
        reply = self.client.put_events(Entries=request)
        if not reply.get("FailedEntryCount"):
            return []
        failures = []
        # PutEvents answers entry by entry, in the order of the request.
        for entry, result in zip(entries, reply.get("Entries") or [], strict=False):
            code = result.get("ErrorCode")
            if code:
                failures.append(
                    EntryFailure(entry, code, result.get("ErrorMessage", ""), code in EVENT_RETRYABLE_CODES)
                )
        return failures


def _failures(entries: list[Entry], failed: list[dict[str, Any]]) -> list[EntryFailure]:
    by_key = {entry.key: entry for entry in entries}
    return [
        EntryFailure(
            by_key[item["Id"]],
            str(item.get("Code", "")),
            str(item.get("Message", "")),
            retryable=not item.get("SenderFault", False),
        )
        for item in failed
        if item.get("Id") in by_key
    ]


def make_publisher(clients: Callable[[str], Any], target: Target) -> Publisher:
    """The publisher for ``target``; ``clients(service)`` gives the boto3 client."""
    if target.kind in (TargetKind.QUEUE, TargetKind.BACKFILL):
        return SqsPublisher(clients("sqs"), target)
    if target.kind is TargetKind.TOPIC:
        return SnsPublisher(clients("sns"), target)
    return EventBusPublisher(clients("events"), target)


def batches(
    entries: Iterable[Entry],
    size_of: Callable[[Entry], int],
    max_entries: int = MAX_BATCH_ENTRIES,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[Entry]]:
    """Consecutive entries packed into batches of at most ``max_entries`` and ``max_bytes``."""
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        entry_size = size_of(entry)
        if batch and (len(batch) >= max_entries or size + entry_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        yield batch


def _pause(seconds: float) -> None:
    sleep(seconds)  # the module's sleep, looked up at call time


def backoff_s(attempt: int, jitter: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: attempt 1 → up to 0.2 s, 2 → 0.4 s, … at most 5 s."""
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1)) * (0.5 + jitter() / 2)


class Deliverer:
    """Sends one batch, retrying the entries the service failed on its side."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.publisher = publisher
        self.max_attempts = max_attempts
        self._sleep = sleep or _pause

    def deliver(self, batch: list[Entry]) -> tuple[list[Entry], list[EntryFailure]]:
        """Returns (sent, failed). A failure of the whole call raises (ClientError, BotoCoreError)."""
        pending = batch
        sent: list[Entry] = []
        failed: list[EntryFailure] = []
        for attempt in range(1, self.max_attempts + 1):
            failures = self.publisher.publish(pending)
            failed_keys = {failure.entry.key for failure in failures}
            sent.extend(entry for entry in pending if entry.key not in failed_keys)
            failed.extend(failure for failure in failures if not failure.retryable)
            retry = [failure for failure in failures if failure.retryable]
            if not retry:
                break
            if attempt == self.max_attempts:
                failed.extend(retry)
                break
            self._sleep(backoff_s(attempt))
            pending = [failure.entry for failure in retry]
        return sent, failed
