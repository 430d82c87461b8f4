"""Mapping (mapping.py): each of our payload fields lands in the SALESmanago field salesmanago-api.md names.

The expected bodies are written by hand from salesmanago-api.md §2-§4, not derived from the module.
"""

from __future__ import annotations

from typing import Any

import pytest

from salesmanago_bridge.commands import ContactDeleteData, ContactUpsertData, EventCreateData, ProductData
from salesmanago_bridge.mapping import (
    contact_delete_body,
    contact_upsert_item,
    contact_view,
    event_item,
    product_item,
)
from tests.conftest import PRODUCT_BASE

EMAIL = "zofia@example.com"
MAY_1_2024_10_00_UTC_MS = 1_714_557_600_000


def product(**fields: Any) -> ProductData:
    return ProductData.model_validate({"id": "sku-1", **PRODUCT_BASE, **fields})


# --- contacts ---


def test_contact_upsert_item_every_field_in_its_salesmanago_place() -> None:
    # Given a contact with every field of the contract
    data = ContactUpsertData.model_validate(
        {
            "email": EMAIL,
            "name": "Zofia Kowalska",
            "phone": "+48 600 000 000",
            "fax": "+48 22 000 00 00",
            "company": "Acme",
            "externalId": "crm-1",
            "state": "CUSTOMER",
            "streetAddress": "Długa 1",
            "zipCode": "00-001",
            "city": "Warszawa",
            "country": "PL",
            "newEmail": "zofia.new@example.com",
            "tags": ["vip"],
            "removeTags": ["lead"],
            "properties": {"loyalty": "gold", "points": 12},
            "birthday": "1990-05-17",
            "province": "mazowieckie",
            "lang": "pl",
            "forceOptIn": True,
            "forceOptOut": False,
            "forcePhoneOptIn": False,
            "forcePhoneOptOut": True,
            "consentDetails": [
                {
                    "consentName": "gdpr",
                    "consentAccept": True,
                    "agreementDate": "2024-05-01T10:00:00Z",
                    "ip": "192.0.2.1",
                    "optOut": False,
                }
            ],
        }
    )

    # When
    item = contact_upsert_item(data)

    # Then (salesmanago-api.md §2: contact object, address inside it, the rest at the top level)
    assert item == {
        "contact": {
            "email": EMAIL,
            "name": "Zofia Kowalska",
            "phone": "+48 600 000 000",
            "fax": "+48 22 000 00 00",
            "company": "Acme",
            "externalId": "crm-1",
            "state": "CUSTOMER",
            "address": {"streetAddress": "Długa 1", "zipCode": "00-001", "city": "Warszawa", "country": "PL"},
        },
        "newEmail": "zofia.new@example.com",
        "tags": ["vip"],
        "removeTags": ["lead"],
        "properties": {"loyalty": "gold", "points": "12"},
        "birthday": "19900517",
        "province": "mazowieckie",
        "lang": "pl",
        "forceOptIn": True,
        "forceOptOut": False,
        "forcePhoneOptIn": False,
        "forcePhoneOptOut": True,
        "consentDetails": [
            {
                "consentName": "gdpr",
                "consentAccept": True,
                "agreementDate": MAY_1_2024_10_00_UTC_MS,
                "ip": "192.0.2.1",
                "optOut": False,
            }
        ],
    }


def test_contact_upsert_item_none_and_empty_values_dropped() -> None:
    # Given a contact with empty text, an empty list, an empty map and no address
    data = ContactUpsertData.model_validate(
        {"email": EMAIL, "name": "", "phone": None, "tags": [], "properties": {}, "city": "  "}
    )

    # When
    item = contact_upsert_item(data)

    # Then only the e-mail is sent: no empty address, no empty keys
    assert item == {"contact": {"email": EMAIL}}


def test_contact_upsert_item_partial_address_kept_inside_contact() -> None:
    # Given
    data = ContactUpsertData.model_validate({"email": EMAIL, "city": "Kraków"})

    # When
    item = contact_upsert_item(data)

    # Then
    assert item == {"contact": {"email": EMAIL, "address": {"city": "Kraków"}}}


def test_contact_upsert_item_false_flags_kept() -> None:
    # Given booleans that are false (not empty)
    data = ContactUpsertData.model_validate({"email": EMAIL, "forceOptIn": False, "forcePhoneOptOut": False})

    # When
    item = contact_upsert_item(data)

    # Then
    assert item["forceOptIn"] is False
    assert item["forcePhoneOptOut"] is False


