"""Stock and price updates in bulk against the sandbox: packed across messages, refusals mapped back
per record, and ordered after the same product's upsert in one invocation."""

from __future__ import annotations

from typing import Any

from local.sandbox import Fault, Sandbox
from salesmanago_bridge.dispatch import Dispatcher, Status
from tests.conftest import PRODUCT_BASE
from tests.integration.test_bulk import dispatcher, inbound, statuses  # noqa: F401 - fixture


def upsert(n: int, *ids: str) -> Any:
    return inbound(n, "products.upsert", [{**PRODUCT_BASE, "id": product_id} for product_id in ids])


def stock(n: int, *items: tuple[str, int]) -> Any:
    return inbound(n, "products.stock", [{"id": product_id, "quantity": q} for product_id, q in items])


def prices(n: int, *items: tuple[str, float, float | None]) -> Any:
    data = [{"id": product_id, "price": p, "special_price": s} for product_id, p, s in items]
    return inbound(n, "products.price", data)


def test_stock_of_many_messages_packed_to_the_limit_and_mapped_back(
    sandbox: Sandbox,
    dispatcher: Dispatcher,  # noqa: F811
) -> None:
    # Given 210 products, then 7 messages setting the stock of 30 each
    dispatcher.dispatch_batch([upsert(m, *[f"M{m}-{i}" for i in range(30)]) for m in range(7)])
    batch = [stock(m, *[(f"M{m}-{i}", i) for i in range(30)]) for m in range(7)]

    # When
    outcomes = dispatcher.dispatch_batch(batch)

    # Then ceil(210 / 100) = 3 requests, and each message's result names its own 30 products
    sizes = [len(r.body["products"]) for r in sandbox.requests_to("product/updateQuantity")]
    assert sorted(sizes) == [10, 100, 100]
    for m, outcome in enumerate(outcomes.outcomes):
        assert outcome.status is Status.APPLIED
        assert outcome.result["productIds"] == [f"M{m}-{i}" for i in range(30)]
    stored = sandbox.products()
    assert [stored[f"M6-{i}"]["quantity"] for i in (0, 29)] == [0, 29]


def test_unknown_product_dead_letters_its_record_alone_with_the_reason(
    sandbox: Sandbox,
    dispatcher: Dispatcher,  # noqa: F811
) -> None:
    # Given four known products, and one price update naming a product SALESmanago does not hold
    dispatcher.dispatch_batch([upsert(0, "A", "B", "C", "D")])
    batch = [
        prices(0, ("A", 10, None)),
        prices(1, ("B", 11, 9.5), ("GHOST", 12, None)),
        prices(2, ("C", 13, None), ("D", 14, 7)),
    ]

    # When
    outcomes = dispatcher.dispatch_batch(batch)

    # Then that record alone is dead-lettered, naming its own item and SALESmanago's reason;
    # the others were sent again without it and applied (setting a price twice is harmless)
    assert statuses(outcomes) == {"m0": "applied", "m1": "dead_lettered", "m2": "applied"}
    [detail] = outcomes.outcomes[1].error.details
    assert detail.field == "data[1] (SALESmanago field productId)"
    assert "reason 16" in detail.problem
    assert len(sandbox.requests_to("product/updatePrice")) == 2
    stored = sandbox.products()
    assert (stored["A"]["price"], stored["D"]["price"], stored["D"]["discountPrice"]) == (10, 14, 7)
    assert stored["B"].get("price") is None  # B travelled with GHOST's record, which failed whole


def test_stock_after_its_products_upsert_in_one_invocation_goes_after_it(
    sandbox: Sandbox,
    dispatcher: Dispatcher,  # noqa: F811
) -> None:
    # Given one invocation: a new product's upsert, then its stock and prices, and another product's stock
    dispatcher.dispatch_batch([upsert(0, "OLD")])
    batch = [upsert(0, "NEW"), stock(1, ("NEW", 5)), prices(2, ("NEW", 1.5, None)), stock(3, ("OLD", 9))]

    # When
    outcomes = dispatcher.dispatch_batch(batch)

    # Then the updates of NEW reached SALESmanago only after its upsert (they would be refused as
    # unknown before it); OLD's stock did not wait
    assert set(statuses(outcomes).values()) == {"applied"}
    order = [(r.path, [p["productId"] for p in r.body["products"]]) for r in sandbox.requests[1:]]
    upserted = order.index(("/v3/product/upsert", ["NEW"]))
    assert order.index(("/v3/product/updateQuantity", ["NEW"])) > upserted
    assert order.index(("/v3/product/updatePrice", ["NEW"])) > upserted
    stored = sandbox.products()
    assert (stored["NEW"]["quantity"], stored["NEW"]["price"], stored["OLD"]["quantity"]) == (5, 1.5, 9)


def test_stock_held_back_while_its_products_upsert_waits_for_a_retry(
    sandbox: Sandbox,
    dispatcher: Dispatcher,  # noqa: F811
) -> None:
    # Given the upsert of a new product meets a 503 storm
    sandbox.inject(Fault("status", status=503, path="product/upsert", times=10))

    # When its stock update follows in the same invocation
    outcomes = dispatcher.dispatch_batch([upsert(0, "NEW"), stock(1, ("NEW", 5))])

    # Then both go back to the source, and the stock was never sent ahead of its product
    assert statuses(outcomes) == {"m0": "retry", "m1": "retry"}
    assert sandbox.requests_to("product/updateQuantity") == []
