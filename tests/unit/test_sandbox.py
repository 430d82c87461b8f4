"""The sandbox (local/sandbox/) must be as strict as SALESmanago and misbehave exactly when told to.

These tests talk to it over real HTTP with `requests` and compute signatures with hashlib, so they check
the sandbox against the contract (salesmanago-api.md) rather than against the bridge's own client.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.sandbox import DEMO_ACCOUNT, Account, Fault, Sandbox

CLIENT_ID = "demo-client"
API_SECRET = "s3cret"
OWNER = "owner@shop.example"
PRODUCTS_KEY = "pk-123"
CATALOG_ID = "11111111-1111-4111-8111-111111111111"
LOCATION = "shop_pl"
TIMEOUT_S = 2.0


def now_ms() -> int:
    return int(time.time() * 1000)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def auth(**override: Any) -> dict[str, Any]:
    api_key = uuid.uuid4().hex
    body = {
        "clientId": CLIENT_ID,
        "apiKey": api_key,
        "sha": sha1(api_key + CLIENT_ID + API_SECRET),
        "requestTime": now_ms(),
        "owner": OWNER,
    }
    body.update(override)
    return body


def post_v2(sandbox: Sandbox, method: str, body: Any, timeout: float = TIMEOUT_S) -> requests.Response:
    return requests.post(f"{sandbox.url}/api/{method}", json=body, timeout=timeout)


def call(sandbox: Sandbox, method: str, **fields: Any) -> dict[str, Any]:
    return post_v2(sandbox, method, {**auth(), **fields}).json()


def upsert(sandbox: Sandbox, email: str, **fields: Any) -> dict[str, Any]:
    contact = {"email": email, **fields.pop("contact", {})}
    return call(sandbox, "contact/upsert", contact=contact, **fields)


def contact_event(**override: Any) -> dict[str, Any]:
    return {"date": now_ms(), "contactExtEventType": "PURCHASE", "value": 10.5, "products": "p1", **override}


def post_v3(
    sandbox: Sandbox, method: str, body: Any = None, key: str | None = PRODUCTS_KEY
) -> requests.Response:
    headers = {"API-KEY": key} if key is not None else {}
    return requests.post(f"{sandbox.url}/v3/{method}", json=body, headers=headers, timeout=TIMEOUT_S)


def product(product_id: str = "p1", **override: Any) -> dict[str, Any]:
    return {
        "productId": product_id,
        "name": "Mug",
        "price": 19.99,
        "quantity": 3,
        "available": True,
        **override,
    }


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def answered(sandbox: Sandbox) -> bool:
    return all(r.status is not None or r.fault == "drop" for r in sandbox.requests)


@pytest.fixture(scope="module")
def running() -> Iterator[Sandbox]:
    account = Account(
        client_id=CLIENT_ID,
        api_secret=API_SECRET,
        owners=[OWNER],
        products_api_key=PRODUCTS_KEY,
        catalogs={CATALOG_ID: LOCATION},
    )
    other = Account(client_id="other-client", api_secret="other-secret", owners=["boss@other.example"])
    with Sandbox(accounts=[account, other]) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running: Sandbox) -> Sandbox:
    running.reset()
    running.latency_ms = 0
    return running


# ----------------------------------------------------------------------------- authentication


def test_auth_valid_sha_succeeds(sandbox: Sandbox) -> None:
    # When
    reply = upsert(sandbox, "a@x.example")
    # Then
    assert reply["success"] is True
    assert reply["message"] == []
    uuid.UUID(reply["contactId"])


@pytest.mark.parametrize(
    "override",
    [
        {"sha": "0" * 40},
        {"clientId": "nobody"},
        {"apiKey": None},
        {"requestTime": None},
        {"requestTime": "soon"},
    ],
    ids=["wrong-sha", "unknown-client", "no-api-key", "no-request-time", "text-request-time"],
)
def test_auth_bad_credentials_not_authenticated(sandbox: Sandbox, override: dict[str, Any]) -> None:
    # Given
    body = {k: v for k, v in {**auth(), **override}.items() if v is not None}
    # When
    reply = post_v2(sandbox, "contact/upsert", {**body, "contact": {"email": "a@x.example"}})
    # Then
    assert reply.status_code == 200
    assert reply.json() == {"success": False, "message": ["Not authenticated"]}
    assert sandbox.contacts() == []


def test_auth_uppercase_sha_rejected(sandbox: Sandbox) -> None:
    body = auth()
    body["sha"] = body["sha"].upper()
    assert post_v2(sandbox, "contact/basic", {**body, "email": []}).json()["success"] is False


def test_auth_owner_of_another_account_not_found(sandbox: Sandbox) -> None:
    reply = call(sandbox, "contact/upsert", owner="boss@other.example", contact={"email": "a@x.example"})
    assert reply == {"success": False, "message": ["Owner not found"]}


def test_auth_request_time_in_seconds_accepted_and_recorded(sandbox: Sandbox) -> None:
    # When
    reply = post_v2(sandbox, "contact/basic", {**auth(requestTime=int(time.time())), "email": []})
    post_v2(sandbox, "contact/basic", {**auth(), "email": []})
    # Then
    assert reply.json()["success"] is True
    assert [r.request_time_ms for r in sandbox.requests] == [False, True]


# ----------------------------------------------------------------------------- contact upsert


def test_upsert_merge_tags_properties_and_fields(sandbox: Sandbox) -> None:
    # Given
    first = upsert(
        sandbox,
        "Ann@X.example",
        contact={"name": "Ann", "address": {"city": "Gdansk"}},
        tags=["VIP", "NEWS"],
        properties={"size": "M"},
    )
    # When
    second = upsert(
        sandbox,
        "ann@x.example",
        contact={"phone": "+48 500", "state": "CUSTOMER", "address": {"zipCode": "80-001"}},
        tags=["vip", "B2B"],
        removeTags=["news"],
        properties={"color": "red"},
        forceOptOut=True,
    )
    # Then
    assert first["contactId"] == second["contactId"]
    stored = sandbox.contact("ANN@x.example")
    assert stored["name"] == "Ann"
    assert stored["phone"] == "+48 500"
    assert stored["state"] == "CUSTOMER"
    assert stored["address"] == {"city": "Gdansk", "zipCode": "80-001"}
    assert stored["tags"] == ["VIP", "B2B"]
    assert stored["properties"] == {"size": "M", "color": "red"}
    assert stored["optedOut"] is True
    assert stored["modifiedOn"] >= stored["createdOn"]


def test_upsert_new_email_rekeys_contact(sandbox: Sandbox) -> None:
    # Given
    contact_id = upsert(sandbox, "old@x.example")["contactId"]
    # When
    reply = upsert(sandbox, "old@x.example", newEmail="new@x.example")
    # Then
    assert reply["contactId"] == contact_id
    assert sandbox.contact("old@x.example") is None
    assert sandbox.contact("new@x.example")["id"] == contact_id


def test_upsert_new_email_taken_rejected(sandbox: Sandbox) -> None:
    upsert(sandbox, "a@x.example")
    upsert(sandbox, "b@x.example")
    reply = upsert(sandbox, "a@x.example", newEmail="b@x.example", tags=["X"])
    assert reply["success"] is False
    assert sandbox.contact("a@x.example")["tags"] == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"contact": {"surname": "S"}}, "contact.surname"),
        ({"score": 5}, "score"),
        ({"contact": {"state": "LEAD"}}, "contact.state"),
        ({"contact": {"address": {"street": "Main"}}}, "contact.address.street"),
        ({"contact": {"phone": 500}}, "contact.phone"),
        ({"birthday": "1990-01-31"}, "birthday"),
        ({"birthday": "19900231"}, "birthday"),
        ({"properties": {"size": 42}}, "properties"),
        ({"tags": "VIP"}, "tags"),
        ({"forceOptIn": "yes"}, "forceOptIn"),
        ({"newEmail": "not-an-email"}, "newEmail"),
    ],
)
def test_upsert_invalid_field_rejected_naming_it(
    sandbox: Sandbox, fields: dict[str, Any], named: str
) -> None:
    reply = upsert(sandbox, "a@x.example", **fields)
    assert reply["success"] is False
    assert named in reply["message"][0]
    assert sandbox.contacts() == []


def test_upsert_invalid_email_rejected(sandbox: Sandbox) -> None:
    assert upsert(sandbox, "a.x.example")["success"] is False


# ----------------------------------------------------------------------------- batch upsert


def test_batchupsert_returns_id_per_email_as_sent(sandbox: Sandbox) -> None:
    # Given
    existing = upsert(sandbox, "b@x.example")["contactId"]
    details = [{"contact": {"email": "A@x.example"}, "tags": ["T"]}, {"contact": {"email": "b@x.example"}}]
    # When
    reply = call(sandbox, "contact/batchupsert", upsertDetails=details)
    # Then
    assert reply["success"] is True
    assert set(reply["contactIds"]) == {"A@x.example", "b@x.example"}
    assert reply["contactIds"]["b@x.example"] == existing
    assert sandbox.contact("a@x.example")["id"] == reply["contactIds"]["A@x.example"]


@pytest.mark.parametrize("count", [0, 1001])
def test_batchupsert_empty_or_over_limit_rejected(sandbox: Sandbox, count: int) -> None:
    details = [{"contact": {"email": f"c{n}@x.example"}} for n in range(count)]
    assert call(sandbox, "contact/batchupsert", upsertDetails=details)["success"] is False
    assert sandbox.contacts() == []


def test_batchupsert_invalid_item_applies_nothing(sandbox: Sandbox) -> None:
    details = [{"contact": {"email": "a@x.example"}}, {"contact": {"email": "b@x.example"}, "owner": OWNER}]
    reply = call(sandbox, "contact/batchupsert", upsertDetails=details)
    assert reply["success"] is False
    assert "upsertDetails[1].owner" in reply["message"][0]
    assert sandbox.contacts() == []


def test_batchupsert_conflict_midway_rolls_back(sandbox: Sandbox) -> None:
    # Given: the second item moves a contact onto an address the first item just created
    details = [
        {"contact": {"email": "a@x.example"}, "tags": ["T"]},
        {"contact": {"email": "b@x.example"}, "newEmail": "a@x.example"},
    ]
    upsert(sandbox, "b@x.example")
    # When
    reply = call(sandbox, "contact/batchupsert", upsertDetails=details)
    # Then
    assert reply["success"] is False
    assert sandbox.contact("a@x.example") is None
    assert sandbox.contact("b@x.example") is not None


def test_batchupsert_rejected_email_fails_whole_request(sandbox: Sandbox) -> None:
    # Given
    sandbox.reject_email("bad@x.example")
    details = [{"contact": {"email": "ok@x.example"}}, {"contact": {"email": "BAD@x.example"}}]
    # When
    reply = call(sandbox, "contact/batchupsert", upsertDetails=details)
    # Then
    assert reply == {"success": False, "message": ["Invalid contact data"]}
    assert sandbox.contacts() == []


# ----------------------------------------------------------------------------- delete and reads


def test_delete_soft_hides_contact_and_upsert_revives_it(sandbox: Sandbox) -> None:
    # Given
    contact_id = upsert(sandbox, "a@x.example")["contactId"]
    # When
    reply = call(sandbox, "contact/delete", email="A@x.example")
    # Then
    assert reply == {"success": True, "message": []}
    assert sandbox.contact("a@x.example")["deleted"] is True
    assert call(sandbox, "contact/basic", email=["a@x.example"])["contacts"] == []
    assert call(sandbox, "contact/hasContact", email="a@x.example")["result"] is False
    assert upsert(sandbox, "a@x.example")["contactId"] == contact_id
    assert sandbox.contact("a@x.example")["deleted"] is False


def test_delete_permanent_removes_contact(sandbox: Sandbox) -> None:
    upsert(sandbox, "a@x.example")
    assert call(sandbox, "contact/delete", email="a@x.example", permanently=True)["success"] is True
    assert sandbox.contact("a@x.example") is None


def test_delete_unknown_contact_not_found(sandbox: Sandbox) -> None:
    assert call(sandbox, "contact/delete", email="ghost@x.example") == {
        "success": False,
        "message": ["Contact not found"],
    }


def test_basic_returns_documented_fields(sandbox: Sandbox) -> None:
    # Given
    contact_id = upsert(
        sandbox, "a@x.example", contact={"name": "Ann", "address": {"city": "Gdansk"}}, birthday="19900131"
    )["contactId"]
    # When
    by_email = call(sandbox, "contact/basic", email=["a@x.example", "ghost@x.example"])
    by_id = call(sandbox, "contact/basicById", id=[contact_id, str(uuid.uuid4())])
    # Then
    assert by_email["contacts"] == by_id["contacts"]
    [found] = by_email["contacts"]
    assert found["contactId"] == contact_id
    assert (found["birthdayYear"], found["birthdayMonth"], found["birthdayDay"]) == (1990, 1, 31)
    assert found["address"] == {"streetAddress": None, "zipCode": None, "city": "Gdansk", "country": None}
    expected = {"name", "email", "phone", "fax", "score", "state", "company", "externalId", "optedOut"}
    expected |= {"optedOutPhone", "deleted", "invalid", "createdOn", "modifiedOn", "lastVisit"}
    assert expected <= set(found)


def test_list_includes_tags_properties_and_events(sandbox: Sandbox) -> None:
    # Given
    contact_id = upsert(sandbox, "a@x.example", tags=["VIP"], properties={"size": "M"})["contactId"]
    call(sandbox, "v2/contact/addContactExtEvent", email="a@x.example", contactEvent=contact_event())
    # When
    by_email = call(sandbox, "contact/list", email=["a@x.example"])
    by_id = call(sandbox, "contact/listById", contactId=[contact_id])
    # Then
    assert by_email["contacts"] == by_id["contacts"]
    [found] = by_email["contacts"]
    assert found["id"] == contact_id
    assert "tags" not in found  # a real reply has contactTags only
    assert [(t["tag"], t["tagName"]) for t in found["contactTags"]] == [("VIP", "VIP")]
    assert found["properties"] == [{"name": "size", "value": "M"}]
    [event] = found["contactExtEvents"]
    assert event["contactExtEventType"] == "PURCHASE"
    assert event["eventId"] == event["id"]


def test_list_over_50_emails_rejected(sandbox: Sandbox) -> None:
    emails = [f"c{n}@x.example" for n in range(51)]
    assert call(sandbox, "contact/list", email=emails)["success"] is False


def test_has_contact_reports_id(sandbox: Sandbox) -> None:
    contact_id = upsert(sandbox, "a@x.example")["contactId"]
    found = call(sandbox, "contact/hasContact", email="A@x.example")
    missing = call(sandbox, "contact/hasContact", email="ghost@x.example")
    assert (found["result"], found["contactId"]) == (True, contact_id)
    assert (missing["result"], missing["contactId"]) == (False, None)


# ----------------------------------------------------------------------------- events


def test_event_creates_contact_and_keeps_duplicates(sandbox: Sandbox) -> None:
    # Given
    event = contact_event(externalId="order-1")
    # When
    first = call(sandbox, "v2/contact/addContactExtEvent", email="new@x.example", contactEvent=event)
    second = call(sandbox, "contact/addContactExtEvent", email="new@x.example", contactEvent=event)
    # Then
    assert first["success"] and second["success"]
    assert first["eventId"] != second["eventId"]
    assert sandbox.contact("new@x.example") is not None
    stored = sandbox.events(email="NEW@x.example")
    assert [e["contactEvent"] for e in stored] == [event, event]
    assert stored[0]["client_id"] == CLIENT_ID


def test_event_by_contact_id_accepted(sandbox: Sandbox) -> None:
    contact_id = upsert(sandbox, "a@x.example")["contactId"]
    reply = call(sandbox, "v2/contact/addContactExtEvent", contactId=contact_id, contactEvent=contact_event())
    assert reply["success"] is True
    assert len(sandbox.events(email="a@x.example")) == 1


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"date": int(time.time())}, "seconds"),
        ({"date": time.time() * 1000}, "date"),
        ({"date": str(now_ms())}, "date"),
        ({"date": None}, "date"),
        ({"contactExtEventType": "ORDER"}, "contactExtEventType"),
        ({"description": "d" * 2049}, "description"),
        ({"products": "p" * 513}, "products"),
        ({"location": "l" * 256}, "location"),
        ({"location": 7}, "location"),
        ({"externalId": "e" * 256}, "externalId"),
        ({"detail20": "d" * 256}, "detail20"),
        ({"detail21": "x"}, "detail21"),
        ({"value": "10.50"}, "value"),
        ({"value": 10.555}, "value"),
        ({"currency": "PLN"}, "currency"),
    ],
)
def test_event_invalid_field_rejected(sandbox: Sandbox, override: dict[str, Any], named: str) -> None:
    event = {k: v for k, v in contact_event(**override).items() if v is not None}
    reply = call(sandbox, "v2/contact/addContactExtEvent", email="a@x.example", contactEvent=event)
    assert reply["success"] is False
    assert named in reply["message"][0]
    assert sandbox.events() == []
    assert sandbox.contacts() == []


def test_batch_events_partial_failure_reports_failed_contacts(sandbox: Sandbox) -> None:
    # Given
    sandbox.reject_email("bad@x.example")
    events = [
        {"email": "a@x.example", "contactEvent": contact_event()},
        {"email": "bad@x.example", "contactEvent": contact_event()},
        {"email": "b@x.example", "contactEvent": contact_event(date=1_700_000_000)},
        {"contactId": str(uuid.uuid4()), "contactEvent": contact_event()},
        {"email": "c@x.example", "contactEvent": contact_event()},
    ]
    # When
    reply = call(sandbox, "v2/contact/addBatchContactExtEvent", events=events)
    # Then
    assert reply["success"] is True
    assert (reply["createdAmount"], reply["failedAmount"]) == (2, 3)
    assert reply["failedContacts"] == ["bad@x.example", "b@x.example", events[3]["contactId"]]
    assert [e["email"] for e in sandbox.events()] == ["a@x.example", "c@x.example"]


@pytest.mark.parametrize("count", [0, 1001])
def test_batch_events_empty_or_over_limit_rejected(sandbox: Sandbox, count: int) -> None:
    events = [{"email": "a@x.example", "contactEvent": contact_event()}] * count
    assert call(sandbox, "v2/contact/addBatchContactExtEvent", events=events)["success"] is False
    assert sandbox.events() == []


def test_reject_email_request_mode_fails_any_request(sandbox: Sandbox) -> None:
    # Given
    sandbox.reject_email("Bad@x.example", mode="request")
    events = [{"email": e, "contactEvent": contact_event()} for e in ("a@x.example", "bad@x.example")]
    # When
    batch = call(sandbox, "v2/contact/addBatchContactExtEvent", events=events)
    read = call(sandbox, "contact/basic", email=["bad@x.example"])
    # Then
    assert batch == {"success": False, "message": ["Invalid contact data"]}
    assert read["success"] is False
    assert sandbox.events() == []
    assert upsert(sandbox, "a@x.example")["success"] is True


def test_reject_email_item_mode_fails_single_calls(sandbox: Sandbox) -> None:
    sandbox.reject_email("bad@x.example")
    assert upsert(sandbox, "bad@x.example")["success"] is False
    event = call(
        sandbox, "v2/contact/addContactExtEvent", email="bad@x.example", contactEvent=contact_event()
    )
    assert event["success"] is False
    assert sandbox.contacts() == []


# ----------------------------------------------------------------------------- products (v3)


@pytest.mark.parametrize("key", ["wrong", None])
def test_v3_bad_api_key_reason_10(sandbox: Sandbox, key: str | None) -> None:
    reply = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [product()]}, key=key)
    assert reply.status_code == 400
    assert reply.json() == {"messages": ["Invalid API key"], "reasonCode": 10}


def test_v3_unknown_catalog_reason_16(sandbox: Sandbox) -> None:
    reply = post_v3(sandbox, "product/upsert", {"catalogId": str(uuid.uuid4()), "products": [product()]})
    assert reply.status_code == 400
    assert reply.json() == {"problems": [{"reasonCode": 16, "message": "catalogId|Catalog not found"}]}


def test_v3_over_100_products_reason_11(sandbox: Sandbox) -> None:
    products = [product(f"p{n}") for n in range(101)]
    reply = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": products})
    assert reply.status_code == 400
    assert reply.json()["problems"][0]["reasonCode"] == 11
    assert reply.json()["problems"][0]["message"].startswith("products|")


@pytest.mark.parametrize(
    ("override", "code", "field"),
    [
        ({"quantity": 1.5}, 14, "quantity"),
        ({"quantity": "3"}, 14, "quantity"),
        ({"price": 9.999}, 14, "price"),
        ({"price": -1}, 14, "price"),
        ({"available": "yes"}, 14, "available"),
        ({"colour": "red"}, 14, "colour"),
        ({"customDetails": {"detail6": "x"}}, 14, "customDetails.detail6"),
        ({"systemDetails": {"gender": 3}}, 14, "systemDetails.gender"),
        ({"systemDetails": {"bestseller": 1}}, 14, "systemDetails.bestseller"),
        ({"name": "n" * 256}, 11, "name"),
        ({"productId": "p" * 256}, 11, "productId"),
        ({"categories": ["a", "b", "c", "d", "e", "f"]}, 11, "categories"),
        ({"description": "d" * 16385}, 11, "description"),
        ({"productUrl": "shop.example/p1"}, 18, "productUrl"),
    ],
)
def test_v3_product_problem_rejects_whole_request(
    sandbox: Sandbox, override: dict[str, Any], code: int, field: str
) -> None:
    # When
    products = [product("ok"), product("p1", **override)]
    reply = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": products})
    # Then
    assert reply.status_code == 400
    assert {"reasonCode": code, "message": f"products[1].{field}|"} in [
        {"reasonCode": p["reasonCode"], "message": p["message"].split("|")[0] + "|"}
        for p in reply.json()["problems"]
    ]
    assert sandbox.products() == {}


def test_v3_missing_product_id_reason_13(sandbox: Sandbox) -> None:
    reply = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [{"name": "Mug"}]})
    assert reply.json()["problems"] == [
        {"reasonCode": 13, "message": "products[0].productId|Field is required"}
    ]


def test_v3_upsert_merges_and_set_as_null_clears(sandbox: Sandbox) -> None:
    # Given
    first = product(systemDetails={"brand": "Acme", "color": "red"}, discountPrice=15)
    reply = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [first]})
    # When
    update = {
        "productId": "p1",
        "name": "Mug 2",
        "systemDetails": {"color": "blue"},
        "setAsNull": ["discountPrice"],
    }
    post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [update]})
    # Then
    assert reply.status_code == 200
    assert reply.json()["productIds"] == ["p1"]
    assert "problems" not in reply.json()
    stored = sandbox.products(CATALOG_ID)["p1"]
    assert stored["name"] == "Mug 2"
    assert stored["systemDetails"] == {"brand": "Acme", "color": "blue"}
    assert "discountPrice" not in stored
    assert stored["quantity"] == 3


def test_v3_set_as_null_clears_a_custom_detail(sandbox: Sandbox) -> None:
    # Given a product with two custom details
    first = product(customDetails={"detail1": "cotton", "detail2": "EU 42"})
    post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [first]})
    # When the next upsert clears detail2 as the official library names it
    update = product(customDetails={"detail1": "wool"}, setAsNull=["detail2", "discountPrice"])
    reply = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [update]})
    # Then
    assert reply.status_code == 200
    assert sandbox.products(CATALOG_ID)["p1"]["customDetails"] == {"detail1": "wool"}


@pytest.mark.parametrize("name", ["price", "customDetails.detail1", "brand", "detail6"])
def test_v3_set_as_null_other_names_rejected(sandbox: Sandbox, name: str) -> None:
    reply = post_v3(
        sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [product(setAsNull=[name])]}
    )
    assert reply.status_code == 400
    assert reply.json()["problems"][0]["message"].startswith("products[0].setAsNull|")


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"systemDetails": {"brand": "b" * 256}}, "systemDetails.brand"),
        ({"categories": ["ok", "c" * 256]}, "categories[1]"),
        ({"customDetails": {"detail5": "d" * 256}}, "customDetails.detail5"),
    ],
)
def test_v3_over_255_rejected_reason_11(sandbox: Sandbox, override: dict[str, Any], field: str) -> None:
    reply = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [product(**override)]})
    assert reply.status_code == 400
    assert reply.json()["problems"] == [
        {"reasonCode": 11, "message": f"products[0].{field}|Too long: 256 > 255"}
    ]


@pytest.mark.parametrize("location", ["Shop PL", "shop-1.pl", "MyShop", "l" * 255])
def test_event_any_location_up_to_255_accepted(sandbox: Sandbox, location: str) -> None:
    reply = call(
        sandbox,
        "v2/contact/addContactExtEvent",
        email="a@x.example",
        contactEvent=contact_event(location=location),
    )
    assert reply["success"] is True


def test_v3_warn_trim_adds_reason_12_with_http_200(sandbox: Sandbox) -> None:
    sandbox.warn_trim = True
    reply = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [product()]})
    assert reply.status_code == 200
    assert reply.json()["problems"] == [{"reasonCode": 12, "message": "description|Data trimmed"}]
    assert "p1" in sandbox.products()


def test_v3_catalog_list_and_upsert(sandbox: Sandbox) -> None:
    # When
    created = post_v3(
        sandbox, "product/catalogUpsert", {"name": "EU", "currency": "EUR", "location": "shop_eu"}
    )
    listed = requests.get(
        f"{sandbox.url}/v3/product/catalogList", headers={"API-KEY": PRODUCTS_KEY}, timeout=2
    )
    # Then
    assert created.status_code == 200
    catalogs = {c["catalogId"]: c for c in listed.json()["catalogs"]}
    assert catalogs[CATALOG_ID]["location"] == LOCATION
    assert catalogs[created.json()["catalogId"]] == {
        "catalogId": created.json()["catalogId"],
        "name": "EU",
        "location": "shop_eu",
        "currency": "EUR",
    }
    assert listed.json()["limits"] == {"max": 5}


@pytest.mark.parametrize("location", ["Shop EU", "shop-1.pl", "eu/shop", "1shop", "ab", "l" * 256])
def test_v3_catalog_upsert_location_no_catalog_can_have_rejected(sandbox: Sandbox, location: str) -> None:
    reply = post_v3(
        sandbox, "product/catalogUpsert", {"catalogName": "EU", "currency": "EUR", "location": location}
    )
    assert reply.status_code == 400
    assert reply.json()["problems"][0]["reasonCode"] == 18


def test_v3_catalog_upsert_as_the_official_library_sends_it(sandbox: Sandbox) -> None:
    # Given the library's body: catalogName, and a location with upper case (the plugin's pattern)
    body = {"catalogName": "Main", "currency": "PLN", "location": "MyShop", "setAsDefault": False}
    # When
    reply = post_v3(sandbox, "product/catalogUpsert", body)
    # Then
    assert reply.status_code == 200
    [created] = [c for c in sandbox.catalogs() if c["catalogId"] == reply.json()["catalogId"]]
    assert (created["name"], created["location"]) == ("Main", "MyShop")


# ----------------------------------------------------------------------------- routing and bodies


def test_unknown_path_404(sandbox: Sandbox) -> None:
    reply = post_v2(sandbox, "contact/explode", auth())
    assert reply.status_code == 404
    assert reply.json() == {"success": False, "message": ["Unknown method"]}


def test_non_json_body_v2_success_false_v3_400(sandbox: Sandbox) -> None:
    v2 = requests.post(f"{sandbox.url}/api/contact/upsert", data="hello", timeout=2)
    v3 = requests.post(
        f"{sandbox.url}/v3/product/upsert", data="hello", headers={"API-KEY": PRODUCTS_KEY}, timeout=2
    )
    assert (v2.status_code, v2.json()["success"]) == (200, False)
    assert v3.status_code == 400
    assert sandbox.requests[0].body == "hello"


def test_requests_recorded_with_api_key_elided(sandbox: Sandbox) -> None:
    # Given
    body = {**auth(), "email": ["a@x.example"]}
    # When
    post_v2(sandbox, "contact/basic", body)
    requests.get(f"{sandbox.url}/v3/product/catalogList?page=2", headers={"API-KEY": PRODUCTS_KEY}, timeout=2)
    # Then
    v2, v3 = sandbox.requests
    assert (v2.method, v2.path, v2.status, v2.fault) == ("POST", "/api/contact/basic", 200, None)
    assert v2.body == body
    assert v2.body["sha"] == sha1(body["apiKey"] + CLIENT_ID + API_SECRET)
    assert (v3.method, v3.path, v3.query) == ("GET", "/v3/product/catalogList", {"page": "2"})
    assert v3.headers["API-KEY"] == "***"
    assert PRODUCTS_KEY not in json.dumps(v3.headers)
    assert sandbox.requests_to("catalogList") == [v3]


# ----------------------------------------------------------------------------- faults


def test_fault_status_with_retry_after_then_recovers(sandbox: Sandbox) -> None:
    # Given
    sandbox.inject(Fault("status", status=429, retry_after=1, times=2))
    # When
    replies = [post_v2(sandbox, "contact/basic", {**auth(), "email": []}) for _ in range(3)]
    # Then
    assert [r.status_code for r in replies] == [429, 429, 200]
    assert replies[0].headers["Retry-After"] == "1"
    assert [r.fault for r in sandbox.requests] == ["status", "status", None]
    assert sandbox.faults_pending() == 0


def test_fault_status_5xx_applies_nothing_unless_asked(sandbox: Sandbox) -> None:
    sandbox.inject(Fault("status", status=503))
    sandbox.inject(Fault("status", status=500, apply=True))
    assert upsert_status(sandbox, "a@x.example") == 503
    assert sandbox.contact("a@x.example") is None
    assert upsert_status(sandbox, "b@x.example") == 500
    assert sandbox.contact("b@x.example") is not None


def test_fault_status_unusual_code_answered(sandbox: Sandbox) -> None:
    sandbox.inject(Fault("status", status=599, message="Network read timeout"))
    reply = post_v2(sandbox, "contact/basic", {**auth(), "email": []})
    assert (reply.status_code, reply.json()["message"]) == (599, "Network read timeout")


def upsert_status(sandbox: Sandbox, email: str) -> int:
    return post_v2(sandbox, "contact/upsert", {**auth(), "contact": {"email": email}}).status_code


@pytest.mark.parametrize("apply", [False, True])
def test_fault_slow_past_client_timeout(sandbox: Sandbox, apply: bool) -> None:
    # Given
    sandbox.inject(Fault("slow", delay_s=0.3, apply=apply))
    # When
    with pytest.raises(requests.exceptions.ReadTimeout):
        post_v2(sandbox, "contact/upsert", {**auth(), "contact": {"email": "a@x.example"}}, timeout=0.1)
    # Then: applied before the sleep, or only once the sleep is over
    assert (sandbox.contact("a@x.example") is not None) is apply
    wait_until(lambda: sandbox.requests[0].status == 200)
    assert sandbox.contact("a@x.example") is not None


def test_fault_slow_body_sends_the_head_then_stalls_the_body(sandbox: Sandbox) -> None:
    # Given a reply whose body follows its head 3 s later
    sandbox.inject(Fault("slow_body", delay_s=3.0))
    # When a client reads the head in time, then waits 1 s at most for the body
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        post_v2(sandbox, "contact/upsert", {**auth(), "contact": {"email": "a@x.example"}}, timeout=1.0)
    # Then the body timed out (requests wraps urllib3's read timeout), and the call was applied
    assert "Read timed out" in str(caught.value)
    assert sandbox.contact("a@x.example") is not None
    assert (sandbox.requests[0].status, sandbox.requests[0].fault) == (200, "slow_body")


@pytest.mark.parametrize("apply", [False, True])
def test_fault_drop_closes_connection(sandbox: Sandbox, apply: bool) -> None:
    # Given
    sandbox.inject(Fault("drop", apply=apply))
    # When
    with pytest.raises(requests.exceptions.ConnectionError):
        post_v2(sandbox, "contact/upsert", {**auth(), "contact": {"email": "a@x.example"}})
    # Then
    [recorded] = sandbox.requests
    assert (recorded.status, recorded.fault) == (None, "drop")
    assert (sandbox.contact("a@x.example") is not None) is apply


def test_fault_success_false_applies_nothing(sandbox: Sandbox) -> None:
    sandbox.inject(Fault("success_false", message="Try later"))
    reply = post_v2(sandbox, "contact/upsert", {**auth(), "contact": {"email": "a@x.example"}})
    assert (reply.status_code, reply.json()) == (200, {"success": False, "message": ["Try later"]})
    assert sandbox.contact("a@x.example") is None


def test_fault_non_json_html_body(sandbox: Sandbox) -> None:
    sandbox.inject(Fault("non_json"))
    reply = post_v2(sandbox, "contact/upsert", {**auth(), "contact": {"email": "a@x.example"}})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.text == "<html>Service temporarily unavailable</html>"
    assert sandbox.contact("a@x.example") is None


def test_faults_match_path_in_fifo_order(sandbox: Sandbox) -> None:
    # Given
    sandbox.inject(Fault("status", status=502, path="product/upsert"))
    sandbox.inject(Fault("status", status=503, path="contact/"))
    sandbox.inject(Fault("status", status=504, path="contact/"))
    assert sandbox.faults_pending() == 3
    # When
    basic = [post_v2(sandbox, "contact/basic", {**auth(), "email": []}).status_code for _ in range(3)]
    products = post_v3(sandbox, "product/upsert", {"catalogId": CATALOG_ID, "products": [product()]})
    # Then
    assert basic == [503, 504, 200]
    assert products.status_code == 502
    assert sandbox.faults_pending() == 0


def test_latency_added_to_every_answer(sandbox: Sandbox) -> None:
    sandbox.latency_ms = 150
    started = time.monotonic()
    post_v2(sandbox, "contact/basic", {**auth(), "email": []})
    assert time.monotonic() - started >= 0.15


def test_reset_clears_state_requests_and_faults(sandbox: Sandbox) -> None:
    upsert(sandbox, "a@x.example")
    sandbox.inject(Fault("drop"))
    sandbox.reject_email("b@x.example")
    sandbox.reset()
    assert (sandbox.contacts(), sandbox.requests, sandbox.faults_pending()) == ([], [], 0)
    assert upsert(sandbox, "b@x.example")["success"] is True


def test_fault_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


# ----------------------------------------------------------------------------- configuration and lifecycle


def test_from_groups_file_one_account_per_client(tmp_path: Path) -> None:
    # Given
    groups = {
        "shop-pl": {"client_id": "c1", "api_secret": "s1", "owner": "a@c1.example", "products_api_key": "k1"}
        | {"catalog_id": "cat-pl", "location": "shop_pl", "queue": "ignored"},
        "shop-de": {"client_id": "c1", "api_secret": "s1", "owner": "b@c1.example", "catalog_id": "cat-de"}
        | {"location": "shop_de"},
        "other": {"client_id": "c2", "api_secret": "s2", "owner": "x@c2.example"},
    }
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(groups))
    # When
    sandbox = Sandbox.from_groups_file(path)
    # Then
    accounts = {a.client_id: a for a in sandbox.accounts}
    assert set(accounts) == {"c1", "c2"}
    assert accounts["c1"].owners == ["a@c1.example", "b@c1.example"]
    assert accounts["c1"].catalogs == {"cat-pl": "shop_pl", "cat-de": "shop_de"}
    assert accounts["c1"].products_api_key == "k1"


def test_accounts_with_conflicting_secrets_rejected() -> None:
    with pytest.raises(ValueError, match="api secrets"):
        Sandbox(accounts=[Account("c1", "s1"), Account("c1", "s2")])


def test_context_manager_stops_serving() -> None:
    with Sandbox() as sandbox:
        url = sandbox.url
        assert requests.get(f"{url}/v3/product/catalogList", timeout=2).status_code == 400
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/v3/product/catalogList", timeout=1)


def test_command_line_serves_demo_account() -> None:
    # Given
    process = subprocess.Popen(
        [sys.executable, "-m", "local.sandbox", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        line = process.stderr.readline()
        url = re.search(r"http://\S+", line).group(0)
        # When
        api_key = "k"
        body = {"clientId": DEMO_ACCOUNT.client_id, "apiKey": api_key, "requestTime": now_ms()}
        body |= {"sha": sha1(api_key + DEMO_ACCOUNT.client_id + DEMO_ACCOUNT.api_secret)}
        body |= {"owner": DEMO_ACCOUNT.owners[0], "email": []}
        reply = requests.post(f"{url}/api/contact/basic", json=body, timeout=2)
        # Then
        assert reply.json() == {"success": True, "message": [], "contacts": []}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
        process.stderr.close()
