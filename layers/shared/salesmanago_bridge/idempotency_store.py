"""The idempotency records in DynamoDB, a batch at a time: Powertools' store, records and keys
unchanged, plus batch lookups (BatchGetItem, 100 keys a request), batch completions (BatchWriteItem,
25 items a request) and the takeover of a doubtful record in one conditional write.

Powertools' store does each record alone: three calls an event. The event guard (``idempotency``)
decides what to claim, complete or release; this module only reads and writes the records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord

__all__ = ["COMPLETED", "BatchingPersistenceLayer", "UnprocessedError"]

COMPLETED = "COMPLETED"
BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem
BATCH_ATTEMPTS = 4  # unprocessed keys or items are asked again, with a short backoff
BATCH_BACKOFF_S = 0.05


class UnprocessedError(Exception):
    """DynamoDB left keys or items unprocessed after every attempt (throttled)."""


class _StoreInternals:
    """The private helpers of Powertools' persistence layer this module builds on, in one place.

    Powertools has no public API for a batch of records; these helpers keep our records exactly
    the ones its own ``idempotent_function`` writes and reads. ``POWERTOOLS_PRIVATE`` names each
    with its parameters: tests/unit/test_private_api.py fails loudly when one moves or changes.
    """

    POWERTOOLS_PRIVATE = {
        "_get_hashed_idempotency_key": ("self", "data"),
        "_item_to_data_record": ("self", "item"),
        "_get_key": ("self", "idempotency_key"),
        "_validate_payload": ("self", "data_payload", "stored_data_record"),
        "_get_expiry_timestamp": ("self",),
        "_get_hashed_payload": ("self", "data"),
    }

    @staticmethod
    def hashed_key(store: DynamoDBPersistenceLayer, data: dict[str, Any]) -> str | None:
        return store._get_hashed_idempotency_key(data=data)

    @staticmethod
    def record_of(store: DynamoDBPersistenceLayer, item: dict[str, Any]) -> DataRecord:
        return store._item_to_data_record(item)

    @staticmethod
    def key_of(store: DynamoDBPersistenceLayer, key: str) -> dict[str, Any]:
        return store._get_key(key)

    @staticmethod
    def check_payload(store: DynamoDBPersistenceLayer, data: dict[str, Any], record: DataRecord) -> None:
        """Raises: IdempotencyValidationError when ``data`` is not the payload ``record`` was made for."""
        store._validate_payload(data_payload=data, stored_data_record=record)

    @staticmethod
    def expiry_timestamp(store: DynamoDBPersistenceLayer) -> int:
        return store._get_expiry_timestamp()

    @staticmethod
    def hashed_payload(store: DynamoDBPersistenceLayer, data: dict[str, Any]) -> str:
        return store._get_hashed_payload(data=data)


_store = _StoreInternals


class BatchingPersistenceLayer(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB store, records and keys unchanged, plus batch lookups and completions.

    Built on the store's own helpers (key hashing, item conversion, payload check), so a record
    written one way is read the other.
    """

    def __init__(self, *args: Any, sleep: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sleep = sleep

    def get_records(self, datas: list[dict[str, Any]]) -> list[DataRecord | Exception | None]:
        """Each data's record (None when absent), read consistently; an error in place of the
        records of a request that failed."""
        keys = [_store.hashed_key(self, data) for data in datas]
        unique = list(dict.fromkeys(key for key in keys if key is not None))
        items: dict[str, dict[str, Any] | Exception] = _in_chunks(unique, BATCH_GET_LIMIT, self._batch_get)
        records: list[DataRecord | Exception | None] = []
        for key in keys:
            item = items.get(key) if key is not None else None
            records.append(
                item if item is None or isinstance(item, Exception) else _store.record_of(self, item)
            )
        return records

    def _batch_get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}

        def send(pending: Any) -> Any:
            reply = self.client.batch_get_item(RequestItems=pending)
            for item in reply.get("Responses", {}).get(self.table_name, []):
                found[item[self.sort_key_attr or self.key_attr]["S"]] = item
            return reply.get("UnprocessedKeys")

        keys_request = {"Keys": [_store.key_of(self, key) for key in keys], "ConsistentRead": True}
        self._until_processed(send, {self.table_name: keys_request}, "lookups")
        return found

    def payload_matches(self, data: dict[str, Any], record: DataRecord) -> bool:
        try:
            _store.check_payload(self, data, record)
        except IdempotencyValidationError:
            return False
        return True

    def save_successes(
        self, completions: list[tuple[dict[str, Any], dict[str, Any]]]
    ) -> list[Exception | None]:
        """``save_success`` for many records: the same COMPLETED item, 25 to a request."""
        items: dict[str, dict[str, Any]] = {}
        keys: list[str | None] = []
        for data, result in completions:
            key = _store.hashed_key(self, data)
            keys.append(key)
            if key is None:
                continue
            item = {
                **_store.key_of(self, key),
                self.expiry_attr: {"N": str(_store.expiry_timestamp(self))},
                self.status_attr: {"S": COMPLETED},
                self.data_attr: {"S": json.dumps(result, cls=Encoder, sort_keys=True)},
            }
            if self.payload_validation_enabled:
                item[self.validation_key_attr] = {"S": _store.hashed_payload(self, data)}
            items[key] = item  # the same record twice in a batch: one write, the last result

        def write(chunk: list[str]) -> dict[str, Any]:
            puts = [{"PutRequest": {"Item": items[key]}} for key in chunk]
            self._until_processed(
                lambda pending: self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems"),
                {self.table_name: puts},
                "records",
            )
            return {}

        errors = _in_chunks(list(items), BATCH_WRITE_LIMIT, write)
        return [errors.get(key) if key is not None else None for key in keys]

    def take_over(self, data: dict[str, Any], record: DataRecord, in_progress_ms: int) -> None:
        """Replace a doubtful ``record`` with this attempt's INPROGRESS claim, in one conditional write.

        Never delete, then claim: a failure or crash between the two would leave no record, and the
        next attempt would send the event without looking for it first. Written only if the record is
        still the one read (status, expiry and in-progress expiry unchanged).

        Raises:
            IdempotencyItemAlreadyExistsError: another attempt changed the record since it was read.
        """
        key = _store.hashed_key(self, data)
        assert key is not None  # raise_on_no_idempotency_key
        now_ms = int(datetime.now().timestamp() * 1000)  # Powertools' own claims use the real clock
        item = {
            **_store.key_of(self, key),
            self.expiry_attr: {"N": str(_store.expiry_timestamp(self))},
            self.status_attr: {"S": STATUS_CONSTANTS["INPROGRESS"]},
            self.in_progress_expiry_attr: {"N": str(now_ms + in_progress_ms)},
        }
        if self.payload_validation_enabled:
            item[self.validation_key_attr] = {"S": _store.hashed_payload(self, data)}
        names = {
            "#status": self.status_attr,
            "#expiry": self.expiry_attr,
            "#in_progress_expiry": self.in_progress_expiry_attr,
        }
        values: dict[str, Any] = {
            ":status": {"S": record.status},
            ":expiry": {"N": str(record.expiry_timestamp)},
        }
        condition = "#status = :status AND #expiry = :expiry AND "
        if record.in_progress_expiry_timestamp is None:
            condition += "attribute_not_exists(#in_progress_expiry)"
        else:
            condition += "#in_progress_expiry = :in_progress_expiry"
            values[":in_progress_expiry"] = {"N": str(record.in_progress_expiry_timestamp)}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise IdempotencyItemAlreadyExistsError() from None

    def _until_processed(self, send: Callable[[Any], Any], pending: Any, what: str) -> None:
        """Send a batch request, then what DynamoDB left unprocessed, with a short backoff."""
        for attempt in range(BATCH_ATTEMPTS):
            pending = send(pending)
            if not pending:
                return
            self._sleep(BATCH_BACKOFF_S * 2**attempt)
        raise UnprocessedError(f"DynamoDB left idempotency {what} unprocessed")


def _in_chunks(
    keys: list[str], size: int, operation: Callable[[list[str]], dict[str, Any]]
) -> dict[str, Any]:
    """``operation`` on ``size`` keys at a time, merged; a failed chunk's keys get its error."""
    merged: dict[str, Any] = {}
    for start in range(0, len(keys), size):
        chunk = keys[start : start + size]
        try:
            merged.update(operation(chunk))
        except Exception as exc:  # throttled or unreachable: these records must wait
            merged.update(dict.fromkeys(chunk, exc))
    return merged
