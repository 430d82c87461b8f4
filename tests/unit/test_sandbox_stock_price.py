"""The sandbox's stock and price updates (v3 ``updateQuantity`` / ``updatePrice``): strict bodies,
unknown products refused per product (or ignored, as SALESmanago's own library expects), and only the
fields each update carries change."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from local.sandbox import Sandbox
from tests.unit.test_sandbox import (  # noqa: F401 - fixtures
    CATALOG_ID,
    post_v3,
    product,
    running,
    sandbox,
)


def upsert(sandbox: Sandbox, *products: dict[str, Any]) -> None:  # noqa: F811
    reply = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": list(products)})
    assert reply.status_code == 200, reply.text


def update(sandbox: Sandbox, path: str, *items: dict[str, Any]) -> Any:  # noqa: F811
    return post_v3(sandbox, path, {"catalogId": CATALOG_ID, "products": list(items)})


def test_quantity_update_sets_quantity_and_keeps_everything_else(sandbox: Sandbox) -> None:  # noqa: F811
    # Given a product upserted whole, available, with a discount price
    upsert(sandbox, product("p1", quantity=3, discountPrice=15))

    # When its stock alone drops to zero
    reply = update(sandbox, "product/updateQuantity", {"productId": "p1", "quantity": 0})

    # Then only the quantity changed: available stays as the upsert set it (the library sends none)
    assert reply.status_code == 200
    assert set(reply.json()) == {"requestId"}
    stored = sandbox.products(CATALOG_ID)["p1"]
    assert (stored["quantity"], stored["available"], stored["discountPrice"], stored["name"]) == (
        0,
        True,
        15,
        "Mug",
    )


def test_price_update_sets_price_and_null_clears_the_discount(sandbox: Sandbox) -> None:  # noqa: F811
    # Given two products, each with a discount price
    upsert(sandbox, product("p1", discountPrice=15), product("p2", discountPrice=15))

    # When one gets a new discount, the other's discount ends (null, as the library sends it)
    reply = update(
        sandbox,
        "product/updatePrice",
        {"productId": "p1", "price": 21.5, "discountPrice": 17.99},
        {"productId": "p2", "price": 22, "discountPrice": None},
    )

    # Then
    assert reply.status_code == 200
    stored = sandbox.products(CATALOG_ID)
    assert (stored["p1"]["price"], stored["p1"]["discountPrice"]) == (21.5, 17.99)
    assert stored["p2"]["price"] == 22 and "discountPrice" not in stored["p2"]
    assert stored["p2"]["quantity"] == 3


@pytest.mark.parametrize("path", ["product/updateQuantity", "product/updatePrice"])
def test_unknown_product_refused_by_its_index_and_nothing_applied(sandbox: Sandbox, path: str) -> None:  # noqa: F811
    # Given one product the catalog holds
    upsert(sandbox, product("p1"))
    items = {
        "product/updateQuantity": [{"productId": "p1", "quantity": 9}, {"productId": "nope", "quantity": 1}],
        "product/updatePrice": [{"productId": "p1", "price": 9}, {"productId": "nope", "price": 1}],
    }[path]

    # When an update names it and an unknown one
    reply = update(sandbox, path, *items)

    # Then the unknown one is named by its index, with reason 16, and the request applied nothing
    assert reply.status_code == 400
    assert reply.json() == {
        "problems": [{"reasonCode": 16, "message": "products[1].productId|Product not found"}]
    }
    assert (sandbox.products(CATALOG_ID)["p1"]["quantity"], sandbox.products(CATALOG_ID)["p1"]["price"]) == (
        3,
        19.99,
    )


def test_unknown_product_ignored_when_told_as_the_library_expects(sandbox: Sandbox) -> None:  # noqa: F811
    # Given the sandbox answering unknown ids as the official library's feature test expects
    upsert(sandbox, product("p1"))
    sandbox.unknown_products = "ignore"

    # When
    reply = update(
        sandbox,
        "product/updateQuantity",
        {"productId": "p1", "quantity": 9},
        {"productId": "nope", "quantity": 1},
    )

    # Then the known one changed, the unknown one created nothing, and nothing was reported
    assert reply.status_code == 200 and "problems" not in reply.json()
    assert sandbox.products(CATALOG_ID)["p1"]["quantity"] == 9
    assert "nope" not in sandbox.products(CATALOG_ID)


def test_unknown_products_mode_is_checked(sandbox: Sandbox) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="unknown mode"):
        sandbox.unknown_products = "rejct"


QTY, PRICE = "product/updateQuantity", "product/updatePrice"
DECIMAL = "A non-negative decimal(19,2) expected"


@pytest.mark.parametrize(
    ("path", "item", "code", "message"),
    [
        (QTY, {"productId": "p1", "quantity": 1.5}, 14, "quantity|An integer expected"),
        (QTY, {"productId": "p1", "quantity": "3"}, 14, "quantity|An integer expected"),
        (QTY, {"productId": "p1", "quantity": True}, 14, "quantity|An integer expected"),
        (QTY, {"productId": "p1"}, 13, "quantity|Field is required"),
        (QTY, {"productId": "p1", "quantity": None}, 17, "quantity|Required field set to null"),
        (QTY, {"productId": "p1", "quantity": 1, "available": False}, 14, "available|Unknown field"),
        (QTY, {"quantity": 1}, 13, "productId|Field is required"),
        (QTY, {"productId": "p" * 256, "quantity": 1}, 11, "productId|Too long: 256 > 255"),
        (PRICE, {"productId": "p1", "price": 9.999}, 14, f"price|{DECIMAL}"),
        (PRICE, {"productId": "p1", "price": -1}, 14, f"price|{DECIMAL}"),
        (PRICE, {"productId": "p1", "price": "9.99"}, 14, f"price|{DECIMAL}"),
        (PRICE, {"productId": "p1", "price": 9, "discountPrice": 1.001}, 14, f"discountPrice|{DECIMAL}"),
        (PRICE, {"productId": "p1", "discountPrice": 1}, 13, "price|Field is required"),
        (PRICE, {"productId": "p1", "price": 9, "quantity": 1}, 14, "quantity|Unknown field"),
    ],
)
def test_update_field_problem_named_and_nothing_applied(
    sandbox: Sandbox,  # noqa: F811
    path: str,
    item: dict[str, Any],
    code: int,
    message: str,
) -> None:
    # Given
    upsert(sandbox, product("p1"))
    valid = {"productId": "p1", "quantity": 5} if path == QTY else {"productId": "p1", "price": 5}

    # When
    reply = update(sandbox, path, valid, item)

    # Then the second item's problem is named by its index; the valid first one was not applied
    assert reply.status_code == 400
    assert {"reasonCode": code, "message": f"products[1].{message}"} in reply.json()["problems"]
    stored = sandbox.products(CATALOG_ID)["p1"]
    assert (stored["quantity"], stored["price"]) == (3, 19.99)


@pytest.mark.parametrize("path", ["product/updateQuantity", "product/updatePrice"])
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"catalogId": str(uuid.uuid4()), "products": [{"productId": "p1"}]}, 16),
        ({"products": [{"productId": "p1"}]}, 13),
        ({"catalogId": CATALOG_ID, "products": []}, 13),
        ({"catalogId": CATALOG_ID, "products": [{"productId": f"p{n}"} for n in range(101)]}, 11),
        ({"catalogId": CATALOG_ID, "products": [{"productId": "p1"}], "setAsNull": ["price"]}, 14),
    ],
)
def test_update_request_level_problems(sandbox: Sandbox, path: str, body: dict[str, Any], code: int) -> None:  # noqa: F811
    reply = post_v3(sandbox, path, body)
    assert reply.status_code == 400
    assert code in [p["reasonCode"] for p in reply.json()["problems"]]


def test_update_needs_the_api_key(sandbox: Sandbox) -> None:  # noqa: F811
    reply = post_v3(sandbox, "product/updatePrice", {"catalogId": CATALOG_ID, "products": []}, key="old")
    assert reply.json() == {"messages": ["Invalid API key"], "reasonCode": 10}