def test_contact_upsert_item_address_fields_never_at_top_level() -> None:
    # Given
    data = ContactUpsertData.model_validate(
        {"email": EMAIL, "streetAddress": "S 1", "zipCode": "Z", "country": "PL"}
    )

    # When
    item = contact_upsert_item(data)

    # Then
    assert set(item) == {"contact"}
    assert set(item["contact"]) == {"email", "address"}


@pytest.mark.parametrize("permanently", [False, True])
def test_contact_delete_body_email_and_permanently(permanently: bool) -> None:
    # Given
    data = ContactDeleteData.model_validate({"email": EMAIL, "permanently": permanently})

    # When
    body = contact_delete_body(data)

    # Then
    assert body == {"email": EMAIL, "permanently": permanently}


def test_contact_delete_body_default_is_soft_delete() -> None:
    # Given / When
    body = contact_delete_body(ContactDeleteData.model_validate({"email": EMAIL}))

    # Then
    assert body == {"email": EMAIL, "permanently": False}


# --- events ---


def test_event_item_every_field_in_contact_event() -> None:
    # Given an event with every field of the contract
    fields: dict[str, Any] = {
        "email": EMAIL,
        "contactExtEventType": "PURCHASE",
        "date": "2024-05-01T12:00:00+02:00",
        "description": "order 1234",
        "products": ["sku-1", "sku-2"],
        "location": "demo_shop",
        "value": "199.90",
        "externalId": "order-1234",
        "shopDomain": "shop.example.com",
        **{f"detail{n}": f"d{n}" for n in range(1, 21)},
    }
    data = EventCreateData.model_validate(fields)

    # When
    item = event_item(data)

    # Then (salesmanago-api.md §3: {"email", "contactEvent": {...}}, date in ms, products a comma string)
    assert item == {
        "email": EMAIL,
        "contactEvent": {
            "contactExtEventType": "PURCHASE",
            "date": MAY_1_2024_10_00_UTC_MS,
            "description": "order 1234",
            "products": "sku-1,sku-2",
            "location": "demo_shop",
            "value": 199.9,
            "externalId": "order-1234",
            "shopDomain": "shop.example.com",
            **{f"detail{n}": f"d{n}" for n in range(1, 21)},
        },
    }


def test_event_item_value_sent_as_number_and_date_as_integer() -> None:
    # Given
    data = EventCreateData.model_validate(
        {"email": EMAIL, "contactExtEventType": "CART", "date": MAY_1_2024_10_00_UTC_MS, "value": "12.50"}
    )

    # When
    event = event_item(data)["contactEvent"]

    # Then
    assert isinstance(event["value"], float) and event["value"] == 12.5
    assert isinstance(event["date"], int) and event["date"] == MAY_1_2024_10_00_UTC_MS


def test_event_item_minimal_event_has_no_empty_fields() -> None:
    # Given
    data = EventCreateData.model_validate(
        {"email": EMAIL, "contactExtEventType": "VISIT", "date": MAY_1_2024_10_00_UTC_MS, "description": ""}
    )

    # When
    item = event_item(data)

    # Then
    assert item == {
        "email": EMAIL,
        "contactEvent": {"contactExtEventType": "VISIT", "date": MAY_1_2024_10_00_UTC_MS},
    }


def test_event_item_zero_value_kept() -> None:
    # Given a free order
    data = EventCreateData.model_validate(
        {"email": EMAIL, "contactExtEventType": "PURCHASE", "date": MAY_1_2024_10_00_UTC_MS, "value": 0}
    )

    # When
    item = event_item(data)

    # Then
    assert item["contactEvent"]["value"] == 0


# --- products ---


def test_product_item_every_field_in_its_v3_place() -> None:
    # Given a product with every field of the contract
    data = product(
        sub_category="Shoes",
        sex=1,
        price=199.99,
        special_price="149.5",
        detail1="d1",
        detail2="d2",
        detail3="d3",
        detail4="d4",
        detail5="d5",
        image2_url="https://s.example.com/i2",
        stock_available=3,
        color="red",
        season="summer",
        active=True,
    )

    # When
    item = product_item(data)

    # Then (salesmanago-api.md §4 table)
    assert item == {
        "productId": "sku-1",
        "name": "N",
        "description": "D",
        "mainCategory": "C",
        "categories": ["Shoes"],
        "productUrl": "https://s.example.com/p",
        "mainImageUrl": "https://s.example.com/i",
        "imageUrls": ["https://s.example.com/i2"],
        "price": 199.99,
        "discountPrice": 149.5,
        "quantity": 3,
        "available": True,
        "active": True,
        "customDetails": {
            "detail1": "d1",
            "detail2": "d2",
            "detail3": "d3",
            "detail4": "d4",
            "detail5": "d5",
        },
        "systemDetails": {"brand": "B", "gender": 1, "color": "red", "season": "summer"},
        "setAsNull": [],
    }


