"""Shared fixtures: the sandbox, group configs pointing at it, Lambda contexts and sample events."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
SAMPLE_GROUPS = ROOT / "local" / "groups.sample.json"

# No test may reach AWS: fake credentials and a fixed region before boto3 is imported anywhere.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="eu-central-1",
    POWERTOOLS_SERVICE_NAME="salesmanago-bridge",
    POWERTOOLS_METRICS_NAMESPACE="SalesmanagoBridge",
    POWERTOOLS_TRACE_DISABLED="true",
    # The sandbox listens on 127.0.0.1: the tests allow loopback group endpoints, as the demo does.
    SALESMANAGO_ALLOW_LOOPBACK="true",
)


# The required fields of a product in our payload, for tests that only vary the id.
PRODUCT_BASE = {
    "name": "N",
    "description": "D",
    "category": "C",
    "brand": "B",
    "url": "https://s.example.com/p",
    "image_url": "https://s.example.com/i",
}


class FakeClock:
    """Starts at the real time (DynamoDB expiries are real) and moves only when slept on or advanced,
    so backoff, Retry-After and deadlines cost no real time."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def load_event(name: str) -> dict[str, Any]:
    """A sample from ``events/`` (the same files the demo and ``sam local invoke -e`` use)."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture(name="load_event")
def load_event_fixture() -> Any:
    return load_event


@pytest.fixture
def sample_groups() -> dict[str, dict[str, Any]]:
    return json.loads(SAMPLE_GROUPS.read_text())


@pytest.fixture
def sandbox(sample_groups: dict[str, dict[str, Any]]) -> Iterator[Any]:
    """The SALESmanago sandbox on a free port, with the sample groups' accounts."""
    from local.sandbox import Sandbox

    with Sandbox.from_groups_file(SAMPLE_GROUPS) as running:
        yield running


@pytest.fixture
def groups_file(tmp_path: Path, sandbox: Any, sample_groups: dict[str, dict[str, Any]]) -> Path:
    """The sample groups, pointed at the running sandbox."""
    for config in sample_groups.values():
        config["endpoint"] = config["products_endpoint"] = sandbox.url
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(sample_groups))
    return path


class FakeContext:
    """A LambdaContext with a controllable remaining time."""

    function_name = "salesmanago-bridge-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:salesmanago-bridge-test"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    function_version = "$LATEST"
    log_group_name = "/aws/lambda/salesmanago-bridge-test"
    log_stream_name = "test"

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()
