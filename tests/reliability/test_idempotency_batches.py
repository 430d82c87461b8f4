"""The idempotency store works a batch at a time: lookups 100 to a BatchGetItem, completions 25 to a
BatchWriteItem, one conditional claim per event; records stay readable by Powertools' own store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from salesmanago_bridge.commands import CommandEnvelope
from salesmanago_bridge.errors import UnavailableError
from salesmanago_bridge.idempotency import (
    BATCH_ATTEMPTS,
    KEY_PREFIX,
    ClaimKind,
    EventGuard,
    event_config,
    idempotency_data,
)
from salesmanago_bridge.sources import Inbound, Source
from tests.reliability.conftest import TABLE

EVENT_DATA = {"email": "ev@customer.example.com", "contactExtEventType": "PURCHASE", "value": 5}


def command(n: int, value: float = 10) -> Any:
    body = {
        "action": "event.create",
        "group_key": "demo-shop",
        "id": f"order-{n}",
        "data": {"email": f"ev{n}@customer.example.com", "contactExtEventType": "PURCHASE", "value": value},
    }
    return CommandEnvelope.parse(body).to_command(sent_at_ms=1_764_095_400_000)


@pytest.fixture
def calls(dynamodb: Any) -> Iterator[Counter[str]]:
    """DynamoDB operations the client makes, by name."""
    made: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        made[model.name] += 1

    dynamodb.meta.events.register("before-call.dynamodb.*", count)
    yield made
    dynamodb.meta.events.unregister("before-call.dynamodb.*", count)


@pytest.fixture
def guard(dynamodb: Any, clock: Any) -> EventGuard:
    return EventGuard(TABLE, 3600, clock=clock, dynamodb_client=dynamodb)


def test_idempotency_batch_of_250_events_costs_one_call_per_event_plus_batches(guard, calls):
    commands = [command(n) for n in range(250)]
    claims = guard.claim_all(commands, 60_000)
    assert {claim.kind for claim in claims} == {ClaimKind.NEW}
    assert calls == {"BatchGetItem": 3, "PutItem": 250}
    calls.clear()
    assert guard.complete_all([(c, {"eventId": c.id}) for c in commands]) == [None] * 250
    assert calls == {"BatchWriteItem": 10}
    calls.clear()
    # A redelivery of the whole batch: every one a duplicate with its stored result, found in 3 reads
    again = guard.claim_all(commands, 60_000)
    assert [claim.kind for claim in again] == [ClaimKind.DUPLICATE] * 250
    assert [claim.stored for claim in again] == [{"eventId": c.id} for c in commands]
    assert calls == {"BatchGetItem": 3}


def test_idempotency_batch_records_are_powertools_records(guard, dynamodb):
    # Records completed in a batch write read back through Powertools' own store, and the other way
    done, claimed = command(1), command(2)
    guard.claim_all([done, claimed], 60_000)
    guard.complete_all([(done, {"eventId": "e-1"})])
    store = DynamoDBPersistenceLayer(table_name=TABLE, boto3_client=dynamodb)
    store.configure(event_config(3600), key_prefix=KEY_PREFIX)
    record = store.get_record(idempotency_data(done))
    assert (record.status, record.response_json_as_dict()) == ("COMPLETED", {"eventId": "e-1"})
    assert store.get_record(idempotency_data(claimed)).status == "INPROGRESS"


def test_idempotency_batch_same_event_twice_claims_it_once(guard, calls):
    # The same event twice in one batch (no duplicate keys in the BatchGetItem)
    claims = guard.claim_all([command(1), command(1)], 60_000)
    assert sorted(claim.kind for claim in claims) == [ClaimKind.BUSY, ClaimKind.NEW]
    assert calls["BatchGetItem"] == 1


def test_idempotency_batch_other_content_under_a_used_id_is_a_conflict(guard):
    guard.claim_all([command(1, value=10)], 60_000)
    (claim,) = guard.claim_all([command(1, value=99)], 60_000)
    assert claim.kind is ClaimKind.CONFLICT


class Throttling:
    """Stands between the guard and moto: leaves the first ``times`` batch requests unprocessed."""

    def __init__(self, client: Any, times: int) -> None:
        self.client, self.times = client, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_get_item(self, RequestItems: Any) -> Any:
        if self.times > 0:
            self.times -= 1
            return {"Responses": {}, "UnprocessedKeys": RequestItems}
        return self.client.batch_get_item(RequestItems=RequestItems)

    def batch_write_item(self, RequestItems: Any) -> Any:
        if self.times > 0:
            self.times -= 1
            return {"UnprocessedItems": RequestItems}
        return self.client.batch_write_item(RequestItems=RequestItems)


def test_idempotency_batch_unprocessed_keys_are_asked_again(guard, dynamodb, clock):
    commands = [command(n) for n in range(3)]
    guard.claim_all(commands, 60_000)
    guard.persistence.client = Throttling(dynamodb, times=BATCH_ATTEMPTS - 1)
    slept = clock.monotonic()
    assert guard.complete_all([(c, {"eventId": c.id}) for c in commands]) == [None] * 3
    guard.persistence.client = Throttling(dynamodb, times=BATCH_ATTEMPTS - 1)
    assert {claim.kind for claim in guard.claim_all(commands, 60_000)} == {ClaimKind.DUPLICATE}
    assert clock.monotonic() > slept  # backed off between the attempts


def test_idempotency_batch_still_unprocessed_holds_the_events_back(guard, dynamodb):
    guard.persistence.client = Throttling(dynamodb, times=BATCH_ATTEMPTS)
    claims = guard.claim_all([command(1), command(2)], 60_000)
    assert all(isinstance(claim, UnavailableError) for claim in claims)
    guard.persistence.client = Throttling(dynamodb, times=BATCH_ATTEMPTS)
    errors = guard.complete_all([(command(3), {"eventId": "e"})])
    assert isinstance(errors[0], UnavailableError)


def test_idempotency_guard_is_built_for_the_first_event_only(make_dispatcher, dynamodb, clock):
    # Given a dispatcher whose guard is a factory, as a cold start makes it
    built: list[EventGuard] = []

    def factory() -> EventGuard:
        built.append(EventGuard(TABLE, 3600, clock=clock, dynamodb_client=dynamodb))
        return built[-1]

    dispatcher = make_dispatcher(guard=False)
    dispatcher._guard = factory
    contact = {
        "action": "contact.upsert",
        "group_key": "demo-shop",
        "data": {"email": "a@customer.example.com"},
    }
    # When a batch without events runs, then one with events, then another
    dispatcher.dispatch_batch([Inbound(message_id="m0", source=Source.SQS, body=contact)])
    assert built == []
    for n in (1, 2):
        body = {"action": "event.create", "group_key": "demo-shop", "id": f"e{n}", "data": dict(EVENT_DATA)}
        outcomes = dispatcher.dispatch_batch([Inbound(message_id=f"m{n}", source=Source.SQS, body=body)])
        assert [str(o.status) for o in outcomes.outcomes] == ["applied"]
    # Then the guard was built once, for the first event, and guards the events
    assert len(built) == 1
    assert dispatcher.guard is built[0]


def test_idempotency_takeover_is_judged_on_the_record_as_it_is_not_the_batch_snapshot(dynamodb, clock):
    # Given a doubtful event (an earlier attempt lost its reply), read by invocation X for its batch
    x, y = (EventGuard(TABLE, 3600, clock=clock, dynamodb_client=dynamodb) for _ in range(2))
    doubtful = command(1)
    x.claim_all([doubtful], 60_000)
    x.mark_unknown_all([doubtful])
    data = idempotency_data(doubtful)
    (snapshot,) = x.persistence.get_records([data])
    # When invocation Y takes it over first, then X's claim runs on its older snapshot
    (taken,) = y.claim_all([doubtful], 60_000)
    late = x._claim(data, snapshot, 60_000)
    # Then only Y holds it: X sees Y's fresh claim and waits
    assert taken.kind is ClaimKind.DOUBTFUL
    assert late.kind is ClaimKind.BUSY


@pytest.mark.parametrize("nth", [1, 2], ids=["first_write", "second_write"])
@pytest.mark.parametrize("applied", [False, True], ids=["refused", "applied_then_timed_out"])
def test_idempotency_takeover_that_fails_leaves_the_doubt_in_place(
    dynamodb, clock, monkeypatch, applied, nth
):
    # Given a doubtful event (an earlier attempt lost its reply)
    from botocore.exceptions import ClientError, ReadTimeoutError

    guard = EventGuard(TABLE, 3600, clock=clock, dynamodb_client=dynamodb)
    doubtful = command(1)
    guard.claim_all([doubtful], 60_000)
    guard.mark_unknown_all([doubtful])
    # When one write of the next attempt's takeover (if it makes that many) is throttled, or applied
    # and its reply lost
    originals = {name: getattr(dynamodb, name) for name in ("put_item", "delete_item")}
    writes = Counter[str]()

    def failing(name: str) -> Any:
        def write(**kwargs: Any) -> Any:
            writes["all"] += 1
            if writes["all"] != nth:
                return originals[name](**kwargs)
            if applied:
                originals[name](**kwargs)
                raise ReadTimeoutError(endpoint_url="https://dynamodb")
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise ClientError(error, name)  # type: ignore[arg-type]

        return write

    for name in originals:
        monkeypatch.setattr(dynamodb, name, failing(name))
    (first,) = guard.claim_all([doubtful], 60_000)
    monkeypatch.undo()
    clock.sleep(61)  # a claim written before the timeout holds until its in-progress time is over
    (retried,) = guard.claim_all([doubtful], 60_000)
    # Then the attempt reconciles or is handed back, and the one after still reconciles before sending
    assert isinstance(first, UnavailableError) or first.kind is ClaimKind.DOUBTFUL
    assert retried.kind is ClaimKind.DOUBTFUL