def test_product_item_required_fields_only() -> None:
    # Given
    data = product()

    # When
    item = product_item(data)

    # Then no empty lists, maps or nulls, and brand still in systemDetails
    assert item == {
        "productId": "sku-1",
        "name": "N",
        "description": "D",
        "mainCategory": "C",
        "productUrl": "https://s.example.com/p",
        "mainImageUrl": "https://s.example.com/i",
        "systemDetails": {"brand": "B"},
        "setAsNull": ["discountPrice", "detail1", "detail2", "detail3", "detail4", "detail5"],
    }


# setAsNull as SALESmanago's own library sends it on every product (ProductEntity::jsonSerialize,
# api-sso-util 3.8): an upsert keeps every field it omits, so an ended promotion must be cleared.
@pytest.mark.parametrize(
    ("fields", "cleared"),
    [
        ({}, ["discountPrice", "detail1", "detail2", "detail3", "detail4", "detail5"]),
        ({"special_price": 9.99, "detail2": "x"}, ["detail1", "detail3", "detail4", "detail5"]),
        ({"special_price": 9.99, **{f"detail{n}": "x" for n in range(1, 6)}}, []),
    ],
    ids=["nothing-set", "some-set", "all-set"],
)
def test_product_item_set_as_null_names_what_the_official_library_clears(
    fields: dict[str, Any], cleared: list[str]
) -> None:
    # Given / When
    item = product_item(product(**fields))

    # Then
    assert item["setAsNull"] == cleared


def test_product_item_set_as_null_never_names_a_field_it_sends() -> None:
    # Given
    item = product_item(product(special_price=1, detail1="a", detail4="b"))

    # When
    sent = {*item, *item.get("customDetails", {})}

    # Then
    assert not sent & set(item["setAsNull"])


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("brand", lambda item: item["systemDetails"]["brand"]),
        ("sub_category", lambda item: item["categories"][0]),
        ("detail3", lambda item: item["customDetails"]["detail3"]),
    ],
)
def test_product_item_values_over_salesmanago_limit_trimmed_to_255(field: str, where: Any) -> None:
    # Given a value our contract accepts (<= 512) but SALESmanago keeps only 255 of
    value = "x" * 254 + "yz" + "w" * 200

    # When
    item = product_item(product(**{field: value}))

    # Then it is cut where SALESmanago's library cuts it
    assert where(item) == value[:255]


@pytest.mark.parametrize(("stock", "available"), [(0, False), (1, True), (250, True)])
def test_product_item_available_derived_from_stock(stock: int, available: bool) -> None:
    # Given / When
    item = product_item(product(stock_available=stock))

    # Then
    assert item["quantity"] == stock
    assert item["available"] is available


@pytest.mark.parametrize(("stock", "available"), [(5, False), (0, True), (None, False), (None, True)])
def test_product_item_given_available_wins_over_stock(stock: int | None, available: bool) -> None:
    # Given
    fields: dict[str, Any] = {"available": available}
    if stock is not None:
        fields["stock_available"] = stock

    # When
    item = product_item(product(**fields))

    # Then
    assert item["available"] is available


def test_product_item_leaving_the_store_sends_false_flags() -> None:
    # Given a product withdrawn (SALESmanago has no product delete)
    data = product(active=False, available=False)

    # When
    item = product_item(data)

    # Then
    assert item["active"] is False
    assert item["available"] is False


def test_product_item_prices_sent_as_numbers() -> None:
    # Given
    data = product(price="10", special_price=0)

    # When
    item = product_item(data)

    # Then
    assert isinstance(item["price"], float) and item["price"] == 10.0
    assert isinstance(item["discountPrice"], float) and item["discountPrice"] == 0.0


@pytest.mark.parametrize("sex", [-1, 0, 1, 2, 4])
def test_product_item_sex_sent_as_gender_even_when_zero(sex: int) -> None:
    # Given / When
    item = product_item(product(sex=sex))

    # Then
    assert item["systemDetails"]["gender"] == sex


# --- reads ---


