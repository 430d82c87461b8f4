"""Exactly-once external events: a Powertools Idempotency record per event, in DynamoDB.

SALESmanago deduplicates upserts but not events. Before an event is sent, its record is claimed
(INPROGRESS); after SALESmanago answers it is completed, or released when the call surely had no
effect. Two moments leave the outcome unknown: no reply after sending, and a crash between
SALESmanago's accept and our completion. Both leave a record we treat as *doubtful*: the next
attempt reconciles (looks the event up among the contact's events) before sending again.

A batch's lookups go to DynamoDB 100 at a time (BatchGetItem) and its completions 25 at a time
(BatchWriteItem); only the conditional claim is one call per event. Powertools' store does each
record alone: three calls an event.

The HTTP API's request-level guard lives here too (``RequestGuard``): it remembers when an
``Idempotency-Key`` (or an undated event body) was first seen, so a client's retry becomes the very
same event command, which the event guard then sends at most once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord

from salesmanago_bridge.claims import Claim, ClaimKind, IdempotencyConflictError
from salesmanago_bridge.commands import Command
from salesmanago_bridge.errors import BridgeError, FieldProblem, RequestInProgressError, UnavailableError
from salesmanago_bridge.settings import get_settings

__all__ = [
    "Claim",
    "ClaimKind",
    "EventGuard",
    "IdempotencyConflictError",
    "RequestGuard",
    "get_request_guard",
    "idempotency_data",
    "sha256_of",
]

KEY_PREFIX = "event.create"  # one prefix for every function: a replay through any source is recognised
UNKNOWN_MARKER = "outcome_unknown"
COMPLETED = "COMPLETED"
DEFAULT_IN_PROGRESS_MS = 60_000
GUARD_PARALLELISM = 16
BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem
BATCH_ATTEMPTS = 4  # unprocessed keys or items are asked again, with a short backoff
BATCH_BACKOFF_S = 0.05


class UnprocessedError(Exception):
    """DynamoDB left keys or items unprocessed after every attempt (throttled)."""


def idempotency_data(command: Command) -> dict[str, Any]:
    """What the key and the payload check are computed from (DESIGN.md: hash of group_key and id)."""
    payload = json.dumps(command.normalized()["data"], sort_keys=True, separators=(",", ":"))
    return {
        "group_key": command.group_key,
        "id": command.id,
        "payload": hashlib.sha256(payload.encode()).hexdigest(),
    }


def event_config(ttl_s: int) -> IdempotencyConfig:
    """Keys from (group_key, id); the payload hash tells a reused id from a redelivery."""
    return IdempotencyConfig(
        event_key_jmespath="[group_key, id]",
        payload_validation_jmespath="payload",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=ttl_s,
        hash_function="sha256",
    )


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


class EventGuard:
    """Claims, completes and releases event records for a batch of events at a time."""

    def __init__(self, table_name: str, ttl_s: int, *, clock: Any, dynamodb_client: Any = None) -> None:
        self.persistence = BatchingPersistenceLayer(
            table_name=table_name, boto3_client=dynamodb_client, sleep=clock.sleep
        )
        self.persistence.configure(event_config(ttl_s), key_prefix=KEY_PREFIX)
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=GUARD_PARALLELISM, thread_name_prefix="idempotency")

    def claim_all(self, commands: list[Command], in_progress_ms: int | None) -> list[Claim | BridgeError]:
        """Claim each event; an error (DynamoDB unavailable) is returned in place of its claim.

        One batch lookup for all of them, then the conditional claims concurrently.
        """
        datas = [idempotency_data(command) for command in commands]
        records = self.persistence.get_records(datas)
        return list(
            self._pool.map(
                lambda pair: self._guarded(self._claim, *pair, in_progress_ms),
                zip(datas, records, strict=True),
            )
        )

    def _claim(
        self,
        data: dict[str, Any],
        record: DataRecord | Exception | None,
        in_progress_ms: int | None,
        *,
        fresh: bool = False,
    ) -> Claim:
        """Judge the record read for the batch; a takeover is judged again on the record as it is."""
        if isinstance(record, Exception):
            raise record
        if record is not None and not self.persistence.payload_matches(data, record):
            return Claim(ClaimKind.CONFLICT)
        if record is not None and not record.is_expired:
            stored = record.response_json_as_dict()
            if record.status == COMPLETED and not (stored or {}).get(UNKNOWN_MARKER):
                return Claim(ClaimKind.DUPLICATE, stored)
            if (
                record.status != COMPLETED
                and (record.in_progress_expiry_timestamp or 0) > self.clock.time() * 1000
            ):
                return Claim(ClaimKind.BUSY)
            if not fresh:
                # The batch's snapshot may be stale by now (another invocation may have taken the
                # record over since): read it again right before deleting it.
                try:
                    current = self.persistence.get_record(data)
                except IdempotencyItemNotFoundError:
                    current = None
                except IdempotencyValidationError:
                    return Claim(ClaimKind.CONFLICT)
                return self._claim(data, current, in_progress_ms, fresh=True)
            # An attempt that crashed mid-send, or whose reply was lost: take it over, then reconcile.
            try:
                self.persistence.take_over(data, record, in_progress_ms or DEFAULT_IN_PROGRESS_MS)
            except IdempotencyItemAlreadyExistsError:
                return Claim(ClaimKind.BUSY)
            return Claim(ClaimKind.DOUBTFUL)
        try:
            self.persistence.save_inprogress(
                data, remaining_time_in_millis=in_progress_ms or DEFAULT_IN_PROGRESS_MS
            )
        except IdempotencyItemAlreadyExistsError:
            return Claim(ClaimKind.BUSY)
        except IdempotencyValidationError:
            return Claim(ClaimKind.CONFLICT)
        return Claim(ClaimKind.NEW)

    def complete_all(self, applied: list[tuple[Command, dict[str, Any]]]) -> list[BridgeError | None]:
        """Mark these events applied, with their results, in batch writes."""
        errors = self.persistence.save_successes(
            [(idempotency_data(command), result) for command, result in applied]
        )
        return [None if error is None else self._unavailable(error) for error in errors]

    def mark_unknown_all(self, commands: list[Command]) -> list[BridgeError | None]:
        """Record that these events may exist: the next attempt reconciles before sending."""
        return self.complete_all([(command, {UNKNOWN_MARKER: True}) for command in commands])

    def release_all(self, commands: list[Command]) -> list[BridgeError | None]:
        """Forget claims whose send surely had no effect, so a retry sends them at once."""
        return list(self._pool.map(lambda c: self._guarded(self.release, c), commands))

    def release(self, command: Command) -> None:
        self.persistence.delete_record(idempotency_data(command), exception=RuntimeError("released"))

    @classmethod
    def _guarded(cls, operation: Any, *args: Any) -> Any:
        try:
            return operation(*args)
        except BridgeError as error:
            return error
        except Exception as exc:  # DynamoDB throttled or unreachable: the event must wait
            return cls._unavailable(exc)

    @staticmethod
    def _unavailable(exc: Exception) -> BridgeError:
        return UnavailableError(f"idempotency store unavailable: {type(exc).__name__}")


# ---- request-level idempotency of the HTTP API (POST /events) ------------------------------------
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# An event without date, Idempotency-Key (or id) is recognised by its body for this long: a client's
# blind retry is not a second event, the same body sent later is.
BLIND_RETRY_WINDOW_S = 900
# The first sight of a key is remembered a little longer than the event it pins.
KEY_MEMORY_MARGIN_S = 3600
KEYED_PREFIX = "api.idempotency_key"
UNKEYED_PREFIX = "api.event_body"


def sha256_of(value: Any) -> str:
    """A stable hash of a JSON-able value (keys sorted): the same body always hashes the same."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _arrival(request: dict[str, Any]) -> dict[str, Any]:
    return {"first_seen_ms": request["now_ms"]}


