"""products.upsert data: each product's fields, limits, trims and the field map. Refusals are checked
as commands_support.py says.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.commands_support import (
    MARKER,
    assert_hidden,
    leaky,
    problem_for,
    product,
    rejected,
    to_command,
    url_of_length,
)

# --- products.upsert ---


@pytest.mark.parametrize(
    "data", [[], {}, {"id": "sku-1"}, "sku-1", None], ids=["empty", "dict", "object", "str", "null"]
)
def test_products_upsert_data_not_a_non_empty_list_rejected(data: Any) -> None:
    # Given / When
    error = rejected("products.upsert", data)

    # Then
    assert "non-empty list" in problem_for(error, "data")


@pytest.mark.parametrize("field", ["id", "name", "description", "category", "brand", "url", "image_url"])
def test_products_upsert_required_field_missing_rejected_naming_index(field: str) -> None:
    # Given a good first product and a second without the field
    second = product(id="sku-2")
    del second[field]

    # When
    error = rejected("products.upsert", [product(), second])

    # Then
    assert "required" in problem_for(error, f"data[1].{field}").lower()
    assert [d.field for d in error.details] == [f"data[1].{field}"]


@pytest.mark.parametrize("field", ["id", "name", "description", "category", "brand"])
def test_products_upsert_required_text_blank_rejected(field: str) -> None:
    # Given / When
    error = rejected("products.upsert", [product(**{field: "   "})])

    # Then
    assert "at least 1 character" in problem_for(error, f"data[0].{field}")


PRODUCT_TEXT_LIMITS = [
    ("id", 32),
    ("name", 100),
    ("description", 1024),
    ("category", 255),
    ("sub_category", 512),
    ("brand", 512),
    ("color", 40),
    ("season", 40),
] + [(f"detail{n}", 512) for n in range(1, 6)]


@pytest.mark.parametrize(("field", "limit"), PRODUCT_TEXT_LIMITS)
def test_products_upsert_text_at_limit_accepted_and_over_limit_rejected(field: str, limit: int) -> None:
    # Given
    fits, too_long = leaky(limit), leaky(limit + 1)

    # When
    accepted = to_command("products.upsert", [product(**{field: fits})])
    error = rejected("products.upsert", [product(**{field: too_long})])

    # Then
    assert getattr(accepted.data[0], field) == fits
    assert f"at most {limit} characters" in problem_for(error, f"data[0].{field}")
    assert_hidden(error, too_long)


@pytest.mark.parametrize(("field", "limit"), [("url", 512), ("image_url", 512), ("image2_url", 128)])
def test_products_upsert_url_at_limit_accepted_and_over_limit_rejected(field: str, limit: int) -> None:
    # Given
    fits, too_long = url_of_length(limit), url_of_length(limit + 1)

    # When
    accepted = to_command("products.upsert", [product(**{field: fits})])
    error = rejected("products.upsert", [product(**{field: too_long})])

    # Then
    assert getattr(accepted.data[0], field) == fits
    assert f"at most {limit} characters" in problem_for(error, f"data[0].{field}")
    assert_hidden(error, too_long)


@pytest.mark.parametrize("field", ["url", "image_url", "image2_url"])
@pytest.mark.parametrize(
    "bad_url", [f"shop.example.com/{MARKER}", f"ftp://shop.example.com/{MARKER}", f"https:///{MARKER}"]
)
def test_products_upsert_url_not_absolute_http_rejected(field: str, bad_url: str) -> None:
    # Given / When
    error = rejected("products.upsert", [product(**{field: bad_url})])

    # Then
    assert "URL" in problem_for(error, f"data[0].{field}")
    assert_hidden(error, bad_url)


@pytest.mark.parametrize("sex", [-1, 0, 1, 2, 4])
def test_products_upsert_sex_documented_value_accepted(sex: int) -> None:
    # Given / When
    command = to_command("products.upsert", [product(sex=sex)])

    # Then
    assert command.data[0].sex == sex


@pytest.mark.parametrize("sex", [3, 5, -2, "female"])
def test_products_upsert_sex_other_value_rejected(sex: Any) -> None:
    # Given / When
    error = rejected("products.upsert", [product(sex=sex)])

    # Then
    assert "-1, 0, 1, 2 or 4" in problem_for(error, "data[0].sex")


@pytest.mark.parametrize("field", ["price", "special_price"])
def test_products_upsert_price_two_decimals_accepted(field: str) -> None:
    # Given / When
    command = to_command("products.upsert", [product(**{field: 19.99})])

    # Then
    assert command.normalized()["data"][0][field] == 19.99


@pytest.mark.parametrize("field", ["price", "special_price"])
def test_products_upsert_price_negative_rejected(field: str) -> None:
    # Given / When
    error = rejected("products.upsert", [product(**{field: -0.01})])

    # Then
    assert "greater than or equal to 0" in problem_for(error, f"data[0].{field}")


@pytest.mark.parametrize("field", ["price", "special_price"])
def test_products_upsert_price_three_decimals_rejected(field: str) -> None:
    # Given / When
    error = rejected("products.upsert", [product(**{field: 19.999})])

    # Then
    assert "2 decimal places" in problem_for(error, f"data[0].{field}")
    assert_hidden(error, "19.999")


@pytest.mark.parametrize("stock", [0, 7])
def test_products_upsert_stock_non_negative_integer_accepted(stock: int) -> None:
    # Given / When
    command = to_command("products.upsert", [product(stock_available=stock)])

    # Then
    assert command.data[0].stock_available == stock


@pytest.mark.parametrize(("stock", "words"), [(-1, "greater than or equal to 0"), (1.5, "integer")])
def test_products_upsert_stock_negative_or_fractional_rejected(stock: Any, words: str) -> None:
    # Given / When
    error = rejected("products.upsert", [product(stock_available=stock)])

    # Then
    assert words in problem_for(error, "data[0].stock_available")


@pytest.mark.parametrize("field", ["active", "available"])
@pytest.mark.parametrize("flag", [True, False])
def test_products_upsert_active_and_available_booleans_kept(field: str, flag: bool) -> None:
    # Given / When
    command = to_command("products.upsert", [product(**{field: flag})])

    # Then
    assert command.normalized()["data"][0][field] is flag


@pytest.mark.parametrize("field", ["active", "available"])
def test_products_upsert_active_and_available_not_boolean_rejected(field: str) -> None:
    # Given / When
    error = rejected("products.upsert", [product(**{field: MARKER})])

    # Then
    assert "boolean" in problem_for(error, f"data[0].{field}")
    assert_hidden(error)


def test_products_upsert_unknown_field_routed_by_field_map() -> None:
    # Given the sample group's route ean → detail4
    data = [product(ean="5901234123457")]

    # When
    command = to_command("products.upsert", data, field_map={"ean": "detail4"})

    # Then
    assert command.data[0].detail4 == "5901234123457"
    assert command.ignored_fields == ()


def test_products_upsert_producer_detail_wins_over_routed_field() -> None:
    # Given
    data = [product(ean="5901234123457", detail4="own")]

    # When
    command = to_command("products.upsert", data, field_map={"ean": "detail4"})

    # Then
    assert command.data[0].detail4 == "own"


def test_products_upsert_unmapped_fields_ignored_and_listed_with_index() -> None:
    # Given unknown fields in the first and third products
    data = [product(warehouse="A1"), product(id="sku-2"), product(id="sku-3", ean="590", weight=3)]

    # When
    command = to_command("products.upsert", data)

    # Then the products are accepted and every ignored field is listed
    assert [p.id for p in command.data] == ["sku-1", "sku-2", "sku-3"]
    assert command.ignored_fields == ("data[0].warehouse", "data[2].ean", "data[2].weight")
    assert "warehouse" not in command.normalized()["data"][0]


def test_products_upsert_several_bad_products_every_failing_field_listed_with_index() -> None:
    # Given errors spread over products 1, 2 and 3
    data = [
        product(),
        product(id="sku-2", url=f"not-a-url-{MARKER}", price=-1),
        f"sku-3-{MARKER}",
        product(id=leaky(33), sex=3, stock_available=-4),
    ]

    # When
    error = rejected("products.upsert", data)

    # Then
    assert {d.field for d in error.details} == {
        "data[1].url",
        "data[1].price",
        "data[2]",
        "data[3].id",
        "data[3].sex",
        "data[3].stock_available",
    }
    assert "object" in problem_for(error, "data[2]")
    assert_hidden(error)


def test_products_upsert_product_name_never_echoed() -> None:
    # Given a distinctive product name over its limit
    name = leaky(101)

    # When
    error = rejected("products.upsert", [product(name=name)])

    # Then
    assert_hidden(error, name)
