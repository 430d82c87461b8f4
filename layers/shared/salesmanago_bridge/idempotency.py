"""Exactly-once external events: a Powertools Idempotency record per event, in DynamoDB.

SALESmanago deduplicates upserts but not events. Before an event is sent, its record is claimed
(INPROGRESS); after SALESmanago answers it is completed, or released when the call surely had no
effect. Two moments leave the outcome unknown: no reply after sending, and a crash between
SALESmanago's accept and our completion. Both leave a record we treat as *doubtful*: the next
attempt reconciles (looks the event up among the contact's events) before sending again.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
    IdempotencyValidationError,
)

from salesmanago_bridge.commands import Command
from salesmanago_bridge.errors import BridgeError, ErrorType, PermanentError, UnavailableError

KEY_PREFIX = "event.create"  # one prefix for every function: a replay through any source is recognised
UNKNOWN_MARKER = "outcome_unknown"
COMPLETED = "COMPLETED"
DEFAULT_IN_PROGRESS_MS = 60_000
GUARD_PARALLELISM = 16


class IdempotencyConflictError(PermanentError):
    """Raised when an event id already used for other content arrives again."""

    error_type = ErrorType.IDEMPOTENCY_CONFLICT


class ClaimKind(StrEnum):
    NEW = "new"  # claimed: send it
    DOUBTFUL = "doubtful"  # claimed, but an earlier attempt may have created it: reconcile first
    DUPLICATE = "duplicate"  # already applied: do not send, report the stored result
    BUSY = "busy"  # another invocation is sending it right now: retry later
    CONFLICT = "conflict"  # same id, other content


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    stored: dict[str, Any] | None = None


def idempotency_data(command: Command) -> dict[str, Any]:
    """What the key and the payload check are computed from (DESIGN.md: hash of group_key and id)."""
    payload = json.dumps(command.normalized()["data"], sort_keys=True, separators=(",", ":"))
    return {
        "group_key": command.group_key,
        "id": command.id,
        "payload": hashlib.sha256(payload.encode()).hexdigest(),
    }


class EventGuard:
    """Claims, completes and releases event records; every batch operation runs concurrently."""

    def __init__(self, table_name: str, ttl_s: int, *, clock: Any, dynamodb_client: Any = None) -> None:
        self.persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)
        self.persistence.configure(
            IdempotencyConfig(
                event_key_jmespath="[group_key, id]",
                payload_validation_jmespath="payload",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=ttl_s,
                hash_function="sha256",
            ),
            key_prefix=KEY_PREFIX,
        )
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=GUARD_PARALLELISM, thread_name_prefix="idempotency")

    def claim_all(self, commands: list[Command], in_progress_ms: int | None) -> list[Claim | BridgeError]:
        """Claim each event; an error (DynamoDB unavailable) is returned in place of its claim."""
        return list(self._pool.map(lambda c: self._guarded(self.claim, c, in_progress_ms), commands))

    def claim(self, command: Command, in_progress_ms: int | None = None) -> Claim:
        data = idempotency_data(command)
        try:
            record = self.persistence.get_record(data)
        except IdempotencyItemNotFoundError:
            record = None
        except IdempotencyValidationError:
            return Claim(ClaimKind.CONFLICT)
        doubtful = False
        if record is not None and not record.is_expired:
            stored = record.response_json_as_dict()
            if record.status == COMPLETED and not (stored or {}).get(UNKNOWN_MARKER):
                return Claim(ClaimKind.DUPLICATE, stored)
            if (
                record.status != COMPLETED
                and (record.in_progress_expiry_timestamp or 0) > self.clock.time() * 1000
            ):
                return Claim(ClaimKind.BUSY)
            # An attempt that crashed mid-send, or whose reply was lost: take it over, then reconcile.
            doubtful = True
            self.persistence.delete_record(data, exception=RuntimeError("taken over for reconciliation"))
        try:
            self.persistence.save_inprogress(
                data, remaining_time_in_millis=in_progress_ms or DEFAULT_IN_PROGRESS_MS
            )
        except IdempotencyItemAlreadyExistsError:
            return Claim(ClaimKind.BUSY)
        return Claim(ClaimKind.DOUBTFUL if doubtful else ClaimKind.NEW)

    def complete_all(self, applied: list[tuple[Command, dict[str, Any]]]) -> list[BridgeError | None]:
        return list(self._pool.map(lambda pair: self._guarded(self.complete, *pair), applied))

    def complete(self, command: Command, result: dict[str, Any]) -> None:
        self.persistence.save_success(idempotency_data(command), result=result)

    def mark_unknown_all(self, commands: list[Command]) -> list[BridgeError | None]:
        """Record that these events may exist: the next attempt reconciles before sending."""
        return list(
            self._pool.map(lambda c: self._guarded(self.complete, c, {UNKNOWN_MARKER: True}), commands)
        )

    def release_all(self, commands: list[Command]) -> list[BridgeError | None]:
        """Forget claims whose send surely had no effect, so a retry sends them at once."""
        return list(self._pool.map(lambda c: self._guarded(self.release, c), commands))

    def release(self, command: Command) -> None:
        self.persistence.delete_record(idempotency_data(command), exception=RuntimeError("released"))

    @staticmethod
    def _guarded(operation: Any, *args: Any) -> Any:
        try:
            return operation(*args)
        except BridgeError as error:
            return error
        except Exception as exc:  # DynamoDB throttled or unreachable: the event must wait
            return UnavailableError(f"idempotency store unavailable: {type(exc).__name__}")
