"""POST /events and its Idempotency-Key: replay, conflict, blind retries, lost replies; moto's DynamoDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.runner import load_handler
from local.sandbox import Fault, Sandbox
from tests.integration.test_api import (
    DEMO_KEY,
    MULTI_KEY,
    QUICK_MS,
    Call,
    api_environment,
    bind_to_both_groups,
    caller,
    event_body,
)

TABLE = "salesmanago-bridge-test-idempotency"
KEY = {"Idempotency-Key": "order-2026-11-0077"}


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
def call(monkeypatch: pytest.MonkeyPatch, groups_file: Path, dynamodb: Any) -> Iterator[Call]:
    with api_environment(monkeypatch, groups_file, IDEMPOTENCY_TABLE_NAME=TABLE):
        yield caller(load_handler("api").lambda_handler)


def no_date(email: str = "buyer@customer.example.com", **fields: Any) -> dict[str, Any]:
    return event_body(email, **fields)


# ---- with an Idempotency-Key ------------------------------------------------------------------
def test_api_idempotency_key_replay_returns_first_reply_and_creates_no_second_event(
    call: Call, sandbox: Sandbox
):
    # Given an event sent with a key (and no date: the bridge dates it)
    first = call("POST", "/events", no_date(), headers=KEY)
    # When the client sends it again with the same key and body
    second = call("POST", "/events", no_date(), headers=KEY)
    # Then the second answer is the first one, marked as a replay, and SALESmanago has one event
    assert first.status == second.status == 200
    assert second.body == first.body
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(sandbox.events("buyer@customer.example.com")) == 1
    assert len(sandbox.requests_to("addContactExtEvent")) == 1


def test_api_idempotency_key_with_another_body_is_409(call: Call, sandbox: Sandbox):
    # Given a key already used
    call("POST", "/events", no_date(value=10), headers=KEY)
    # When it comes back with another body
    reply = call("POST", "/events", no_date(value=99), headers=KEY)
    # Then
    assert reply.status == 409
    assert reply.error["code"] == "idempotency_conflict"
    assert reply.fields() == ["Idempotency-Key"]
    assert len(sandbox.events("buyer@customer.example.com")) == 1


def test_api_idempotency_key_ignores_formatting_of_the_same_body(call: Call, sandbox: Sandbox):
    body = no_date(description="same")
    call("POST", "/events", json.dumps(body), headers=KEY)
    reordered = json.dumps(
        {"data": dict(reversed(list(body["data"].items()))), "group_key": "demo-shop"}, indent=2
    )
    assert call("POST", "/events", reordered, headers=KEY).status == 200
    assert len(sandbox.events("buyer@customer.example.com")) == 1


def test_api_idempotency_key_is_scoped_by_api_key_and_group(call: Call, groups_file: Path, sandbox: Sandbox):
    # Given the same key value from two API keys on one group, and from one API key on two groups
    bind_to_both_groups(groups_file)
    body = no_date()
    call("POST", "/events", body, headers=KEY, key_id=DEMO_KEY)
    call("POST", "/events", body, headers=KEY, key_id=MULTI_KEY)
    call("POST", "/events", {**body, "group_key": "outlet"}, headers=KEY, key_id=MULTI_KEY)
    # Then each scope is its own event
    assert len(sandbox.events("buyer@customer.example.com", client_id="demo-client-1")) == 2
    assert len(sandbox.events("buyer@customer.example.com", client_id="outlet-client-2")) == 1


def test_api_idempotency_key_retry_after_lost_reply_creates_no_second_event(call: Call, sandbox: Sandbox):
    # Given SALESmanago creates the event but its reply never arrives
    sandbox.inject(Fault("slow", delay_s=2.0, path="addContactExtEvent", apply=True))
    first = call("POST", "/events", no_date(), headers=KEY, remaining_ms=QUICK_MS)
    assert first.status == 503 and first.error["code"] == "outcome_unknown"
    # When the client retries with the same key and body
    retry = call("POST", "/events", no_date(), headers=KEY)
    # Then the bridge finds the event instead of creating it again
    [stored] = sandbox.events("buyer@customer.example.com")
    assert retry.status == 200
    assert retry.body["eventId"] == stored["eventId"]


def test_api_idempotency_key_retry_after_503_sends_it(call: Call, sandbox: Sandbox):
    # Given the first attempt failed before anything was created
    sandbox.inject(Fault("status", status=503, path="addContactExtEvent", times=2))
    assert call("POST", "/events", no_date(), headers=KEY, remaining_ms=QUICK_MS).status == 503
    # When retried, it is sent, once
    retry = call("POST", "/events", no_date(), headers=KEY)
    assert retry.status == 200 and retry.body["eventId"]
    assert "Idempotent-Replayed" not in retry.headers
    assert len(sandbox.events("buyer@customer.example.com")) == 1


def test_api_idempotency_key_stays_bound_to_its_first_body_after_a_failure(call: Call, sandbox: Sandbox):
    sandbox.inject(Fault("status", status=503, path="addContactExtEvent", times=2))
    call("POST", "/events", no_date(value=1), headers=KEY, remaining_ms=QUICK_MS)
    assert call("POST", "/events", no_date(value=2), headers=KEY).status == 409


def test_api_idempotency_key_of_a_refused_body_stays_free(call: Call, sandbox: Sandbox):
    # Given a first attempt the bridge refuses (a field nothing maps)
    refused = call("POST", "/events", no_date(colour="red"), headers=KEY)
    assert refused.status == 400 and refused.error["code"] == "unmapped_field"
    # When the corrected body comes with the same key
    reply = call("POST", "/events", no_date(), headers=KEY)
    # Then it is applied, not refused as a reuse of the key
    assert reply.status == 200
    assert len(sandbox.events("buyer@customer.example.com")) == 1


def test_api_idempotency_store_unavailable_is_503_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, groups_file: Path, dynamodb: Any, sandbox: Sandbox
):
    with api_environment(monkeypatch, groups_file, IDEMPOTENCY_TABLE_NAME="no-such-table"):
        reply = caller(load_handler("api").lambda_handler)("POST", "/events", no_date(), headers=KEY)
    assert reply.status == 503 and reply.error["code"] == "unavailable"
    assert int(reply.headers["Retry-After"]) >= 1
    assert not sandbox.requests


# ---- without a key: the guard of every source --------------------------------------------------
def test_api_blind_retry_without_key_or_date_creates_no_second_event(call: Call, sandbox: Sandbox):
    first = call("POST", "/events", no_date())
    second = call("POST", "/events", no_date())
    assert second.body == first.body
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert len(sandbox.events("buyer@customer.example.com")) == 1


def test_api_blind_retry_with_a_date_creates_no_second_event(call: Call, sandbox: Sandbox):
    body = event_body(date="2026-11-25T18:29:00Z")
    call("POST", "/events", body)
    assert call("POST", "/events", body).headers.get("Idempotent-Replayed") == "true"
    assert len(sandbox.events("buyer@customer.example.com")) == 1


def test_api_different_events_without_key_are_all_created(call: Call, sandbox: Sandbox):
    for value in (1, 2, 3):
        assert call("POST", "/events", no_date(value=value)).status == 200
    assert len(sandbox.events("buyer@customer.example.com")) == 3


def test_api_without_table_idempotency_key_is_accepted(
    monkeypatch: pytest.MonkeyPatch, groups_file: Path, sandbox: Sandbox
):
    # Given IDEMPOTENCY_TABLE_NAME unset (idempotency off, as DESIGN.md allows)
    with api_environment(monkeypatch, groups_file):
        reply = caller(load_handler("api").lambda_handler)("POST", "/events", no_date(), headers=KEY)
    # Then the event still goes through
    assert reply.status == 200
    assert len(sandbox.events("buyer@customer.example.com")) == 1
