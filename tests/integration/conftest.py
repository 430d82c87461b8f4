"""Handler fixtures: the environment a deployed function has, with moto for SQS and the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.runner import load_handler


@pytest.fixture
def aws() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        import boto3

        yield boto3.client("sqs", region_name="eu-central-1")


@pytest.fixture
def dead_letter_queue(aws: Any) -> str:
    return aws.create_queue(QueueName="salesmanago-bridge-test-dead-letters")["QueueUrl"]


@pytest.fixture
def bridge_env(monkeypatch: pytest.MonkeyPatch, groups_file: Path, dead_letter_queue: str) -> dict[str, str]:
    """Point the handlers at the sandbox and the moto dead-letter queue; rebuild the cached dispatcher."""
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    env = {
        "STAGE": "test",
        "SALESMANAGO_GROUPS_FILE": str(groups_file),
        "DEAD_LETTER_QUEUE_URL": dead_letter_queue,
        "SALESMANAGO_READ_TIMEOUT_S": "1.0",
        "SALESMANAGO_MAX_RETRIES": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    get_dispatcher.cache_clear()
    yield env
    get_settings.cache_clear()
    get_dispatcher.cache_clear()


@pytest.fixture
def handler(bridge_env: dict[str, str]) -> Any:
    """``handler("sqs_consumer")`` → that function's ``lambda_handler``."""
    return lambda name: load_handler(name).lambda_handler


@pytest.fixture
def dead_letters(aws: Any, dead_letter_queue: str) -> Any:
    """Read (and remove) what reached the dead-letter queue: ``[(body, reason), ...]``."""

    def read() -> list[tuple[Any, dict[str, Any]]]:
        found = []
        while True:
            reply = aws.receive_message(
                QueueUrl=dead_letter_queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            messages = reply.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                reason = json.loads(message["MessageAttributes"]["bridge-failure"]["StringValue"])
                try:
                    body = json.loads(message["Body"])
                except (ValueError, RecursionError):  # not JSON, or a hostile body parked as it came
                    body = message["Body"]
                found.append((body, reason))
                aws.delete_message(QueueUrl=dead_letter_queue, ReceiptHandle=message["ReceiptHandle"])

    return read