class RequestGuard:
    """Remembers when a key was first seen, and with which body (Powertools Idempotency, DynamoDB)."""

    def __init__(self, table_name: str, ttl_s: int, *, dynamodb_client: Any = None) -> None:
        keyed = IdempotencyConfig(
            event_key_jmespath="scope",
            payload_validation_jmespath="body_sha256",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_s + KEY_MEMORY_MARGIN_S,
            hash_function="sha256",
        )
        unkeyed = IdempotencyConfig(
            event_key_jmespath="scope",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=BLIND_RETRY_WINDOW_S,
            hash_function="sha256",
        )
        self._configs = {True: keyed, False: unkeyed}
        if dynamodb_client is None:  # one client for both layers: each would build its own
            import boto3

            dynamodb_client = boto3.client("dynamodb")
        self.dynamodb_client = dynamodb_client
        # A persistence layer keeps the first config it is given: one layer per config.
        self._remember = {
            flag: idempotent_function(
                _arrival,
                data_keyword_argument="request",
                persistence_store=DynamoDBPersistenceLayer(
                    table_name=table_name, boto3_client=dynamodb_client
                ),
                config=config,
                key_prefix=KEYED_PREFIX if flag else UNKEYED_PREFIX,
            )
            for flag, config in self._configs.items()
        }

    def first_seen(self, scope: list[str], body_sha256: str, now_ms: int, *, keyed: bool) -> int:
        """When ``scope`` was first seen (``now_ms`` if now).

        Raises:
            IdempotencyConflictError: a keyed scope seen before with another body.
            RequestInProgressError: the same key is being recorded by a concurrent request.
            UnavailableError: DynamoDB refused or could not be reached.
        """
        request = {"scope": scope, "body_sha256": body_sha256, "now_ms": now_ms}
        try:
            return int(self._remember[keyed](request=request)["first_seen_ms"])
        except IdempotencyValidationError:
            raise IdempotencyConflictError(
                f"this {IDEMPOTENCY_KEY_HEADER} was already used with another body",
                details=[FieldProblem(IDEMPOTENCY_KEY_HEADER, "was used before with another body")],
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise RequestInProgressError(
                f"a request with this {IDEMPOTENCY_KEY_HEADER} is in progress"
            ) from None
        except Exception as exc:
            raise UnavailableError(f"idempotency store unavailable: {type(exc).__name__}") from exc

    def register(self, context: Any) -> None:
        for config in self._configs.values():
            config.register_lambda_context(context)


@lru_cache(maxsize=1)
def get_request_guard() -> RequestGuard | None:
    """The process-wide guard, or None when IDEMPOTENCY_TABLE_NAME is unset (idempotency off)."""
    settings = get_settings()
    if not settings.idempotency_table_name:
        return None
    from salesmanago_bridge.dispatch import get_dispatcher  # dispatch builds the event guard lazily

    events = get_dispatcher().guard  # the same table: one DynamoDB client for both guards
    client = events.persistence.client if events is not None else None
    return RequestGuard(settings.idempotency_table_name, settings.idempotency_ttl_s, dynamodb_client=client)
