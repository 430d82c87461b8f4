"""The libraries' private helpers the bridge relies on, each used in one adapter: when an upgrade
renames one or changes its parameters, this fails here, loudly, instead of in production."""

from __future__ import annotations

import inspect

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from urllib3.exceptions import ConnectTimeoutError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from salesmanago_bridge.client import URLLIB3_PRIVATE, sent_without_reply
from salesmanago_bridge.idempotency_store import _StoreInternals


def parameters(owner: type, name: str) -> tuple[str, ...]:
    member = getattr(owner, name, None)
    assert callable(member), f"{owner.__name__}.{name} is gone: see its adapter before upgrading"
    return tuple(inspect.signature(member).parameters)


@pytest.mark.parametrize(("name", "expected"), sorted(URLLIB3_PRIVATE.items()))
def test_urllib3_private_helpers_keep_their_shape(name: str, expected: tuple[str, ...]) -> None:
    assert parameters(Retry, name) == expected


@pytest.mark.parametrize(("name", "expected"), sorted(_StoreInternals.POWERTOOLS_PRIVATE.items()))
def test_powertools_private_helpers_keep_their_shape(name: str, expected: tuple[str, ...]) -> None:
    assert parameters(DynamoDBPersistenceLayer, name) == expected


def test_every_store_helper_the_adapter_calls_is_listed() -> None:
    source = inspect.getsource(_StoreInternals)
    called = {name for name in _StoreInternals.POWERTOOLS_PRIVATE if f"store.{name}(" in source}
    assert called == set(_StoreInternals.POWERTOOLS_PRIVATE)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ReadTimeoutError(None, "/", "read timed out"), True),  # type: ignore[arg-type]
        (ProtocolError("connection aborted"), True),
        (ConnectTimeoutError("connect timed out"), False),
    ],
)
def test_sent_without_reply_means_what_urllib3_counts_as_a_read_error(
    error: Exception, expected: bool
) -> None:
    assert sent_without_reply(Retry(), error) is expected
