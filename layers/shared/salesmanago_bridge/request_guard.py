"""Request-level idempotency of the HTTP API (POST /events): when an ``Idempotency-Key`` (or an
undated event body) was first seen, and with which body, so a client's retry becomes the very same
event command, which the event guard (``idempotency``) then sends at most once.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from salesmanago_bridge.claims import IdempotencyConflictError
from salesmanago_bridge.errors import FieldProblem, RequestInProgressError, UnavailableError
from salesmanago_bridge.settings import get_settings

__all__ = ["IDEMPOTENCY_KEY_HEADER", "RequestGuard", "get_request_guard", "sha256_of"]

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
