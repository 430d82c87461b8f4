"""contact.upsert and contact.delete data, and fields outside the contract (the field map). Refusals
are checked as commands_support.py says.
"""

from __future__ import annotations

from typing import Any

import pytest

from salesmanago_bridge.commands import (
    CommandEnvelope,
)
from salesmanago_bridge.errors import (
    UnmappedFieldError,
)
from tests.unit.commands_support import (
    EMAIL,
    EMAIL_ACTIONS,
    MARKER,
    MAY_1_2024_10_00_UTC_MS,
    assert_hidden,
    base_data,
    body,
    leaky,
    problem_for,
    rejected,
    to_command,
    with_fields,
)

# --- contact.upsert ---


def test_contact_upsert_new_email_invalid_rejected_naming_data_new_email() -> None:
    # Given
    data = with_fields("contact.upsert", newEmail=f"new.{MARKER}@@example.com")

    # When
    error = rejected("contact.upsert", data)

    # Then
    assert "email" in problem_for(error, "data.newEmail").lower()
    assert_hidden(error)


def test_contact_upsert_new_email_valid_accepted() -> None:
    # Given / When
    command = to_command("contact.upsert", with_fields("contact.upsert", newEmail="new@example.com"))

    # Then
    assert command.data.newEmail == "new@example.com"


@pytest.mark.parametrize("state", ["CUSTOMER", "PROSPECT", "PARTNER", "OTHER", "UNKNOWN"])
def test_contact_upsert_each_documented_state_accepted(state: str) -> None:
    # Given / When
    command = to_command("contact.upsert", with_fields("contact.upsert", state=state))

    # Then
    assert command.normalized()["data"]["state"] == state


def test_contact_upsert_unknown_state_rejected_listing_allowed_states() -> None:
    # Given
    data = with_fields("contact.upsert", state=MARKER.upper())

    # When
    error = rejected("contact.upsert", data)

    # Then
    problem = problem_for(error, "data.state")
    assert "CUSTOMER" in problem and "PROSPECT" in problem
    assert_hidden(error, MARKER.upper())


@pytest.mark.parametrize("field", ["tags", "removeTags"])
def test_contact_upsert_tags_not_a_list_rejected(field: str) -> None:
    # Given a single string where a list is expected
    data = with_fields("contact.upsert", **{field: f"vip-{MARKER}"})

    # When
    error = rejected("contact.upsert", data)

    # Then
    assert "list" in problem_for(error, f"data.{field}").lower()
    assert_hidden(error)


@pytest.mark.parametrize("field", ["tags", "removeTags"])
def test_contact_upsert_tags_item_not_a_string_rejected_naming_index(field: str) -> None:
    # Given a list with a number at index 1
    data = with_fields("contact.upsert", **{field: ["vip", 5]})

    # When
    error = rejected("contact.upsert", data)

    # Then
    assert "string" in problem_for(error, f"data.{field}[1]").lower()


@pytest.mark.parametrize("field", ["tags", "removeTags"])
def test_contact_upsert_tags_list_of_strings_accepted(field: str) -> None:
    # Given / When
    command = to_command("contact.upsert", with_fields("contact.upsert", **{field: ["vip", "newsletter"]}))

    # Then
    assert command.normalized()["data"][field] == ["vip", "newsletter"]


def test_contact_upsert_properties_numbers_and_booleans_coerced_to_text() -> None:
    # Given custom details of several scalar types
    data = with_fields("contact.upsert", properties={"points": 12, "vip": True, "optin": False, "ratio": 1.5})

    # When
    command = to_command("contact.upsert", data)

    # Then every value is text, as SALESmanago stores it
    assert command.normalized()["data"]["properties"] == {
        "points": "12",
        "vip": "true",
        "optin": "false",
        "ratio": "1.5",
    }


def test_contact_upsert_properties_not_a_map_rejected() -> None:
    # Given
    data = with_fields("contact.upsert", properties=[f"loyalty={MARKER}"])

    # When
    error = rejected("contact.upsert", data)

    # Then
    assert "dict" in problem_for(error, "data.properties").lower()
    assert_hidden(error)


def test_contact_upsert_properties_nested_value_rejected_naming_property() -> None:
    # Given a property whose value is not a scalar
    data = with_fields("contact.upsert", properties={"loyalty": {"tier": MARKER}})

    # When
    error = rejected("contact.upsert", data)

    # Then
    assert "string" in problem_for(error, "data.properties.loyalty").lower()
    assert_hidden(error)


@pytest.mark.parametrize("birthday", ["1990-05-17", "19900517"])
def test_contact_upsert_birthday_iso_or_compact_serialized_as_yyyymmdd(birthday: str) -> None:
    # Given / When
    command = to_command("contact.upsert", with_fields("contact.upsert", birthday=birthday))

    # Then
    assert command.normalized()["data"]["birthday"] == "19900517"


