"""products.stock and products.price data: each item's fields and limits, the explicit end of a
discount, the field map, and what the SALESmanago items hold. Refusals are checked as
commands_support.py says.
"""

from __future__ import annotations

from typing import Any

import pytest

from salesmanago_bridge.actions import product_price_item, product_stock_item
from salesmanago_bridge.commands import CommandEnvelope
from tests.unit.commands_support import MARKER, assert_hidden, problem_for, rejected, to_command


@pytest.mark.parametrize("action", ["products.stock", "products.price"])
@pytest.mark.parametrize("data", [[], {}, {"id": "sku-1"}, None], ids=["empty", "dict", "object", "null"])
def test_update_data_not_a_non_empty_list_rejected(action: str, data: Any) -> None:
    assert "non-empty list" in problem_for(rejected(action, data), "data")


def test_stock_items_are_validated_and_kept_in_order() -> None:
    # Given / When
    command = to_command(
        "products.stock", [{"id": "sku-1", "quantity": 0}, {"id": " sku-2 ", "quantity": 12}]
    )

    # Then
    assert [(item.id, item.quantity) for item in command.data] == [("sku-1", 0), ("sku-2", 12)]
    assert command.ignored_fields == ()


@pytest.mark.parametrize(
    ("quantity", "says"),
    [
        (1.5, "integer"),
        (-1, "greater than or equal to 0"),
        ("many", "integer"),
        (None, "integer"),
        (True, "integer"),
    ],
)
def test_stock_quantity_must_be_a_non_negative_integer(quantity: Any, says: str) -> None:
    # Given a good first item and a bad second one
    data = [{"id": "sku-1", "quantity": 1}, {"id": "sku-2", "quantity": quantity}]

    # When
    error = rejected("products.stock", data)

    # Then the refusal names the item and the field, never the value
    assert says in problem_for(error, "data[1].quantity")
    assert [d.field for d in error.details] == ["data[1].quantity"]


@pytest.mark.parametrize("field", ["id", "quantity"])
def test_stock_fields_are_required(field: str) -> None:
    item: dict[str, Any] = {"id": "sku-1", "quantity": 1}
    del item[field]
    assert "required" in problem_for(rejected("products.stock", [item]), f"data[0].{field}").lower()


def test_stock_id_limit_is_the_products_one_and_hidden_in_the_refusal() -> None:
    error = rejected("products.stock", [{"id": MARKER + "x" * 30, "quantity": 1}])
    assert "at most 32 characters" in problem_for(error, "data[0].id")
    assert_hidden(error)


def test_update_item_fields_nothing_takes_are_ignored_and_listed_and_the_field_map_routes() -> None:
    # Given a stock feed with its own name for the quantity and a field nobody wants
    data = [{"id": "sku-1", "qty": 4, "warehouse": "B-17"}]

    # When the group's field map routes qty
    command = to_command("products.stock", data, field_map={"qty": "quantity"})

    # Then
    assert command.data[0].quantity == 4
    assert command.ignored_fields == ("data[0].warehouse",)


def test_price_sets_both_prices_and_null_ends_the_discount() -> None:
    # Given / When
    command = to_command(
        "products.price",
        [
            {"id": "sku-1", "price": 199, "special_price": "149.50"},
            {"id": "sku-2", "price": 10, "special_price": None},
        ],
    )

    # Then
    assert [(p.id, p.price, p.special_price) for p in command.data] == [
        ("sku-1", 199.0, 149.5),
        ("sku-2", 10.0, None),
    ]


def test_price_special_price_must_be_said_even_when_there_is_none() -> None:
    # Given an item that says nothing of its discount
    error = rejected("products.price", [{"id": "sku-1", "price": 10}])

    # Then: a price update always states the discount (a number, or null to end it)
    assert "required" in problem_for(error, "data[0].special_price").lower()


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("price", 9.999, "2 decimal places"),
        ("price", -1, "greater than or equal to 0"),
        ("price", None, "Decimal input"),
        ("special_price", 1.001, "2 decimal places"),
        ("special_price", -0.01, "greater than or equal to 0"),
    ],
)
def test_price_values_are_non_negative_with_two_decimals(field: str, value: Any, says: str) -> None:
    item = {"id": "sku-1", "price": 10, "special_price": 5, field: value}
    assert says in problem_for(rejected("products.price", [item]), f"data[0].{field}")


def test_price_null_survives_the_dead_letter_body_and_its_replay() -> None:
    # Given a price update that ends a discount
    command = to_command("products.price", [{"id": "sku-1", "price": 10, "special_price": None}])

    # When it is normalized (the body a dead letter carries) and replayed
    normalized = command.normalized()
    replayed = CommandEnvelope.parse(normalized).to_command()

    # Then the null is still the instruction, and the replay is the same command with the same id
    assert normalized["data"] == [{"id": "sku-1", "price": 10.0, "special_price": None}]
    assert replayed == command and replayed.id == command.id


def test_a_price_that_ends_a_discount_is_not_the_same_command_as_one_that_sets_it() -> None:
    ended = to_command("products.price", [{"id": "sku-1", "price": 10, "special_price": None}])
    kept = to_command("products.price", [{"id": "sku-1", "price": 10, "special_price": 8}])
    assert ended.id != kept.id


def test_stock_item_is_what_the_library_sends_and_nothing_more() -> None:
    # Given / When
    [stock] = to_command("products.stock", [{"id": "sku-1", "quantity": 0}]).data

    # Then no `available`: SALESmanago keeps what the last upsert set
    assert product_stock_item(stock) == {"productId": "sku-1", "quantity": 0}


def test_price_item_always_carries_the_discount_price_null_included() -> None:
    ended, set_ = to_command(
        "products.price",
        [
            {"id": "sku-1", "price": 10, "special_price": None},
            {"id": "sku-2", "price": 10, "special_price": 7.5},
        ],
    ).data
    assert product_price_item(ended) == {"productId": "sku-1", "price": 10.0, "discountPrice": None}
    assert product_price_item(set_) == {"productId": "sku-2", "price": 10.0, "discountPrice": 7.5}
