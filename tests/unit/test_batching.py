"""The planners, alone: rounds keep order per contact, product and FIFO group; chunks respect each
action's ActionSpec (one request per delete, bulk cuts, products packed across commands)."""

from __future__ import annotations

from typing import Any

import pytest

from salesmanago_bridge.batching import ordering_keys, plan_chunks, plan_rounds
from salesmanago_bridge.commands import Action, CommandEnvelope
from salesmanago_bridge.settings import Settings
from salesmanago_bridge.sources import Inbound, Source
from salesmanago_bridge.work import Work
from tests.conftest import PRODUCT_BASE

GROUP: Any = object()  # the planners carry the group along, never read it
FIFO = "arn:aws:sqs:eu-central-1:1:q.fifo"


def work(position: int, action: str, data: Any, group_key: str = "g", **inbound: Any) -> Work:
    item = Inbound(f"m{position}", Source.SQS, {}, **inbound)
    command = CommandEnvelope.parse({"action": action, "group_key": group_key, "data": data}).to_command(
        sent_at_ms=1_714_557_600_000
    )
    return Work(position, item, command, GROUP, ordering_keys(command, item))


def contact(position: int, email: str, **inbound: Any) -> Work:
    return work(position, "contact.upsert", {"email": email}, **inbound)


def products(position: int, *ids: str) -> Work:
    return work(position, "products.upsert", [{"id": i, **PRODUCT_BASE} for i in ids])


def positions(rounds: list[list[Work]]) -> list[list[int]]:
    return [[w.position for w in r] for r in rounds]


def test_ordering_keys_name_the_contact_both_emails_products_and_the_fifo_group() -> None:
    moved = work(0, "contact.upsert", {"email": "A@x.pl", "newEmail": "B@x.pl"})
    assert moved.keys == {"contact:g:a@x.pl", "contact:g:b@x.pl"}
    assert products(1, "P1", "P2").keys == {"product:g:P1", "product:g:P2"}
    fifo = contact(2, "c@x.pl", source_arn=FIFO, message_group_id="m")
    assert "fifo:m" in fifo.keys
    standard = contact(3, "c@x.pl", source_arn=FIFO[:-5], message_group_id="m")
    assert not any(key.startswith("fifo:") for key in standard.keys)


def test_rounds_put_a_later_command_for_the_same_contact_in_a_later_round() -> None:
    works = [contact(0, "a@x.pl"), contact(1, "b@x.pl"), work(2, "event.create", {
        "email": "A@x.pl", "contactExtEventType": "PURCHASE"
    }), contact(3, "a@x.pl")]  # fmt: skip
    assert positions(plan_rounds(works)) == [[0, 1], [2], [3]]


def test_stock_and_price_updates_follow_their_products_upsert_in_a_later_round() -> None:
    # Given an upsert of P1, then P1's stock and prices, and another product's stock
    works = [
        products(0, "P1"),
        work(1, "products.stock", [{"id": "P1", "quantity": 3}]),
        work(2, "products.price", [{"id": "P1", "price": 5, "special_price": None}]),
        work(3, "products.stock", [{"id": "P2", "quantity": 1}]),
    ]

    # When / Then: the same product keys as the upsert, so each waits for the one before it
    assert works[1].keys == works[2].keys == products(9, "P1").keys == {"product:g:P1"}
    assert positions(plan_rounds(works)) == [[0, 3], [1], [2]]


def test_rounds_keep_arrival_order_whatever_the_input_order() -> None:
    works = [contact(2, "a@x.pl"), contact(0, "a@x.pl"), contact(1, "b@x.pl")]
    assert positions(plan_rounds(works)) == [[0, 1], [2]]


def test_rounds_of_other_groups_do_not_wait_for_each_other() -> None:
    works = [contact(0, "a@x.pl"), work(1, "contact.upsert", {"email": "a@x.pl"}, group_key="h")]
    assert positions(plan_rounds(works)) == [[0, 1]]


def test_chunks_cut_contacts_and_events_to_their_batch_sizes() -> None:
    settings = Settings.model_validate({"CONTACT_BATCH_SIZE": 2, "EVENT_BATCH_SIZE": 3})
    contacts = [contact(i, f"c{i}@x.pl") for i in range(5)]
    events = [
        work(10 + i, "event.create", {"email": f"e{i}@x.pl", "contactExtEventType": "PURCHASE"})
        for i in range(4)
    ]
    sizes = sorted((str(c.action), len(c.works)) for c in plan_chunks(contacts + events, settings))
    assert sizes == [
        ("contact.upsert", 1),
        ("contact.upsert", 2),
        ("contact.upsert", 2),
        ("event.create", 1),
        ("event.create", 3),
    ]


def test_chunks_send_each_delete_alone() -> None:
    deletes = [work(i, "contact.delete", {"email": f"d{i}@x.pl"}) for i in range(3)]
    chunks = plan_chunks(deletes, Settings())
    assert [(c.action, len(c.works)) for c in chunks] == [(Action.CONTACT_DELETE, 1)] * 3


def test_chunks_pack_products_across_commands_and_split_a_command_over_requests() -> None:
    settings = Settings.model_validate({"PRODUCT_BATCH_SIZE": 3})
    chunks = plan_chunks([products(0, "P1", "P2"), products(1, "P3", "P4")], settings)
    assert [[(i.work.position, i.index, i.product.id) for i in c.products] for c in chunks] == [
        [(0, 0, "P1"), (0, 1, "P2"), (1, 0, "P3")],
        [(1, 1, "P4")],
    ]
    assert [[w.position for w in c.works] for c in chunks] == [[0, 1], [1]]


@pytest.mark.parametrize("group_keys", [("g", "h")])
def test_chunks_never_mix_groups(group_keys: tuple[str, str]) -> None:
    works = [
        work(i, "contact.upsert", {"email": f"c{i}@x.pl"}, group_key=group_keys[i % 2]) for i in range(4)
    ]
    chunks = plan_chunks(works, Settings())
    assert sorted(sorted({w.command.group_key for w in c.works}) for c in chunks) == [["g"], ["h"]]
