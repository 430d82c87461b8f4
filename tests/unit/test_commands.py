"""The public contract (commands.py): every validation rule of issue 2 §1, the field map, the envelope
and the normalized command a dead letter carries.

Each rejection is checked for the exact field path, a problem text that says what is wrong, and the
absence of the input value from every rendering of the error (payloads carry personal data).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from salesmanago_bridge.commands import (
    EVENT_TYPES,
    LEGACY_EVENT_TYPES,
    Action,
    Command,
    CommandEnvelope,
)
from salesmanago_bridge.errors import (
    BridgeError,
    UnmappedFieldError,
    ValidationFailedError,
)
from tests.conftest import PRODUCT_BASE

GROUP = "shop-1"
# Every value a test expects to stay out of error texts carries this marker (lower case, so it survives
# e-mail normalization); a rendering of an error that contains it has leaked the input.
MARKER = "qx7leak"
EMAIL = f"zofia.{MARKER}.kowalska@example.com"
MAY_1_2024_10_00_UTC_MS = 1_714_557_600_000

# salesmanago-api.md §3, written out by hand so the test does not trust the module's own list.
ALL_EVENT_TYPES = (
    "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION",
    "MEETING", "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION", "CANCELLATION", "RETURN", "SURVEY",
    "APP_STATUS", "APP_TYPE_WEB", "APP_TYPE_MANUAL", "APP_TYPE_RETENTION", "APP_TYPE_UPSALE",
    "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN", "REPEATED_LOAN",
)  # fmt: skip
OLDER_EVENT_TYPES = (
    "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION",
    "MEETING", "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION",
)  # fmt: skip
EMAIL_ACTIONS = ("contact.upsert", "contact.delete", "event.create")


# --- helpers ---


def leaky(length: int) -> str:
    """A string of exactly ``length`` characters that starts with the marker."""
    return (MARKER + "x" * length)[:length]


def email_of_length(length: int) -> str:
    """A syntactically valid e-mail of exactly ``length`` characters (local part 64, labels ≤ 63)."""
    local = leaky(64)
    last_label = length - len(local) - 1 - len("b" * 63 + "." + "c" * 63 + ".") - len(".com")
    address = f"{local}@{'b' * 63}.{'c' * 63}.{'d' * last_label}.com"
    assert len(address) == length
    return address


def url_of_length(length: int) -> str:
    prefix = f"https://shop.example.com/{MARKER}/"
    return prefix + "p" * (length - len(prefix))


def product(**fields: Any) -> dict[str, Any]:
    return {"id": "sku-1", **PRODUCT_BASE, **fields}


def base_data(action: str) -> Any:
    if action in ("contact.upsert", "contact.delete"):
        return {"email": EMAIL}
    if action == "event.create":
        return {"email": EMAIL, "contactExtEventType": "PURCHASE", "date": MAY_1_2024_10_00_UTC_MS}
    return [product()]


def body(action: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {"action": action, "group_key": GROUP, "data": data, **extra}


def to_command(action: str, data: Any, **kwargs: Any) -> Command:
    return CommandEnvelope.parse(body(action, data)).to_command(**kwargs)


def with_fields(action: str, **fields: Any) -> Any:
    data = base_data(action)
    return {**data, **fields}


def rejected(
    action: str, data: Any, error_type: type[BridgeError] = ValidationFailedError, **kwargs: Any
) -> BridgeError:
    with pytest.raises(error_type) as info:
        to_command(action, data, **kwargs)
    return info.value


def problem_for(error: BridgeError, field: str) -> str:
    """The problem text of the detail naming exactly ``field`` (fails listing what was named instead)."""
    matches = [d.problem for d in error.details if d.field == field]
    assert matches, f"no detail for {field!r}; details name {[d.field for d in error.details]}"
    return matches[0]


def renderings(error: BridgeError) -> list[str]:
    return [str(error), error.describe(), json.dumps(error.as_reason()), repr(error)]


def assert_hidden(error: BridgeError, *values: str) -> None:
    for text in renderings(error):
        assert MARKER not in text.lower()
        for value in values:
            assert value not in text


# --- e-mail ---


@pytest.mark.parametrize("action", EMAIL_ACTIONS)
def test_email_missing_rejected_naming_data_email(action: str) -> None:
    # Given data without an e-mail
    data = with_fields(action)
    del data["email"]

    # When / Then
    error = rejected(action, data)
    assert "required" in problem_for(error, "data.email").lower()


@pytest.mark.parametrize("action", EMAIL_ACTIONS)
@pytest.mark.parametrize(
    "bad_email",
    [f"zofia.{MARKER}@@example.com", f"zofia {MARKER}@example.com", f"zofia.{MARKER}", f"{MARKER}@localhost"],
)
def test_email_invalid_rejected_without_echoing_value(action: str, bad_email: str) -> None:
    # Given an address that is not an e-mail
    data = with_fields(action, email=bad_email)

    # When
    error = rejected(action, data)

    # Then the field and the reason are named, the address is not
    assert "email" in problem_for(error, "data.email").lower()
    assert_hidden(error, bad_email)


@pytest.mark.parametrize("action", EMAIL_ACTIONS)
def test_email_over_254_characters_rejected_naming_limit(action: str) -> None:
    # Given a well-formed address of 255 characters
    address = email_of_length(255)

    # When
    error = rejected(action, with_fields(action, email=address))

    # Then
    assert "254" in problem_for(error, "data.email")
    assert_hidden(error, address)


@pytest.mark.parametrize("action", EMAIL_ACTIONS)
def test_email_of_254_characters_accepted(action: str) -> None:
    # Given an address exactly at the limit
    address = email_of_length(254)

    # When
    command = to_command(action, with_fields(action, email=address))

    # Then
    assert command.email == address.lower()


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
