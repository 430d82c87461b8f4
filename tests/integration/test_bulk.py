"""Bulk dispatch against the sandbox: grouping, chunk sizes, packing, order per contact, splitting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local.sandbox import Fault, Sandbox
from salesmanago_bridge.batching import Work, ordering_keys, plan_chunks, plan_rounds
from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.commands import CommandEnvelope
from salesmanago_bridge.deadletters import DeadLetterSink
from salesmanago_bridge.dispatch import Dispatcher, Status
from salesmanago_bridge.groups import FileGroupStore
from salesmanago_bridge.settings import Settings
from salesmanago_bridge.sources import Inbound, Source
from tests.conftest import PRODUCT_BASE


def make_dispatcher(groups_file: Path, **env: Any) -> Dispatcher:
    settings = Settings.model_validate(
        {"SALESMANAGO_GROUPS_FILE": str(groups_file), "SALESMANAGO_READ_TIMEOUT_S": 1.0, **env}
    )
    return Dispatcher(
        settings, FileGroupStore(groups_file), SalesmanagoClient(settings), DeadLetterSink(None)
    )


def inbound(n: int, action: str, data: Any, group: str = "demo-shop", **extra: Any) -> Inbound:
    return Inbound(
        message_id=f"m{n}",
        source=Source.SQS,
        body={"action": action, "group_key": group, "data": data},
        sent_at_ms=1_764_095_400_000,
        **extra,
    )


def contact(n: int, email: str | None = None, **data: Any) -> Inbound:
    return inbound(n, "contact.upsert", {"email": email or f"c{n}@customer.example.com", **data})


def event(n: int, email: str | None = None) -> Inbound:
    data = {"email": email or f"e{n}@customer.example.com", "contactExtEventType": "CART", "value": n}
    return inbound(n, "event.create", data)


@pytest.fixture
def dispatcher(groups_file: Path) -> Dispatcher:
    return make_dispatcher(groups_file)


def statuses(outcomes: Any) -> dict[str, str]:
    return {o.message_id: str(o.status) for o in outcomes.outcomes}


def test_bulk_contacts_chunked_by_contact_batch_size(sandbox: Sandbox, dispatcher: Dispatcher):
    # Given 500 upserts of distinct contacts in one group
    # When they are dispatched in one invocation
    outcomes = dispatcher.dispatch_batch([contact(i) for i in range(500)])
    # Then two bulk requests carry them: 400 and 100 (in parallel, so in any order)
    assert sorted(len(r.body["upsertDetails"]) for r in sandbox.requests) == [100, 400]
    assert all(r.path == "/api/contact/batchupsert" for r in sandbox.requests)
    assert set(statuses(outcomes).values()) == {"applied"}
    assert len(sandbox.contacts()) == 500


def test_bulk_groups_by_group_and_action(sandbox: Sandbox, dispatcher: Dispatcher):
    # Given contacts and events of two groups, interleaved
    batch = []
    for i in range(12):
        group = "demo-shop" if i % 2 else "outlet"
        batch.append(inbound(i, "contact.upsert", {"email": f"g{i}@customer.example.com"}, group=group))
        batch.append(
            inbound(
                100 + i,
                "event.create",
                {"email": f"h{i}@customer.example.com", "contactExtEventType": "VISIT", "value": 1},
                group=group,
            )
        )
    # When
    dispatcher.dispatch_batch(batch)
    # Then exactly one bulk request per (group, action)
    calls = sorted((r.body["clientId"], r.path) for r in sandbox.requests)
    assert calls == sorted(
        (client, path)
        for client in ("demo-client-1", "outlet-client-2")
        for path in ("/api/contact/batchupsert", "/api/v2/contact/addBatchContactExtEvent")
    )


def test_bulk_events_up_to_1000_per_request(sandbox: Sandbox, dispatcher: Dispatcher):
    outcomes = dispatcher.dispatch_batch([event(i) for i in range(1001)])
    sizes = [len(r.body["events"]) for r in sandbox.requests_to("addBatchContactExtEvent")]
    assert sizes == [1000]
    assert len(sandbox.requests_to("v2/contact/addContactExtEvent")) == 1  # the 1001st, alone
    assert len(sandbox.events()) == 1001
    assert set(statuses(outcomes).values()) == {"applied"}


def test_bulk_products_packed_across_messages_and_split(sandbox: Sandbox, dispatcher: Dispatcher):
    # Given 7 messages of 30 products each (210 products)
    batch = [
        inbound(m, "products.upsert", [{"id": f"M{m}-{i}", **PRODUCT_BASE} for i in range(30)])
        for m in range(7)
    ]
    # When
    outcomes = dispatcher.dispatch_batch(batch)
    # Then they travel in ceil(210 / 100) = 3 requests, a message's list split across two of them
    sizes = [len(r.body["products"]) for r in sandbox.requests_to("product/upsert")]
    assert sorted(sizes) == [10, 100, 100]
    assert len(sandbox.products()) == 210
    for outcome in outcomes.outcomes:
        assert outcome.status is Status.APPLIED
        assert len(outcome.result["productIds"]) == 30


def test_bulk_same_contact_keeps_arrival_order(sandbox: Sandbox, dispatcher: Dispatcher):
    # Given an upsert, a delete and another upsert of one contact (case differs), plus an event
    batch = [
        contact(0, "Order@customer.example.com", name="First"),
        inbound(1, "contact.delete", {"email": "order@customer.example.com"}),
        contact(2, "ORDER@customer.example.com", name="Second"),
        event(3, "order@customer.example.com"),
        contact(4, "other@customer.example.com"),
    ]
    # When
    dispatcher.dispatch_batch(batch)
    # Then each command for that contact went in a later request than the one before it
    touching = [r.path for r in sandbox.requests if "order@" in str(r.body).lower()]
    assert touching == [
        "/api/contact/batchupsert",  # round 1: with the other contact
        "/api/contact/delete",
        "/api/contact/upsert",
        "/api/v2/contact/addContactExtEvent",
    ]
    assert sandbox.contact("order@customer.example.com")["name"] == "Second"


def test_bulk_transient_failure_holds_back_later_commands_of_that_contact(
    sandbox: Sandbox, dispatcher: Dispatcher
):
    # Given the first upsert of a contact meets a 503 storm on the single upsert endpoint
    sandbox.inject(Fault("status", status=503, path="contact/upsert", times=10))
    batch = [contact(0, "held@customer.example.com"), event(1, "held@customer.example.com"), event(2)]
    # When
    outcomes = dispatcher.dispatch_batch(batch)
    # Then the event for the same contact is handed back without being sent; the other event is applied
    assert statuses(outcomes) == {"m0": "retry", "m1": "retry", "m2": "applied"}
    assert not sandbox.events(email="held@customer.example.com")


def test_bulk_bad_contact_isolated_in_a_handful_of_requests(sandbox: Sandbox, dispatcher: Dispatcher):
    # Given a chunk of 400 where SALESmanago refuses the whole request because of one contact
    sandbox.reject_email("c123@customer.example.com", mode="item")
    # When
    outcomes = dispatcher.dispatch_batch([contact(i) for i in range(400)])
    # Then only that contact fails, permanently, and the 399 others are applied
    result = statuses(outcomes)
    assert result.pop("m123") == "dead_lettered"
    assert set(result.values()) == {"applied"}
    assert len(sandbox.contacts()) == 399
    assert len(sandbox.requests) <= 2 * 9 + 1  # binary split: about 2 log2(400) requests


def test_bulk_partially_failed_event_batch_resends_only_failed(sandbox: Sandbox, dispatcher: Dispatcher):
    # Given one event of a batch of 50 that SALESmanago reports in failedContacts
    sandbox.reject_email("e7@customer.example.com", mode="item")
    # When
    outcomes = dispatcher.dispatch_batch([event(i) for i in range(50)])
    # Then the 49 created events are never sent again; only the failed one is re-sent, alone
    assert len(sandbox.requests_to("addBatchContactExtEvent")) == 1
    singles = sandbox.requests_to("v2/contact/addContactExtEvent")
    assert [r.body["email"] for r in singles] == ["e7@customer.example.com"]
    assert len(sandbox.events()) == 49
    assert statuses(outcomes)["m7"] == "dead_lettered"
    assert sum(1 for s in statuses(outcomes).values() if s == "applied") == 49


def test_bulk_auth_failure_is_not_split(sandbox: Sandbox, groups_file: Path):
    # Given a group whose secret SALESmanago refuses
    import json

    groups = json.loads(groups_file.read_text())
    groups["demo-shop"]["api_secret"] = "wrong"
    groups_file.write_text(json.dumps(groups))
    dispatcher = make_dispatcher(groups_file)
    # When 300 contacts are dispatched
    outcomes = dispatcher.dispatch_batch([contact(i) for i in range(300)])
    # Then one request, every record dead-lettered as auth, no splitting
    assert len(sandbox.requests) == 1
    assert {o.error.error_type for o in outcomes.outcomes} == {"auth"}


def test_bulk_transient_failure_marks_exactly_its_chunk(sandbox: Sandbox, groups_file: Path):
    # Given chunks of 100 and one 503 storm on the first bulk request only
    dispatcher = make_dispatcher(groups_file, CONTACT_BATCH_SIZE=100, SALESMANAGO_MAX_RETRIES=0)
    sandbox.inject(Fault("status", status=503, path="batchupsert", times=1))
    # When
    outcomes = dispatcher.dispatch_batch([contact(i) for i in range(300)])
    # Then exactly 100 records go back to the source, the other 200 are applied
    values = list(statuses(outcomes).values())
    assert values.count("retry") == 100
    assert values.count("applied") == 200


def test_plan_rounds_orders_by_contact_product_and_fifo_group(groups_file: Path):
    # Given commands sharing contacts, products and a FIFO group
    store = FileGroupStore(groups_file)
    group = store.get("demo-shop")

    def work(n: int, item: Inbound) -> Work:
        envelope = CommandEnvelope.parse(item.body)
        command = envelope.to_command(sent_at_ms=item.sent_at_ms)
        return Work(n, item, command, group, ordering_keys(command, item))

    fifo = {"source_arn": "arn:aws:sqs:eu-central-1:1:q.fifo", "message_group_id": "g"}
    works = [
        work(0, contact(0, "a@customer.example.com")),
        work(1, contact(1, "b@customer.example.com")),
        work(2, event(2, "A@customer.example.com")),
        work(3, inbound(3, "products.upsert", [{"id": "P1", **PRODUCT_BASE}])),
        work(4, inbound(4, "products.upsert", [{"id": "P2", **PRODUCT_BASE}, {"id": "P1", **PRODUCT_BASE}])),
        work(5, inbound(5, "contact.upsert", {"email": "x@customer.example.com"}, **fifo)),
        work(6, inbound(6, "contact.upsert", {"email": "y@customer.example.com"}, **fifo)),
    ]
    # When
    rounds = plan_rounds(works)
    # Then
    assert [[w.position for w in r] for r in rounds] == [[0, 1, 3, 5], [2, 4, 6]]
    chunks = plan_chunks(rounds[0], Settings())
    assert sorted((str(c.action), len(c.works)) for c in chunks) == [
        ("contact.upsert", 3),
        ("products.upsert", 1),
    ]
