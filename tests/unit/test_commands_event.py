"""event.create data: types, dates, values, locations and details. Refusals are checked as
commands_support.py says.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from salesmanago_bridge.commands import (
    EVENT_TYPES,
    LEGACY_EVENT_TYPES,
)
from salesmanago_bridge.errors import (
    UnmappedFieldError,
)
from tests.unit.commands_support import (
    ALL_EVENT_TYPES,
    EMAIL,
    MARKER,
    MAY_1_2024_10_00_UTC_MS,
    OLDER_EVENT_TYPES,
    assert_hidden,
    leaky,
    problem_for,
    rejected,
    to_command,
    with_fields,
)

# --- event.create ---


def test_event_create_module_lists_exactly_the_25_documented_types() -> None:
    # Given / When / Then
    assert sorted(EVENT_TYPES) == sorted(ALL_EVENT_TYPES)
    assert len(EVENT_TYPES) == 25


def test_event_create_legacy_types_are_the_13_older_ones() -> None:
    # Given / When / Then
    assert sorted(LEGACY_EVENT_TYPES) == sorted(OLDER_EVENT_TYPES)
    assert set(LEGACY_EVENT_TYPES) <= set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", ALL_EVENT_TYPES)
def test_event_create_each_documented_type_accepted(event_type: str) -> None:
    # Given / When
    command = to_command("event.create", with_fields("event.create", contactExtEventType=event_type))

    # Then
    assert command.normalized()["data"]["contactExtEventType"] == event_type


def test_event_create_type_missing_rejected() -> None:
    # Given
    data = with_fields("event.create")
    del data["contactExtEventType"]

    # When
    error = rejected("event.create", data)

    # Then
    assert "required" in problem_for(error, "data.contactExtEventType").lower()


@pytest.mark.parametrize("event_type", ["purchase", "REFUND", f"{MARKER.upper()}_TYPE"])
def test_event_create_type_unknown_rejected_listing_allowed_types(event_type: str) -> None:
    # Given / When
    error = rejected("event.create", with_fields("event.create", contactExtEventType=event_type))

    # Then
    problem = problem_for(error, "data.contactExtEventType")
    assert "PURCHASE" in problem and "REPEATED_LOAN" in problem
    assert_hidden(error, f"{MARKER.upper()}_TYPE", EMAIL)


@pytest.mark.parametrize(
    ("field", "limit"),
    [("description", 2048), ("externalId", 255), ("shopDomain", 255)]
    + [(f"detail{n}", 255) for n in range(1, 21)],
)
def test_event_create_text_at_limit_accepted_and_over_limit_rejected(field: str, limit: int) -> None:
    # Given one value at the limit and one over it
    fits, too_long = leaky(limit), leaky(limit + 1)

    # When
    accepted = to_command("event.create", with_fields("event.create", **{field: fits}))
    error = rejected("event.create", with_fields("event.create", **{field: too_long}))

    # Then
    assert getattr(accepted.data, field) == fits
    assert f"at most {limit} characters" in problem_for(error, f"data.{field}")
    assert_hidden(error, too_long)


def test_event_create_detail21_unknown_rejected_as_unmapped() -> None:
    # Given / When
    error = rejected("event.create", with_fields("event.create", detail21=MARKER), UnmappedFieldError)

    # Then
    assert problem_for(error, "data.detail21")
    assert_hidden(error)


def test_event_create_products_list_joined_with_commas() -> None:
    # Given ids as a list, numbers included
    data = with_fields("event.create", products=["sku-1", 2, " sku-3 "])

    # When
    command = to_command("event.create", data)

    # Then
    assert command.data.products == "sku-1,2,sku-3"


def test_event_create_products_string_of_512_accepted() -> None:
    # Given / When
    command = to_command("event.create", with_fields("event.create", products="p" * 512))

    # Then
    assert len(command.data.products) == 512


def test_event_create_products_string_over_512_rejected_naming_limit() -> None:
    # Given
    products = leaky(513)

    # When
    error = rejected("event.create", with_fields("event.create", products=products))

    # Then
    assert "at most 512 characters" in problem_for(error, "data.products")
    assert_hidden(error, products)


def test_event_create_products_list_limit_applies_after_joining() -> None:
    # Given 100 short ids: each fits, joined they are 599 characters
    ids = [f"{MARKER[:2]}{n:03d}" for n in range(100)]

    # When
    error = rejected("event.create", with_fields("event.create", products=ids))

    # Then
    assert "at most 512 characters" in problem_for(error, "data.products")
    assert_hidden(error, ",".join(ids))


def test_event_create_products_list_of_non_ids_rejected() -> None:
    # Given / When
    error = rejected("event.create", with_fields("event.create", products=[{"id": MARKER}]))

    # Then
    assert "product ids" in problem_for(error, "data.products")
    assert_hidden(error)


# SALESmanago's own library only trims an event's location at 255 (salesmanago-api.md §3, corrected).
@pytest.mark.parametrize("location", ["shop_pl", "MyShop", "shop-1.pl", "Shop PL", "l" * 255])
def test_event_create_location_up_to_255_accepted(location: str) -> None:
    # Given / When
    command = to_command("event.create", with_fields("event.create", location=location))

    # Then
    assert command.data.location == location


def test_event_create_location_over_255_rejected() -> None:
    # Given / When
    error = rejected("event.create", with_fields("event.create", location="l" * 256))

    # Then
    assert "255" in problem_for(error, "data.location")


@pytest.mark.parametrize(
    ("location", "group_location"),
    [("outlet", "demo_shop"), ("shop-1.pl", None), ("shop-1.pl", "demo_shop")],
    ids=["differs", "no-catalog-can-have-it", "both"],
)
def test_event_create_location_mismatch_is_a_warning_not_an_error(
    location: str, group_location: str | None
) -> None:
    # Given an event whose location cannot link it to the group's catalog
    data = with_fields("event.create", location=location)

    # When
    command = to_command("event.create", data, default_location=group_location)

    # Then it is kept, and says why it will not link to the catalog's products
    assert command.data.location == location
    assert [w.split(":")[0] for w in command.warnings] == ["location_mismatch"]
    assert location not in " ".join(command.warnings)


@pytest.mark.parametrize(
    ("location", "group_location"), [(None, "demo_shop"), ("demo_shop", "demo_shop"), ("MyShop", None)]
)
def test_event_create_location_matching_catalog_has_no_warning(
    location: str | None, group_location: str | None
) -> None:
    # Given / When
    command = to_command(
        "event.create", with_fields("event.create", location=location), default_location=group_location
    )

    # Then
    assert command.warnings == ()


def test_event_create_location_defaults_to_group_location() -> None:
    # Given no location in the event
    data = with_fields("event.create")

    # When
    command = to_command("event.create", data, default_location="demo_shop")

    # Then
    assert command.data.location == "demo_shop"


def test_event_create_producer_location_wins_over_group_default() -> None:
    # Given / When
    command = to_command(
        "event.create", with_fields("event.create", location="outlet"), default_location="demo_shop"
    )

    # Then
    assert command.data.location == "outlet"


@pytest.mark.parametrize(("value", "sent"), [(12.34, 12.34), ("12.50", 12.5), (100, 100.0), (-5.5, -5.5)])
def test_event_create_value_number_with_two_decimals_accepted(value: Any, sent: float) -> None:
    # Given / When
    command = to_command("event.create", with_fields("event.create", value=value))

    # Then
    assert command.normalized()["data"]["value"] == sent


def test_event_create_value_with_three_decimals_rejected() -> None:
    # Given / When
    error = rejected("event.create", with_fields("event.create", value=12.345))

    # Then
    assert "2 decimal places" in problem_for(error, "data.value")
    assert_hidden(error, "12.345")


@pytest.mark.parametrize("value", [f"{MARKER}", True, [1]])
def test_event_create_value_not_a_number_rejected(value: Any) -> None:
    # Given / When
    error = rejected("event.create", with_fields("event.create", value=value))

    # Then
    assert problem_for(error, "data.value")
    assert_hidden(error)


@pytest.mark.parametrize(
    "date",
    [
        MAY_1_2024_10_00_UTC_MS,
        str(MAY_1_2024_10_00_UTC_MS),
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00.000+00:00",
        "2024-05-01T12:00:00+02:00",
        "2024-05-01T05:00:00-05:00",
        "2024-05-01T10:00:00",
    ],
    ids=[
        "int-ms",
        "digit-string",
        "iso-z",
        "iso-utc-offset",
        "iso-plus-2",
        "iso-minus-5",
        "iso-naive-as-utc",
    ],
)
def test_event_create_date_forms_resolved_to_epoch_ms(date: Any) -> None:
    # Given / When
    command = to_command("event.create", with_fields("event.create", date=date))

    # Then
    assert command.data.date == MAY_1_2024_10_00_UTC_MS


@pytest.mark.parametrize("date", [1_714_557_600, "1714557600"], ids=["int", "digit-string"])
def test_event_create_date_in_seconds_rejected_mentioning_milliseconds(date: Any) -> None:
    # Given a timestamp that looks like seconds
    data = with_fields("event.create", date=date)

    # When
    error = rejected("event.create", data)

    # Then
    assert "milliseconds" in problem_for(error, "data.date")
    assert_hidden(error, "1714557600")


@pytest.mark.parametrize("date", [f"{MARKER}-yesterday", "01/05/2024", True])
def test_event_create_date_not_a_date_rejected(date: Any) -> None:
    # Given / When
    error = rejected("event.create", with_fields("event.create", date=date))

    # Then
    assert "ISO 8601" in problem_for(error, "data.date")
    assert_hidden(error, "01/05/2024")


def test_event_create_date_absent_taken_from_source_sent_time() -> None:
    # Given an event without a date, sent at a known time
    data = with_fields("event.create")
    del data["date"]

    # When
    command = to_command("event.create", data, sent_at_ms=MAY_1_2024_10_00_UTC_MS)

    # Then
    assert command.data.date == MAY_1_2024_10_00_UTC_MS


def test_event_create_date_null_taken_from_source_sent_time() -> None:
    # Given a producer that writes absent values as null
    data = with_fields("event.create", date=None)

    # When
    command = to_command("event.create", data, sent_at_ms=MAY_1_2024_10_00_UTC_MS)

    # Then a redelivery resolves the same date (and so the same derived id)
    assert command.data.date == MAY_1_2024_10_00_UTC_MS


def test_event_create_producer_date_wins_over_sent_time() -> None:
    # Given / When
    command = to_command(
        "event.create", with_fields("event.create"), sent_at_ms=MAY_1_2024_10_00_UTC_MS + 5000
    )

    # Then
    assert command.data.date == MAY_1_2024_10_00_UTC_MS


def test_event_create_date_absent_without_sent_time_is_now() -> None:
    # Given
    data = with_fields("event.create")
    del data["date"]
    before_ms = int(time.time() * 1000)

    # When
    command = to_command("event.create", data)

    # Then
    after_ms = int(time.time() * 1000)
    assert before_ms - 2000 <= command.data.date <= after_ms + 2000
