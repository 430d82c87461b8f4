"""What claiming an event's idempotency record can come to, without loading DynamoDB's client:
the dispatcher reads claims on every batch, the guard (``idempotency``) is built on the first event."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from salesmanago_bridge.errors import ErrorType, PermanentError


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
