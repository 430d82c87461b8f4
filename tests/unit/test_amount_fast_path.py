"""Prices and event values: the float fast path accepts and sends exactly what the Decimal rules would."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from salesmanago_bridge.commands import EventCreateData, ProductData
from salesmanago_bridge.fields import _EXACT_EVENT_VALUE, _EXACT_MONEY
from tests.conftest import PRODUCT_BASE


def exact(adapter: Any, value: Any) -> float | None:
    """The rule itself: the Decimal constraints, then the float SALESmanago is sent (None: refused)."""
    try:
        return float(adapter.validate_python(value))
    except ValidationError:
        return None


def price(value: Any) -> float | None:
    try:
        return ProductData.model_validate({"id": "sku-1", **PRODUCT_BASE, "price": value}).price
    except ValidationError:
        return None


def event_value(value: Any) -> float | None:
    try:
        data = {"email": "zofia@example.com", "contactExtEventType": "PURCHASE", "value": value}
        return EventCreateData.model_validate(data).value
    except ValidationError:
        return None


cents = st.integers(-(10**17), 10**17).map(lambda n: n / 100)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    cents,
    st.integers(-(10**22), 10**22),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(float),
)


@settings(max_examples=2000, deadline=None)
@given(numbers)
@example(0.125)
@example(0.30000000000000004)
@example(1e15)
@example(-0.0)
@example(10**19)
@example(True)
def test_amount_fast_path_agrees_with_the_decimal_rules(value: Any) -> None:
    assert price(value) == exact(_EXACT_MONEY, value)
    assert event_value(value) == exact(_EXACT_EVENT_VALUE, value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(cents.map(str), st.text(max_size=12), st.decimals(allow_nan=True, places=4)))
def test_amount_texts_and_decimals_follow_the_decimal_rules(value: Any) -> None:
    assert price(value) == exact(_EXACT_MONEY, value)
    assert event_value(value) == exact(_EXACT_EVENT_VALUE, value)


@pytest.mark.parametrize(
    ("value", "message"), [(-1, "greater than or equal to 0"), (1.999, "2 decimal places")]
)
def test_amount_refusal_names_the_rule(value: float, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ProductData.model_validate({"id": "sku-1", **PRODUCT_BASE, "price": value})
    (error,) = caught.value.errors()
    assert error["loc"] == ("price",)
    assert message in error["msg"]


def test_amount_sent_as_a_float_even_from_a_decimal_string() -> None:
    assert event_value("19.90") == 19.9
    assert type(event_value(Decimal("5"))) is float
