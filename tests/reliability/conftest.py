"""Reliability fixtures: idempotency on moto's DynamoDB, a fake clock, a dispatcher wired to both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.deadletters import DeadLetterSink
from salesmanago_bridge.dispatch import Dispatcher
from salesmanago_bridge.groups import FileGroupStore
from salesmanago_bridge.idempotency import EventGuard
from salesmanago_bridge.settings import Settings
from tests.conftest import FakeClock

TABLE = "salesmanago-bridge-test-idempotency"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        import boto3

        client = boto3.client("dynamodb", region_name="eu-central-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


@pytest.fixture
def make_dispatcher(groups_file: Path, dynamodb: Any, clock: FakeClock) -> Any:
    """A dispatcher with the idempotency guard on (or off with ``guard=False``)."""

    def build(guard: bool = True, **env: Any) -> Dispatcher:
        settings = Settings.model_validate(
            {
                "SALESMANAGO_GROUPS_FILE": str(groups_file),
                "SALESMANAGO_READ_TIMEOUT_S": 0.3,
                "IDEMPOTENCY_TABLE_NAME": TABLE if guard else None,
                **env,
            }
        )
        client = SalesmanagoClient(settings, clock=clock)
        event_guard = (
            EventGuard(TABLE, settings.idempotency_ttl_s, clock=clock, dynamodb_client=dynamodb)
            if guard
            else None
        )
        return Dispatcher(
            settings, FileGroupStore(groups_file), client, DeadLetterSink(None), guard=event_guard
        )

    return build