@pytest.mark.parametrize("birthday", ["19901317", "19900230", "1990-02-30", "17 May 1990"])
def test_contact_upsert_birthday_invalid_date_rejected(birthday: str) -> None:
    # Given
    data = with_fields("contact.upsert", birthday=birthday)

    # When
    error = rejected("contact.upsert", data)

    # Then
    assert "date" in problem_for(error, "data.birthday").lower()
    assert_hidden(error, birthday)


@pytest.mark.parametrize(
    ("opt_in", "opt_out"), [("forceOptIn", "forceOptOut"), ("forcePhoneOptIn", "forcePhoneOptOut")]
)
def test_contact_upsert_force_opt_in_and_out_both_true_rejected(opt_in: str, opt_out: str) -> None:
    # Given contradictory consent flags
    data = with_fields("contact.upsert", **{opt_in: True, opt_out: True})

    # When
    error = rejected("contact.upsert", data)

    # Then the detail names both flags (a cross-field rule is reported on the data object)
    problems = [d.problem for d in error.details if d.field in ("data", f"data.{opt_in}", f"data.{opt_out}")]
    assert problems, [d.field for d in error.details]
    assert opt_in in problems[0] and opt_out in problems[0]


@pytest.mark.parametrize(("opt_in", "opt_out"), [(True, False), (False, True), (True, None)])
def test_contact_upsert_force_opt_in_or_out_alone_accepted(opt_in: bool, opt_out: bool | None) -> None:
    # Given / When
    command = to_command(
        "contact.upsert", with_fields("contact.upsert", forceOptIn=opt_in, forceOptOut=opt_out)
    )

    # Then
    assert command.data.forceOptIn is opt_in


def test_contact_upsert_consent_name_missing_rejected_naming_item() -> None:
    # Given
    data = with_fields("contact.upsert", consentDetails=[{"consentAccept": True}])

    # When
    error = rejected("contact.upsert", data)

    # Then
    assert "required" in problem_for(error, "data.consentDetails[0].consentName").lower()


def test_contact_upsert_consent_accept_not_boolean_rejected_naming_item() -> None:
    # Given a valid first consent and a bad second one
    data = with_fields(
        "contact.upsert",
        consentDetails=[
            {"consentName": "gdpr", "consentAccept": True},
            {"consentName": "sms", "consentAccept": MARKER},
        ],
    )

    # When
    error = rejected("contact.upsert", data)

    # Then
    assert "boolean" in problem_for(error, "data.consentDetails[1].consentAccept").lower()
    assert_hidden(error)


@pytest.mark.parametrize(
    "agreement_date", [MAY_1_2024_10_00_UTC_MS, "2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00"]
)
def test_contact_upsert_consent_agreement_date_epoch_ms_or_iso_sent_as_ms(agreement_date: Any) -> None:
    # Given
    data = with_fields(
        "contact.upsert",
        consentDetails=[{"consentName": "gdpr", "consentAccept": True, "agreementDate": agreement_date}],
    )

    # When
    command = to_command("contact.upsert", data)

    # Then
    assert command.normalized()["data"]["consentDetails"][0]["agreementDate"] == MAY_1_2024_10_00_UTC_MS


@pytest.mark.parametrize("agreement_date", [1_714_557_600, f"{MARKER}-date"])
def test_contact_upsert_consent_agreement_date_invalid_rejected(agreement_date: Any) -> None:
    # Given seconds instead of milliseconds, or text that is no date
    data = with_fields(
        "contact.upsert",
        consentDetails=[{"consentName": "gdpr", "consentAccept": True, "agreementDate": agreement_date}],
    )

    # When
    error = rejected("contact.upsert", data)

    # Then
    assert "milliseconds" in problem_for(error, "data.consentDetails[0].agreementDate")
    assert_hidden(error)


def test_contact_upsert_name_too_long_rejected_without_echoing_name() -> None:
    # Given a distinctive personal name over the 255-character text limit
    name = leaky(256)

    # When
    error = rejected("contact.upsert", with_fields("contact.upsert", name=name))

    # Then
    assert "255" in problem_for(error, "data.name")
    assert_hidden(error, name)


def test_contact_upsert_data_not_an_object_rejected_naming_data() -> None:
    # Given / When
    error = rejected("contact.upsert", [EMAIL])

    # Then
    assert "object" in problem_for(error, "data")
    assert_hidden(error, EMAIL)


# --- unknown fields ---


@pytest.mark.parametrize("action", EMAIL_ACTIONS)
def test_unknown_field_rejected_as_unmapped_naming_field(action: str) -> None:
    # Given a field that neither the contract nor a field map takes
    data = with_fields(action, loyalty_tier=f"gold-{MARKER}")

    # When
    error = rejected(action, data, UnmappedFieldError)

    # Then
    assert error.error_type == "unmapped_field"
    assert "unknown field" in problem_for(error, "data.loyalty_tier")
    assert_hidden(error, EMAIL)