def test_contact_view_from_basic_reply() -> None:
    # Given an item of a contact/basic reply (salesmanago-api.md §2, key contactId)
    raw = {
        "contactId": "2c4a5b8e-0000-4000-8000-000000000001",
        "name": "Zofia Kowalska",
        "email": EMAIL,
        "phone": "+48 600 000 000",
        "fax": None,
        "score": 40,
        "state": "CUSTOMER",
        "company": "Acme",
        "externalId": "crm-1",
        "optedOut": False,
        "optedOutPhone": True,
        "deleted": False,
        "invalid": False,
        "birthdayYear": 1990,
        "birthdayMonth": 5,
        "birthdayDay": 7,
        "address": {"streetAddress": "Długa 1", "zipCode": "00-001", "city": "Warszawa", "country": "PL"},
        "createdOn": MAY_1_2024_10_00_UTC_MS,
        "modifiedOn": MAY_1_2024_10_00_UTC_MS + 1000,
        "lastVisit": None,
    }

    # When
    view = contact_view(raw)

    # Then
    assert view.model_dump() == {
        "sm_id": "2c4a5b8e-0000-4000-8000-000000000001",
        "email": EMAIL,
        "name": "Zofia Kowalska",
        "phone": "+48 600 000 000",
        "fax": None,
        "company": "Acme",
        "externalId": "crm-1",
        "state": "CUSTOMER",
        "streetAddress": "Długa 1",
        "zipCode": "00-001",
        "city": "Warszawa",
        "country": "PL",
        "birthday": "1990-05-07",
        "tags": [],
        "properties": {},
        "optedOut": False,
        "optedOutPhone": True,
        "score": 40,
        "createdOn": MAY_1_2024_10_00_UTC_MS,
        "modifiedOn": MAY_1_2024_10_00_UTC_MS + 1000,
    }


def test_contact_view_from_list_reply() -> None:
    # Given an item of a contact/list reply (key id, properties as {name, value}, tags as {tag})
    raw = {
        "id": "2c4a5b8e-0000-4000-8000-000000000002",
        "email": EMAIL,
        "name": "Zofia",
        "properties": [{"name": "loyalty", "value": "gold"}, {"name": "points", "value": "12"}],
        "tags": [{"tag": "vip", "score": 1, "createdOn": MAY_1_2024_10_00_UTC_MS}, {"tag": "newsletter"}],
        "address": {"city": "Kraków"},
    }

    # When
    view = contact_view(raw)

    # Then
    assert view.sm_id == "2c4a5b8e-0000-4000-8000-000000000002"
    assert view.properties == {"loyalty": "gold", "points": "12"}
    assert view.tags == ["vip", "newsletter"]
    assert view.city == "Kraków"
    assert view.streetAddress is None
    assert view.birthday is None


def test_contact_view_tags_from_contact_tags_of_a_real_list_reply() -> None:
    # Given an item shaped as a real contact/list reply (a public client's fixture,
    # VFiber/salesmanago-api DetailedContactTest.php): tags under contactTags, no tags key
    raw = {
        "id": "2c4a5b8e-0000-4000-8000-000000000003",
        "email": EMAIL,
        "address": None,
        "contactTags": [
            {
                "tag": "SPRING",
                "tagName": "SPRING",
                "score": 1,
                "createdOn": MAY_1_2024_10_00_UTC_MS,
                "tagWithScore": "SPRING (1)",
            },
            {
                "tag": "NEWSLETTER",
                "tagName": "NEWSLETTER",
                "score": 2,
                "createdOn": MAY_1_2024_10_00_UTC_MS - 1,
                "tagWithScore": "NEWSLETTER (2)",
            },
        ],
        "properties": [],
        "contactExtEvents": [],
    }

    # When
    view = contact_view(raw)

    # Then the tag names, in SALESmanago's order
    assert view.tags == ["SPRING", "NEWSLETTER"]


def test_contact_view_contact_id_preferred_over_id() -> None:
    # Given a reply carrying both keys
    raw = {"contactId": "from-contact-id", "id": "from-id", "email": EMAIL}

    # When / Then
    assert contact_view(raw).sm_id == "from-contact-id"


@pytest.mark.parametrize(
    "parts",
    [{"birthdayYear": 1990, "birthdayMonth": 5}, {"birthdayMonth": 5, "birthdayDay": 7}, {}],
    ids=["no-day", "no-year", "none"],
)
def test_contact_view_incomplete_birthday_is_none(parts: dict[str, int]) -> None:
    # Given / When
    view = contact_view({"contactId": "c1", "email": EMAIL, **parts})

    # Then
    assert view.birthday is None


def test_contact_view_birthday_parts_as_text_padded() -> None:
    # Given parts as strings, as some replies carry them
    raw = {
        "contactId": "c1",
        "email": EMAIL,
        "birthdayYear": "1990",
        "birthdayMonth": "1",
        "birthdayDay": "2",
    }

    # When / Then
    assert contact_view(raw).birthday == "1990-01-02"


def test_contact_view_without_address_has_no_address_fields() -> None:
    # Given / When
    view = contact_view({"contactId": "c1", "email": EMAIL, "address": None})

    # Then
    assert (view.streetAddress, view.zipCode, view.city, view.country) == (None, None, None, None)
