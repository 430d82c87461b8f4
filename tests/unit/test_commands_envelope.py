"""The envelope (action, group_key, id, JSON) and the normalized command a dead letter carries.
Refusals are checked as commands_support.py says.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from salesmanago_bridge.commands import (
    Action,
    CommandEnvelope,
)
from salesmanago_bridge.errors import (
    ValidationFailedError,
)
from tests.unit.commands_support import (
    EMAIL,
    GROUP,
    MARKER,
    MAY_1_2024_10_00_UTC_MS,
    assert_hidden,
    base_data,
    body,
    problem_for,
    product,
    rejected,
    to_command,
    with_fields,
)

# --- envelope ---


@pytest.mark.parametrize("group_key", ["a", "Shop_1-pl", "g" * 128])
def test_envelope_parse_group_key_valid_accepted(group_key: str) -> None:
    # Given / When
    envelope = CommandEnvelope.parse({"action": "contact.upsert", "group_key": group_key, "data": {}})

    # Then
    assert envelope.group_key == group_key


@pytest.mark.parametrize(
    "group_key",
    ["", "g" * 129, "shop key", "shop/1", "shop.1", "sklep-ł", 42],
    ids=["empty", "129", "space", "slash", "dot", "accent", "number"],
)
def test_envelope_parse_group_key_invalid_rejected(group_key: Any) -> None:
    # Given / When
    with pytest.raises(ValidationFailedError) as info:
        CommandEnvelope.parse({"action": "contact.upsert", "group_key": group_key, "data": {}})

    # Then
    assert problem_for(info.value, "group_key")


def test_envelope_parse_group_key_missing_rejected() -> None:
    # Given / When
    with pytest.raises(ValidationFailedError) as info:
        CommandEnvelope.parse({"action": "contact.upsert", "data": {}})

    # Then
    assert "required" in problem_for(info.value, "group_key").lower()


def test_envelope_parse_data_missing_rejected() -> None:
    # Given / When
    with pytest.raises(ValidationFailedError) as info:
        CommandEnvelope.parse({"action": "contact.upsert", "group_key": GROUP})

    # Then
    assert "required" in problem_for(info.value, "data").lower()


def test_envelope_parse_action_missing_rejected() -> None:
    # Given a body without action and no attribute
    payload = {"group_key": GROUP, "data": {"email": EMAIL}}

    # When
    with pytest.raises(ValidationFailedError) as info:
        CommandEnvelope.parse(payload)

    # Then
    assert "required" in problem_for(info.value, "action")
    assert_hidden(info.value, EMAIL)


def test_envelope_parse_action_from_attribute_when_body_has_none() -> None:
    # Given a body identical to the HTTP API's, and the action as a message attribute
    payload = {"group_key": GROUP, "data": {"email": EMAIL}}

    # When
    envelope = CommandEnvelope.parse(payload, action="contact.delete")

    # Then
    assert envelope.action is Action.CONTACT_DELETE


def test_envelope_parse_body_action_wins_over_attribute() -> None:
    # Given both a body action and an attribute
    payload = body("contact.upsert", {"email": EMAIL})

    # When
    envelope = CommandEnvelope.parse(payload, action="contact.delete")

    # Then the attribute is only a fallback
    assert envelope.action is Action.CONTACT_UPSERT


def test_envelope_parse_body_action_null_falls_back_to_attribute() -> None:
    # Given / When
    envelope = CommandEnvelope.parse(body(None, {"email": EMAIL}), action="event.create")

    # Then
    assert envelope.action is Action.EVENT_CREATE


@pytest.mark.parametrize(
    ("payload", "attribute"),
    [(body("contact.nuke", {}), None), ({"group_key": GROUP, "data": {}}, "contact.nuke")],
    ids=["body", "attribute"],
)
def test_envelope_parse_unknown_action_rejected_listing_actions(
    payload: dict[str, Any], attribute: str | None
) -> None:
    # Given / When
    with pytest.raises(ValidationFailedError) as info:
        CommandEnvelope.parse(payload, action=attribute)

    # Then
    problem = problem_for(info.value, "action")
    assert "contact.upsert" in problem and "products.upsert" in problem


def test_envelope_parse_extra_top_level_keys_rejected_naming_each() -> None:
    # Given two keys the envelope does not have
    payload = body("contact.upsert", {"email": EMAIL}, email=EMAIL, source=f"crm-{MARKER}")

    # When
    with pytest.raises(ValidationFailedError) as info:
        CommandEnvelope.parse(payload)

    # Then
    assert {d.field for d in info.value.details} == {"email", "source"}
    assert "not permitted" in problem_for(info.value, "source")
    assert_hidden(info.value, EMAIL)


@pytest.mark.parametrize("raw", ['{"group_key": "shop-1", "data"', b"\xff\xfe", "", "not json"])
def test_envelope_parse_body_not_json_rejected(raw: str | bytes) -> None:
    # Given / When
    with pytest.raises(ValidationFailedError) as info:
        CommandEnvelope.parse(raw)

    # Then
    assert "JSON" in problem_for(info.value, "body")


@pytest.mark.parametrize("raw", ["[1, 2]", b'"text"', "42", [body("contact.upsert", {})], None])
def test_envelope_parse_body_not_an_object_rejected(raw: Any) -> None:
    # Given / When
    with pytest.raises(ValidationFailedError) as info:
        CommandEnvelope.parse(raw)

    # Then
    assert "object" in problem_for(info.value, "body")


def test_envelope_parse_json_text_accepted() -> None:
    # Given a raw SQS body
    raw = json.dumps(body("contact.delete", {"email": EMAIL}, id="order-1"))

    # When
    envelope = CommandEnvelope.parse(raw.encode())

    # Then
    assert (envelope.action, envelope.group_key, envelope.id) == (Action.CONTACT_DELETE, GROUP, "order-1")


# --- normalized ---


def test_command_normalized_has_exactly_the_dead_letter_shape() -> None:
    # Given / When
    normalized = to_command("contact.upsert", {"email": EMAIL, "name": "Zofia"}).normalized()

    # Then
    assert set(normalized) == {"action", "group_key", "data", "id"}
    assert normalized["action"] == "contact.upsert"
    assert normalized["group_key"] == GROUP
    assert normalized["data"] == {"email": EMAIL, "name": "Zofia"}


@pytest.mark.parametrize("action", ["contact.upsert", "contact.delete", "event.create", "products.upsert"])
def test_command_id_derived_deterministically_from_content(action: str) -> None:
    # Given the same command twice
    first = to_command(action, base_data(action))

    # When
    second = to_command(action, base_data(action))

    # Then
    assert first.id == second.id
    assert first.id.startswith("sha256:")
    assert MARKER not in first.id


def test_command_id_differs_for_a_different_event_date() -> None:
    # Given two events that differ only in date
    first = to_command("event.create", with_fields("event.create"))

    # When
    second = to_command("event.create", with_fields("event.create", date=MAY_1_2024_10_00_UTC_MS + 1))

    # Then
    assert first.id != second.id


def test_command_id_differs_for_a_different_group() -> None:
    # Given
    first = to_command("event.create", with_fields("event.create"))

    # When
    second = CommandEnvelope.parse(
        {"action": "event.create", "group_key": "other-shop", "data": with_fields("event.create")}
    ).to_command()

    # Then
    assert first.id != second.id


def test_command_id_ignores_email_case() -> None:
    # Given the same contact written in two cases
    lower = to_command("event.create", with_fields("event.create", email="zofia@example.com"))

    # When
    upper = to_command("event.create", with_fields("event.create", email="ZOFIA@EXAMPLE.COM"))

    # Then
    assert lower.id == upper.id


def test_command_id_same_for_event_date_given_as_ms_or_iso() -> None:
    # Given / When
    as_ms = to_command("event.create", with_fields("event.create"))
    as_iso = to_command("event.create", with_fields("event.create", date="2024-05-01T10:00:00Z"))

    # Then
    assert as_ms.id == as_iso.id


def test_command_producer_id_kept() -> None:
    # Given
    envelope = CommandEnvelope.parse(body("event.create", with_fields("event.create"), id="order-1234-paid"))

    # When
    command = envelope.to_command()

    # Then
    assert command.id == "order-1234-paid"
    assert command.normalized()["id"] == "order-1234-paid"


ROUND_TRIP_CASES = {
    "contact.upsert": {
        "email": "Zofia.Kowalska@Example.com",
        "name": "Zofia",
        "streetAddress": "Długa 1",
        "tags": ["vip"],
        "properties": {"points": 12},
        "birthday": "1990-05-17",
        "forceOptIn": True,
        "consentDetails": [
            {"consentName": "gdpr", "consentAccept": True, "agreementDate": "2024-05-01T10:00:00Z"}
        ],
    },
    "contact.delete": {"email": EMAIL, "permanently": True},
    "event.create": {
        "email": EMAIL,
        "contactExtEventType": "PURCHASE",
        "products": ["sku-1", "sku-2"],
        "value": "12.50",
        "date": "2024-05-01T12:00:00+02:00",
        "detail20": "last",
    },
    "products.upsert": [
        product(price=19.99, special_price=9.5, sex=4, stock_available=3),
        product(id="sku-2"),
    ],
}


@pytest.mark.parametrize("action", list(ROUND_TRIP_CASES))
def test_command_normalized_reparses_to_an_equal_command(action: str) -> None:
    # Given a command built from a producer's payload
    original = to_command(action, ROUND_TRIP_CASES[action], default_location="demo_shop")

    # When its normalized form is replayed without any source context
    replayed = CommandEnvelope.parse(json.loads(json.dumps(original.normalized()))).to_command()

    # Then
    assert replayed == original
    assert replayed.normalized() == original.normalized()


def test_command_normalized_event_keeps_resolved_date_and_location_for_replay() -> None:
    # Given an event whose date and location came from the source and the group
    data = with_fields("event.create")
    del data["date"]
    original = to_command(
        "event.create", data, sent_at_ms=MAY_1_2024_10_00_UTC_MS, default_location="demo_shop"
    )

    # When replayed later, elsewhere
    replayed = CommandEnvelope.parse(original.normalized()).to_command(default_location="other")

    # Then
    assert replayed.data.date == MAY_1_2024_10_00_UTC_MS
    assert replayed.data.location == "demo_shop"
    assert replayed.id == original.id


def test_command_email_property_lower_cases() -> None:
    # Given / When
    command = to_command("contact.delete", {"email": "Zofia@Example.COM"})

    # Then
    assert command.email == "zofia@example.com"
    assert to_command("products.upsert", [product()]).email is None


def test_command_errors_carry_group_key_but_not_input() -> None:
    # Given / When
    error = rejected("contact.upsert", {"email": f"{MARKER}@@example.com"})

    # Then
    assert error.group_key == GROUP
    assert error.as_reason()["error_type"] == "validation"
    assert f"group {GROUP}" in error.describe()


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/p/1",
        "HTTP://Shop.Example.com",
        "https://shop.example.com:8443/p?q=1#top",
        "https://user:pw@shop.example.com/x",
        "https://[::1]/p",
        "http://shop.example.com?x=1",
    ],
)
def test_products_upsert_absolute_http_urls_accepted(url: str) -> None:
    # Given / When
    command = to_command("products.upsert", [product(url=url)])

    # Then
    assert command.data[0].url == url


@pytest.mark.parametrize("bad_url", ["https://[::1/p", "https://", "https://?q", "http:/shop.example.com"])
def test_products_upsert_url_without_a_host_rejected(bad_url: str) -> None:
    # Given / When
    error = rejected("products.upsert", [product(url=bad_url)])

    # Then
    assert "URL" in problem_for(error, "data[0].url")


def test_event_defaults_never_written_into_the_producers_data() -> None:
    # Given an event without date or location, as the producer sent it
    data = {"email": EMAIL, "contactExtEventType": "PURCHASE"}
    envelope = CommandEnvelope.parse({"action": "event.create", "group_key": GROUP, "data": data})

    # When the send time and the group's location fill the gaps
    command = envelope.to_command(sent_at_ms=MAY_1_2024_10_00_UTC_MS, default_location="shop_pl")

    # Then the command has them and the producer's data (what a dead letter carries) does not
    assert (command.data.date, command.data.location) == (MAY_1_2024_10_00_UTC_MS, "shop_pl")
    assert data == {"email": EMAIL, "contactExtEventType": "PURCHASE"}


def test_command_with_a_given_id_equals_the_one_that_derived_it() -> None:
    # Given a command whose id was derived from its content
    first = to_command("contact.upsert", {"email": EMAIL, "name": "Zofia"})

    # When it comes back with that id spelled out (a replay of its dead letter)
    replayed = CommandEnvelope.parse(first.normalized()).to_command()

    # Then it is the same command, and a different id makes a different one
    assert replayed == first and hash(replayed) == hash(first)
    other = CommandEnvelope.parse({**first.normalized(), "id": "producer-7"}).to_command()
    assert other != first


@pytest.mark.parametrize("field", ["brand", "sub_category", "detail1", "detail5"])
def test_products_upsert_value_over_salesmanago_limit_warns_per_trim(field: str) -> None:
    # Given a second product with a value SALESmanago keeps only 255 characters of
    data = [
        base_data("products.upsert")[0],
        {**base_data("products.upsert")[0], "id": "p2", field: "x" * 300},
    ]

    # When
    command = to_command("products.upsert", data)

    # Then one warning names the product and the field, never the value
    assert command.warnings == (f"trimmed: data[1].{field} cut to 255 characters (SALESmanago's limit)",)