def test_unknown_fields_all_named_in_one_error() -> None:
    # Given two unknown fields
    data = with_fields("contact.upsert", loyalty_tier="gold", shoe_size=42)

    # When
    error = rejected("contact.upsert", data, UnmappedFieldError)

    # Then
    assert {d.field for d in error.details} == {"data.loyalty_tier", "data.shoe_size"}


def test_contact_upsert_field_map_routes_field_into_properties() -> None:
    # Given the sample group's route loyalty_tier → properties.loyalty
    data = with_fields("contact.upsert", loyalty_tier="gold")

    # When
    command = to_command("contact.upsert", data, field_map={"loyalty_tier": "properties.loyalty"})

    # Then
    assert command.normalized()["data"]["properties"] == {"loyalty": "gold"}


@pytest.mark.parametrize("routed_first", [True, False], ids=["routed-first", "properties-first"])
def test_contact_upsert_field_map_routed_property_merged_with_producer_properties(routed_first: bool) -> None:
    # Given producer properties and a routed field, in either order
    pairs = [("loyalty_tier", "gold"), ("properties", {"source": "web"})]
    data = {"email": EMAIL, **dict(pairs if routed_first else pairs[::-1])}

    # When
    command = to_command("contact.upsert", data, field_map={"loyalty_tier": "properties.loyalty"})

    # Then both reach SALESmanago: nothing is dropped silently
    assert command.normalized()["data"]["properties"] == {"source": "web", "loyalty": "gold"}


@pytest.mark.parametrize("routed_first", [True, False], ids=["routed-first", "properties-first"])
def test_contact_upsert_field_map_producer_property_wins_over_routed(routed_first: bool) -> None:
    # Given the producer sets properties.loyalty itself and also sends the routed field
    pairs = [("loyalty_tier", "gold"), ("properties", {"loyalty": "silver"})]
    data = {"email": EMAIL, **dict(pairs if routed_first else pairs[::-1])}

    # When
    command = to_command("contact.upsert", data, field_map={"loyalty_tier": "properties.loyalty"})

    # Then
    assert command.normalized()["data"]["properties"] == {"loyalty": "silver"}


def test_contact_upsert_field_map_leaves_producer_data_unchanged() -> None:
    # Given a body whose properties would receive a routed value
    data = {"email": EMAIL, "properties": {"segment": "vip"}, "loyalty_tier": "gold"}
    envelope = CommandEnvelope.parse(body("contact.upsert", data))

    # When
    command = envelope.to_command(field_map={"loyalty_tier": "properties.loyalty"})

    # Then the command has both, and the producer's payload (what a dead letter carries) is not mutated
    assert command.normalized()["data"]["properties"] == {"segment": "vip", "loyalty": "gold"}
    assert data["properties"] == {"segment": "vip"}


@pytest.mark.parametrize("properties", [["vip"], 5], ids=["list", "number"])
def test_contact_upsert_field_map_with_bad_properties_rejected_naming_properties(properties: Any) -> None:
    # Given a routed property and properties that are not a map
    data = {"email": EMAIL, "loyalty_tier": "gold", "properties": properties}

    # When
    error = rejected("contact.upsert", data, field_map={"loyalty_tier": "properties.loyalty"})

    # Then a validation error, not a crash
    assert problem_for(error, "data.properties")


def test_event_create_field_map_routes_field_into_detail() -> None:
    # Given the sample group's route order_channel → detail5
    data = with_fields("event.create", order_channel="web")

    # When
    command = to_command("event.create", data, field_map={"order_channel": "detail5"})

    # Then
    assert command.data.detail5 == "web"


@pytest.mark.parametrize("routed_first", [True, False], ids=["routed-first", "detail-first"])
def test_event_create_field_map_producer_detail_wins_over_routed(routed_first: bool) -> None:
    # Given the producer sets detail5 and also sends the routed field
    pairs = [("order_channel", "web"), ("detail5", "app")]
    data = {**base_data("event.create"), **dict(pairs if routed_first else pairs[::-1])}

    # When
    command = to_command("event.create", data, field_map={"order_channel": "detail5"})

    # Then
    assert command.data.detail5 == "app"


# --- contact.delete ---


def test_contact_delete_permanently_defaults_to_false() -> None:
    # Given / When
    command = to_command("contact.delete", {"email": EMAIL})

    # Then
    assert command.data.permanently is False
    assert command.normalized()["data"]["permanently"] is False


def test_contact_delete_permanently_true_kept() -> None:
    # Given / When
    command = to_command("contact.delete", {"email": EMAIL, "permanently": True})

    # Then
    assert command.data.permanently is True


def test_contact_delete_permanently_not_boolean_rejected() -> None:
    # Given / When
    error = rejected("contact.delete", {"email": EMAIL, "permanently": MARKER})

    # Then
    assert "boolean" in problem_for(error, "data.permanently").lower()
    assert_hidden(error, EMAIL)
