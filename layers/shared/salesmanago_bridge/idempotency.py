"""Exactly-once external events: a Powertools Idempotency record per event, in DynamoDB.

SALESmanago deduplicates upserts but not events. Before an event is sent, its record is claimed
(INPROGRESS); after SALESmanago answers it is completed, or released when the call surely had no
effect. Two moments leave the outcome unknown: no reply after sending, and a crash between
SALESmanago's accept and our completion. Both leave a record we treat as *doubtful*: the next
attempt reconciles (looks the event up among the contact's events) before sending again.

The records are read and written a batch at a time (``idempotency_store``); only the conditional
claim is one call per event. The HTTP API's ``Idempotency-Key`` guard is ``request_guard``.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from salesmanago_bridge.claims import Claim, ClaimKind, IdempotencyConflictError
from salesmanago_bridge.commands import Command
from salesmanago_bridge.errors import BridgeError, UnavailableError
from salesmanago_bridge.idempotency_store import BATCH_ATTEMPTS, COMPLETED, BatchingPersistenceLayer

__all__ = [
    "BATCH_ATTEMPTS",
    "Claim",
    "ClaimKind",
    "EventGuard",
    "IdempotencyConflictError",
    "event_config",
    "idempotency_data",
]

KEY_PREFIX = "event.create"  # one prefix for every function: a replay through any source is recognised
UNKNOWN_MARKER = "outcome_unknown"
DEFAULT_IN_PROGRESS_MS = 60_000
GUARD_PARALLELISM = 16


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
