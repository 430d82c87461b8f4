"""The wire format of every operation, pinned against the sandbox's request log.

Expected bodies are written by hand from salesmanago-api.md, never produced by our mapping, so
a mistake in the mapping cannot hide behind the same mistake here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from local.sandbox import Sandbox
from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.commands import CommandEnvelope
from salesmanago_bridge.deadletters import DeadLetterSink
from salesmanago_bridge.dispatch import Dispatcher
from salesmanago_bridge.groups import FileGroupStore
from salesmanago_bridge.settings import Settings
from tests.conftest import PRODUCT_BASE

AUTH_FIELDS = {"clientId", "apiKey", "requestTime", "sha", "owner"}


@pytest.fixture
def dispatcher(groups_file: Path) -> Dispatcher:
    settings = Settings.model_validate({"SALESMANAGO_GROUPS_FILE": str(groups_file)})
    return Dispatcher(
        settings, FileGroupStore(groups_file), SalesmanagoClient(settings), DeadLetterSink(None)
    )


def run(dispatcher: Dispatcher, envelope: dict[str, Any]) -> dict[str, Any]:
    parsed = CommandEnvelope.parse(envelope)
    group = dispatcher.groups.get(parsed.group_key)
    command = parsed.to_command(
        field_map=group.routes_for(parsed.action),  # type: ignore[arg-type]
        sent_at_ms=1_764_095_400_000,
        default_location=group.location,
    )
    return dispatcher.run(command)


def without_auth(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in AUTH_FIELDS}


def assert_v2_auth(body: dict[str, Any]) -> None:
    assert body["clientId"] == "demo-client-1"
    assert body["owner"] == "owner@demo-shop.example.com"
    assert isinstance(body["requestTime"], int) and body["requestTime"] > 10**12  # milliseconds
    expected = hashlib.sha1(
        f"{body['apiKey']}demo-client-1demo-secret-do-not-use-1".encode(), usedforsecurity=False
    ).hexdigest()
    assert body["sha"] == expected


def test_wire_contact_upsert_every_field(sandbox: Sandbox, dispatcher: Dispatcher):
    # Given a contact with every field of the contract, and a field routed by the group's map
    envelope = {
        "action": "contact.upsert",
        "group_key": "demo-shop",
        "data": {
            "email": "wire.contact@customer.example.com",
            "name": "Wire Contact",
            "phone": "+48 600 000 001",
            "fax": "+48 22 000 002",
            "company": "Wire Ltd",
            "streetAddress": "Prosta 1",
            "zipCode": "00-001",
            "city": "Warszawa",
            "country": "PL",
            "newEmail": "wire.new@customer.example.com",
            "externalId": "ext-1",
            "state": "PROSPECT",
            "tags": ["A", "B"],
            "removeTags": ["C"],
            "properties": {"segment": "gold", "visits": 3},
            "birthday": "1990-02-03",
            "province": "Mazowieckie",
            "lang": "pl",
            "forceOptIn": True,
            "forcePhoneOptOut": True,
            "consentDetails": [
                {
                    "consentName": "email",
                    "consentAccept": True,
                    "agreementDate": 1764000000000,
                    "ip": "203.0.113.1",
                }
            ],
            "loyalty_tier": "platinum",
        },
    }
    # When
    result = run(dispatcher, envelope)
    # Then the body is exactly salesmanago-api.md §2's upsert shape
    request = sandbox.requests_to("contact/upsert")[-1]
    assert request.method == "POST"
    assert request.path == "/api/contact/upsert"
    assert request.headers.get("Content-Type", request.headers.get("content-type")) == "application/json"
    assert_v2_auth(request.body)
    assert without_auth(request.body) == {
        "contact": {
            "email": "wire.contact@customer.example.com",
            "name": "Wire Contact",
            "phone": "+48 600 000 001",
            "fax": "+48 22 000 002",
            "company": "Wire Ltd",
            "externalId": "ext-1",
            "state": "PROSPECT",
            "address": {
                "streetAddress": "Prosta 1",
                "zipCode": "00-001",
                "city": "Warszawa",
                "country": "PL",
            },
        },
        "newEmail": "wire.new@customer.example.com",
        "tags": ["A", "B"],
        "removeTags": ["C"],
        "properties": {"segment": "gold", "visits": "3", "loyalty": "platinum"},
        "birthday": "19900203",
        "province": "Mazowieckie",
        "lang": "pl",
        "forceOptIn": True,
        "forcePhoneOptOut": True,
        "consentDetails": [
            {
                "consentName": "email",
                "consentAccept": True,
                "agreementDate": 1764000000000,
                "ip": "203.0.113.1",
            }
        ],
    }
    assert result["contactId"]
    assert sandbox.contact("wire.new@customer.example.com") is not None


def test_wire_contact_upsert_drops_empty_values(sandbox: Sandbox, dispatcher: Dispatcher):
    run(
        dispatcher,
        {
            "action": "contact.upsert",
            "group_key": "demo-shop",
            "data": {"email": "e@customer.example.com", "name": "", "tags": []},
        },
    )
    assert without_auth(sandbox.requests[-1].body) == {"contact": {"email": "e@customer.example.com"}}


def test_wire_contact_delete(sandbox: Sandbox, dispatcher: Dispatcher):
    # Given a stored contact
    run(
        dispatcher,
        {
            "action": "contact.upsert",
            "group_key": "demo-shop",
            "data": {"email": "gone@customer.example.com"},
        },
    )
    # When it is deleted permanently
    result = run(
        dispatcher,
        {
            "action": "contact.delete",
            "group_key": "demo-shop",
            "data": {"email": "gone@customer.example.com", "permanently": True},
        },
    )
    # Then
    request = sandbox.requests[-1]
    assert request.path == "/api/contact/delete"
    assert_v2_auth(request.body)
    assert without_auth(request.body) == {"email": "gone@customer.example.com", "permanently": True}
    assert result == {"deleted": True}
    assert sandbox.contact("gone@customer.example.com") is None


def test_wire_event_create_every_field(sandbox: Sandbox, dispatcher: Dispatcher):
    details = {f"detail{n}": f"d{n}" for n in range(1, 21)}
    envelope = {
        "action": "event.create",
        "group_key": "demo-shop",
        "data": {
            "email": "wire.event@customer.example.com",
            "contactExtEventType": "PURCHASE",
            "description": "Order 1",
            "products": ["SKU-1", "SKU-2"],
            "location": "other_shop",
            "value": 123.45,
            "externalId": "order-1",
            "shopDomain": "shop.example.com",
            "date": "2026-11-25T10:00:00Z",
            **details,
        },
    }
    result = run(dispatcher, envelope)
    request = sandbox.requests[-1]
    assert request.path == "/api/v2/contact/addContactExtEvent"
    assert_v2_auth(request.body)
    assert without_auth(request.body) == {
        "email": "wire.event@customer.example.com",
        "contactEvent": {
            "contactExtEventType": "PURCHASE",
            "date": 1795600800000,
            "description": "Order 1",
            "products": "SKU-1,SKU-2",
            "location": "other_shop",
            "value": 123.45,
            "externalId": "order-1",
            "shopDomain": "shop.example.com",
            **details,
        },
    }
    assert result["eventId"]
    assert len(sandbox.events(email="wire.event@customer.example.com")) == 1
    # sent anyway, and said why it will not link to the group's catalog (demo_shop)
    assert [w.split(":")[0] for w in result["warnings"]] == ["location_mismatch"]


def test_wire_event_date_defaults_to_sent_time_and_location_to_group(
    sandbox: Sandbox, dispatcher: Dispatcher
):
    run(
        dispatcher,
        {
            "action": "event.create",
            "group_key": "demo-shop",
            "data": {"email": "d@customer.example.com", "contactExtEventType": "CART", "value": 1},
        },
    )
    event = sandbox.requests[-1].body["contactEvent"]
    assert event["date"] == 1_764_095_400_000
    assert event["location"] == "demo_shop"


def test_wire_products_upsert_every_field(sandbox: Sandbox, dispatcher: Dispatcher):
    envelope = {
        "action": "products.upsert",
        "group_key": "demo-shop",
        "data": [
            {
                "id": "SKU-9",
                "name": "Coat",
                "description": "Warm coat",
                "category": "Coats",
                "sub_category": "Winter",
                "brand": "Nordlys",
                "sex": 4,
                "price": 399.99,
                "special_price": 299,
                **{f"detail{n}": f"p{n}" for n in (1, 2, 3, 5)},
                "url": "https://shop.example.com/p/9",
                "image_url": "https://cdn.shop.example.com/9.jpg",
                "image2_url": "https://cdn.shop.example.com/9b.jpg",
                "stock_available": 3,
                "color": "navy",
                "season": "winter",
                "active": True,
                "ean": "5901234123457",
                "warehouse_bin": "B-1",
            }
        ],
    }
    result = run(dispatcher, envelope)
    request = sandbox.requests[-1]
    assert request.method == "POST"
    assert request.path == "/v3/product/upsert"
    assert request.headers.get("API-KEY") == "***"
    assert "sha" not in request.body  # v3 authenticates by header only
    assert request.body == {
        "catalogId": "5b2f8f8e-7c1e-4d3a-9a51-0c7d8e1f2a31",
        "products": [
            {
                "productId": "SKU-9",
                "name": "Coat",
                "description": "Warm coat",
                "mainCategory": "Coats",
                "categories": ["Winter"],
                "productUrl": "https://shop.example.com/p/9",
                "mainImageUrl": "https://cdn.shop.example.com/9.jpg",
                "imageUrls": ["https://cdn.shop.example.com/9b.jpg"],
                "price": 399.99,
                "discountPrice": 299.0,
                "quantity": 3,
                "available": True,
                "active": True,
                "customDetails": {
                    "detail1": "p1",
                    "detail2": "p2",
                    "detail3": "p3",
                    "detail4": "5901234123457",
                    "detail5": "p5",
                },
                "systemDetails": {"brand": "Nordlys", "gender": 4, "color": "navy", "season": "winter"},
                "setAsNull": [],
            }
        ],
    }
    assert result["productIds"] == ["SKU-9"]
    assert result["ignored_fields"] == ["data[0].warehouse_bin"]


def test_wire_products_out_of_stock_and_withdrawn(sandbox: Sandbox, dispatcher: Dispatcher):
    run(
        dispatcher,
        {
            "action": "products.upsert",
            "group_key": "demo-shop",
            "data": [
                {"id": "OUT", **PRODUCT_BASE, "stock_available": 0},
                {"id": "GONE", **PRODUCT_BASE, "active": False, "available": False},
            ],
        },
    )
    sent = {p["productId"]: p for p in sandbox.requests[-1].body["products"]}
    assert sent["OUT"]["quantity"] == 0 and sent["OUT"]["available"] is False
    assert sent["GONE"]["active"] is False and sent["GONE"]["available"] is False


def test_wire_products_over_100_split_into_requests(sandbox: Sandbox, dispatcher: Dispatcher):
    result = run(
        dispatcher,
        {
            "action": "products.upsert",
            "group_key": "demo-shop",
            "data": [{"id": f"P{i}", **PRODUCT_BASE} for i in range(230)],
        },
    )
    sizes = [len(r.body["products"]) for r in sandbox.requests_to("product/upsert")]
    assert sorted(sizes) == [30, 100, 100]  # the chunks go out in parallel
    assert len(result["productIds"]) == 230
    assert len(sandbox.products()) == 230


def test_wire_event_location_mismatch_counted_in_its_metric(
    sandbox: Sandbox, dispatcher: Dispatcher, capsys: pytest.CaptureFixture[str]
):
    # Given an event whose location no catalog can have
    envelope = {
        "action": "event.create",
        "group_key": "demo-shop",
        "data": {"email": "m@customer.example.com", "contactExtEventType": "VISIT", "location": "shop-1.pl"},
    }
    # When
    result = run(dispatcher, envelope)
    # Then it was sent as given, and counted in LocationMismatches (EMF, dimension action)
    assert sandbox.requests[-1].body["contactEvent"]["location"] == "shop-1.pl"
    assert result["warnings"][0].startswith("location_mismatch:")
    emf = [line for line in capsys.readouterr().out.splitlines() if '"LocationMismatches"' in line]
    assert len(emf) == 1 and '"action":"event.create"' in emf[0] and '"LocationMismatches":[1.0]' in emf[0]
