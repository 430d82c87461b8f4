"""The HTTP API in-process: real-shaped REST proxy events, the sandbox for SALESmanago, moto for SQS."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.api_server import proxy_event
from local.runner import load_handler
from local.sandbox import Fault, Sandbox
from tests.conftest import PRODUCT_BASE, FakeContext, load_event

DEMO_KEY = "demo-key-id-1"  # bound to demo-shop in local/groups.sample.json
OUTLET_KEY = "outlet-key-id-2"  # bound to outlet
MULTI_KEY = "multi-key-id-9"  # bound to both by the `multi_key` fixture
QUICK_MS = 5_000  # a short budget: no Retry-After is slept on, retries back off by 0 s


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error(self) -> dict[str, Any]:
        return self.body["error"]

    def fields(self) -> list[str]:
        return [d["field"] for d in self.error["details"]]


Call = Callable[..., Reply]


@contextmanager
def api_environment(monkeypatch: pytest.MonkeyPatch, groups_file: Path, **extra: str) -> Iterator[None]:
    """The API function's environment against the sandbox (no queue: the API answers, it never parks)."""
    from salesmanago_bridge.api import get_request_guard
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    env = {
        "STAGE": "test",
        "SALESMANAGO_GROUPS_FILE": str(groups_file),
        "SALESMANAGO_READ_TIMEOUT_S": "1.0",
        "SALESMANAGO_MAX_RETRIES": "1",
        **extra,
    }
    for name in ("DEAD_LETTER_QUEUE_URL", "IDEMPOTENCY_TABLE_NAME"):
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    caches = (get_settings, get_dispatcher, get_request_guard)
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


def caller(lambda_handler: Any) -> Call:
    """``call(method, target, body, key_id=..., headers=..., remaining_ms=...)`` → ``Reply``."""

    def invoke(
        method: str,
        target: str,
        body: Any = None,
        *,
        key_id: str | None = DEMO_KEY,
        headers: dict[str, str] | None = None,
        remaining_ms: int = 60_000,
    ) -> Reply:
        raw = body if body is None or isinstance(body, str | bytes) else json.dumps(body)
        event = proxy_event(
            method,
            target,
            headers={"Content-Type": "application/json", **(headers or {})},
            body=raw,
            api_key_id=key_id,
        )
        return reply_of(lambda_handler(event, FakeContext(remaining_ms)))

    return invoke


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, groups_file: Path) -> Iterator[Any]:
    with api_environment(monkeypatch, groups_file):
        yield lambda name: load_handler(name).lambda_handler


@pytest.fixture
def call(handler: Any) -> Call:
    return caller(handler("api"))


def reply_of(result: dict[str, Any]) -> Reply:
    headers = {k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    return Reply(int(result["statusCode"]), headers, json.loads(result["body"]))


@pytest.fixture
def multi_key(groups_file: Path) -> str:
    return bind_to_both_groups(groups_file)


def bind_to_both_groups(groups_file: Path) -> str:
    """Bind MULTI_KEY to both sample groups; return it."""
    groups = json.loads(groups_file.read_text())
    for config in groups.values():
        config["api_key_ids"] = [*config["api_key_ids"], MULTI_KEY]
    groups_file.write_text(json.dumps(groups))
    return MULTI_KEY


def upsert(call: Call, email: str, **fields: Any) -> Reply:
    return call("POST", "/contacts", {"group_key": "demo-shop", "data": {"email": email, **fields}})


def event_body(email: str = "buyer@customer.example.com", **fields: Any) -> dict[str, Any]:
    data = {"email": email, "contactExtEventType": "PURCHASE", "value": 10, **fields}
    return {"group_key": "demo-shop", "data": data}


# One request per route, for a key (demo-key-id-1) that may not use group "outlet".
EVERY_ROUTE = [
    ("POST", "/contacts", {"group_key": "outlet", "data": {"email": "x@customer.example.com"}}),
    ("DELETE", "/contacts", {"group_key": "outlet", "data": {"email": "x@customer.example.com"}}),
    ("POST", "/events", event_body("x@customer.example.com") | {"group_key": "outlet"}),
    ("POST", "/products", {"group_key": "outlet", "data": [{**PRODUCT_BASE, "id": "P1"}]}),
    ("POST", "/products/stock", {"group_key": "outlet", "data": [{"id": "P1", "quantity": 1}]}),
    (
        "POST",
        "/products/price",
        {"group_key": "outlet", "data": [{"id": "P1", "price": 1, "special_price": None}]},
    ),
    ("GET", "/contact/0b5b6c1e-8d2a-4c8f-9e4b-3f2a1d0c9b8a?group_key=outlet", None),
    ("GET", "/contact_by_email?email=x@customer.example.com&group_key=outlet", None),
]
ROUTE_IDS = [f"{m} {t.split('?')[0]}" for m, t, _ in EVERY_ROUTE]


# ---- success, route by route ------------------------------------------------------------------
def test_api_post_contacts_upserts_and_answers_contact_id(call: Call, sandbox: Sandbox):
    # Given a contact with a field the group maps (loyalty_tier → properties.loyalty)
    body = {"group_key": "demo-shop", "data": {"email": "Jan@Customer.example.com", "loyalty_tier": "gold"}}
    # When
    reply = call("POST", "/contacts", body)
    # Then
    stored = sandbox.contact("jan@customer.example.com")
    assert reply.status == 200
    assert reply.body == {
        "status": "applied",
        "action": "contact.upsert",
        "group_key": "demo-shop",
        "contactId": stored["id"],
    }
    assert stored["properties"] == {"loyalty": "gold"}
    assert reply.headers["Content-Type"] == "application/json"


def test_api_delete_contacts_deletes(call: Call, sandbox: Sandbox):
    # Given a stored contact
    upsert(call, "gone@customer.example.com")
    # When
    body = {"group_key": "demo-shop", "data": {"email": "gone@customer.example.com", "permanently": True}}
    reply = call("DELETE", "/contacts", body)
    # Then
    assert reply.status == 200
    assert reply.body["deleted"] is True and reply.body["action"] == "contact.delete"
    assert sandbox.contact("gone@customer.example.com") is None


def test_api_delete_contacts_of_absent_contact_is_applied(call: Call):
    reply = call(
        "DELETE", "/contacts", {"group_key": "demo-shop", "data": {"email": "never@customer.example.com"}}
    )
    assert reply.status == 200
    assert reply.body["deleted"] is False and reply.body["already_absent"] is True


def test_api_post_events_creates_one_event(call: Call, sandbox: Sandbox):
    # When
    reply = call("POST", "/events", event_body(order_channel="web"))
    # Then
    [stored] = sandbox.events("buyer@customer.example.com")
    assert reply.status == 200
    assert reply.body["eventId"] == stored["eventId"]
    assert stored["contactEvent"]["detail5"] == "web"  # the group's field map
    assert stored["contactEvent"]["location"] == "demo_shop"  # the group's default location

    assert reply.body["warnings"] == []


def test_api_post_events_other_location_sent_with_a_warning(call: Call, sandbox: Sandbox):
    # When an event names a location other than the group's catalog (demo_shop)
    reply = call("POST", "/events", event_body(location="Outlet_2"))
    # Then it reaches SALESmanago as given, and the reply says it will not link to the catalog
    [stored] = sandbox.events("buyer@customer.example.com")
    assert reply.status == 200
    assert stored["contactEvent"]["location"] == "Outlet_2"
    assert [w.split(":")[0] for w in reply.body["warnings"]] == ["location_mismatch"]


def test_api_post_products_trimmed_values_listed_as_warnings(call: Call, sandbox: Sandbox):
    # Given a brand our contract accepts but SALESmanago keeps only 255 characters of
    product = {**PRODUCT_BASE, "id": "SKU-1", "brand": "b" * 300}
    # When
    reply = call("POST", "/products", {"group_key": "demo-shop", "data": [product]})
    # Then
    assert reply.status == 200
    assert reply.body["warnings"] == ["trimmed: data[0].brand cut to 255 characters (SALESmanago's limit)"]
    assert sandbox.products()["SKU-1"]["systemDetails"]["brand"] == "b" * 255


def test_api_post_products_upserts_and_lists_ignored_fields(call: Call, sandbox: Sandbox):
    # Given one product with a mapped field (ean → detail4) and one nothing takes
    product = {**PRODUCT_BASE, "id": "SKU-1", "ean": "5901234123457", "warranty": "2y"}
    # When
    reply = call("POST", "/products", {"group_key": "demo-shop", "data": [product]})
    # Then
    assert reply.status == 200
    assert reply.body["productIds"] == ["SKU-1"]
    assert reply.body["ignored_fields"] == ["data[0].warranty"]
    [stored] = sandbox.products().values()
    assert stored["customDetails"] == {"detail4": "5901234123457"}


def test_api_post_products_stock_and_price_set_them_alone(call: Call, sandbox: Sandbox):
    # Given a product upserted whole, with a discount
    product = {**PRODUCT_BASE, "id": "SKU-1", "price": 20, "special_price": 15, "stock_available": 3}
    assert call("POST", "/products", {"group_key": "demo-shop", "data": [product]}).status == 200

    # When its stock, then its prices, are set alone (the discount ended)
    stock = call(
        "POST", "/products/stock", {"group_key": "demo-shop", "data": [{"id": "SKU-1", "quantity": 0}]}
    )
    prices = call(
        "POST", "/products/price", {"data": [{"id": "SKU-1", "price": 18, "special_price": None, "erp": "x"}]}
    )

    # Then each answers what it applied, and the rest of the product is as the upsert left it
    assert (stock.status, prices.status) == (200, 200)
    assert stock.body == {
        "status": "applied", "action": "products.stock", "group_key": "demo-shop",
        "productIds": ["SKU-1"], "ignored_fields": [], "warnings": [],
    }  # fmt: skip
    assert (prices.body["action"], prices.body["ignored_fields"]) == ("products.price", ["data[0].erp"])
    stored = sandbox.products()["SKU-1"]
    assert (stored["quantity"], stored["available"], stored["price"], stored["name"]) == (
        0,
        True,
        18,
        "N",
    )
    assert "discountPrice" not in stored


def test_api_products_price_without_special_price_is_400_naming_it(call: Call, sandbox: Sandbox):
    reply = call("POST", "/products/price", {"group_key": "demo-shop", "data": [{"id": "SKU-1", "price": 5}]})
    assert reply.status == 400
    assert reply.fields() == ["data[0].special_price"]
    assert not sandbox.requests


def test_api_products_stock_quantity_must_be_an_integer(call: Call, sandbox: Sandbox):
    reply = call(
        "POST", "/products/stock", {"group_key": "demo-shop", "data": [{"id": "S", "quantity": 2.5}]}
    )
    assert (reply.status, reply.fields()) == (400, ["data[0].quantity"])
    assert not sandbox.requests


def test_api_products_stock_of_an_unknown_product_is_refused_naming_it(call: Call, sandbox: Sandbox):
    # Given SALESmanago refusing an id it does not hold (the sandbox's default; docs/salesmanago.md)
    reply = call(
        "POST", "/products/stock", {"group_key": "demo-shop", "data": [{"id": "GHOST", "quantity": 1}]}
    )

    # Then the caller learns which item and why
    assert reply.status == 502, reply.body
    assert reply.fields() == ["data[0] (SALESmanago field productId)"]


def test_api_get_contact_by_id_answers_our_field_names(call: Call):
    # Given a contact with address, tags and properties
    contact_id = upsert(
        call,
        "read.me@customer.example.com",
        name="Ewa",
        streetAddress="Długa 1",
        city="Gdańsk",
        tags=["VIP"],
        properties={"plan": "gold"},
    ).body["contactId"]
    # When
    reply = call("GET", f"/contact/{contact_id}")
    # Then
    assert reply.status == 200
    assert reply.body["group_key"] == "demo-shop"
    contact = reply.body["contact"]
    assert contact["sm_id"] == contact_id
    assert contact["email"] == "read.me@customer.example.com"
    assert (contact["name"], contact["streetAddress"], contact["city"]) == ("Ewa", "Długa 1", "Gdańsk")
    assert contact["tags"] == ["VIP"] and contact["properties"] == {"plan": "gold"}
    assert isinstance(contact["createdOn"], int) and isinstance(contact["modifiedOn"], int)
    assert "contactExtEvents" not in contact and "address" not in contact


def test_api_get_contact_by_email_answers_the_contact(call: Call):
    upsert(call, "by.mail@customer.example.com", tags=["A", "B"])
    reply = call("GET", "/contact_by_email?email=BY.MAIL@customer.example.com")
    assert reply.status == 200
    assert reply.body["contact"]["email"] == "by.mail@customer.example.com"
    assert sorted(reply.body["contact"]["tags"]) == ["A", "B"]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (Path(__file__).parents[2] / "events").glob("api_*.json"))
)
def test_api_sample_event_is_answered_without_error(
    name: str, handler: Any, sandbox: Sandbox, lambda_context
):
    # Given a sample event as API Gateway sends it (stage Production, x-api-key, identity.apiKeyId),
    # a stock or price update after its products' upsert sample
    event = load_event(name)
    if name in ("api_products_stock.json", "api_products_price.json"):
        assert reply_of(handler("api")(load_event("api_products_upsert.json"), lambda_context)).status == 200
    # When
    reply = reply_of(handler("api")(event, lambda_context))
    # Then writes are applied and reads of contacts the samples never create are 404
    expected = 404 if event["httpMethod"] == "GET" else 200
    assert reply.status == expected, reply.body
    assert sandbox.requests


# ---- both URL forms ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "prefix", ["", "/Production", "/v1"], ids=["api-gateway-path", "stage-url", "custom-domain"]
)
def test_api_both_url_forms_reach_the_same_routes(prefix: str, call: Call, sandbox: Sandbox):
    # When the contact is written and read through one URL form
    written = call("POST", f"{prefix}/contacts", {"data": {"email": "forms@customer.example.com"}})
    read = call("GET", f"{prefix}/contact_by_email?email=forms@customer.example.com")
    by_id = call("GET", f"{prefix}/contact/{written.body['contactId']}")
    # Then every route answered
    assert (written.status, read.status, by_id.status) == (200, 200, 200)
    assert read.body["contact"]["sm_id"] == written.body["contactId"] == by_id.body["contact"]["sm_id"]


def test_api_custom_domain_event_keeps_its_base_path_in_the_event(call: Call):
    # Given what API Gateway passes behind the custom domain: path /v1/contacts
    event = proxy_event("POST", "/v1/contacts", api_key_id=DEMO_KEY)
    assert event["path"] == "/v1/contacts"
    # and on the execute-api URL: the stage is not in `path`
    assert proxy_event("POST", "/Production/contacts")["path"] == "/contacts"


# ---- validated once ---------------------------------------------------------------------------
IDNA_EMAIL = "zofia@xn--bcher-kva.example.com"  # takes the e-mail's full check, not its fast path
IDN_URL = "https://bücher.example.com/p"  # takes urlsplit, not the plain-URL fast path


@pytest.mark.parametrize(
    ("method", "target", "data", "headers"),
    [
        ("POST", "/contacts", {"email": IDNA_EMAIL, "name": "Zofia"}, {}),
        ("POST", "/contacts", {"email": IDNA_EMAIL, "loyalty_tier": "gold"}, {}),  # routed by the field map
        ("DELETE", "/contacts", {"email": IDNA_EMAIL}, {}),
        ("POST", "/events", {"email": IDNA_EMAIL, "contactExtEventType": "PURCHASE"}, {}),
        ("POST", "/events", {"email": IDNA_EMAIL, "contactExtEventType": "CART"}, {"Idempotency-Key": "k-9"}),
    ],
    ids=["upsert", "upsert-routed", "delete", "event", "event-with-key"],
)
def test_api_write_validates_data_once(
    method: str,
    target: str,
    data: dict[str, Any],
    headers: dict[str, str],
    call: Call,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
):
    # Given a validator of data that counts its runs
    from salesmanago_bridge import fields

    checked: list[str] = []
    full_check = fields._email_validator_normalized
    monkeypatch.setattr(fields, "_email_validator_normalized", lambda v: checked.append(v) or full_check(v))
    # When the write is served (the at-most-once path included, for events)
    reply = call(method, target, {"group_key": "demo-shop", "data": data}, headers=headers)
    # Then its data was validated once: not by the request model, and not again for the event's id
    assert reply.status == 200, reply.body
    assert checked == [IDNA_EMAIL]


def test_api_products_are_validated_once(call: Call, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch):
    from salesmanago_bridge import fields

    split: list[str] = []
    real_urlsplit = fields.urlsplit
    monkeypatch.setattr(fields, "urlsplit", lambda v: split.append(v) or real_urlsplit(v))
    product = {**PRODUCT_BASE, "id": "P1", "url": IDN_URL, "image_url": IDN_URL + ".jpg"}
    reply = call("POST", "/products", {"group_key": "demo-shop", "data": [product]})
    assert reply.status == 200, reply.body
    assert split == [IDN_URL, IDN_URL + ".jpg"]  # each URL of the product checked once


# ---- 400 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["{not json", "", "[1, 2]", "null", '"text"'])
def test_api_body_not_a_json_object_is_400(raw: str, call: Call, sandbox: Sandbox):
    reply = call("POST", "/contacts", raw)
    assert reply.status == 400
    assert reply.error["code"] == "validation"
    assert reply.fields() == ["body"]
    assert not sandbox.requests


def test_api_invalid_body_lists_every_failing_field_and_echoes_no_value(call: Call, sandbox: Sandbox):
    # Given several bad fields, with values that must not come back
    data = {"email": "not-an-email-SECRET1", "state": "SECRET2", "tags": "SECRET3", "birthday": "SECRET4"}
    # When the envelope is wrong too
    envelope_refused = call(
        "POST", "/contacts", {"group_key": "demo-shop", "data": data, "surprise": "SECRET5"}
    )
    # Then the envelope's fields are named first: data is validated only once the group's field map is known
    assert envelope_refused.status == 400
    assert envelope_refused.fields() == ["surprise"]
    # When only data is wrong
    reply = call("POST", "/contacts", {"group_key": "demo-shop", "data": data})
    # Then every field of it is named with its path, and none of the values is echoed
    assert reply.status == 400
    assert reply.error["message"] == "invalid request"
    assert set(reply.fields()) == {"data.email", "data.state", "data.tags", "data.birthday"}
    assert "SECRET" not in json.dumps([envelope_refused.body, reply.body])
    assert not sandbox.requests


def test_api_invalid_products_name_each_failing_item(call: Call, sandbox: Sandbox):
    products = [{**PRODUCT_BASE, "id": "OK"}, {**PRODUCT_BASE, "id": "BAD", "url": "ftp://x"}, {"id": "Q"}]
    reply = call("POST", "/products", {"group_key": "demo-shop", "data": products})
    assert reply.status == 400
    assert "data[1].url" in reply.fields()
    assert {"data[2].name", "data[2].url", "data[2].brand"} <= set(reply.fields())
    assert not sandbox.requests


def test_api_unmapped_field_is_400_naming_it(call: Call, sandbox: Sandbox):
    body = {"group_key": "outlet", "data": {"email": "x@customer.example.com", "favourite_colour": "red"}}
    reply = call("POST", "/contacts", body, key_id=OUTLET_KEY)
    assert reply.status == 400
    assert reply.error["code"] == "unmapped_field"
    assert reply.fields() == ["data.favourite_colour"]
    assert "red" not in json.dumps(reply.body)
    assert not sandbox.requests


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ("/contact_by_email", "email"),
        ("/contact_by_email?email=nope", "email"),
        ("/contact/bad$id", "sm_id"),
        ("/contact_by_email?email=a@customer.example.com&group_key=no%20spaces", "group_key"),
    ],
)
def test_api_invalid_query_or_path_is_400(target: str, field: str, call: Call, sandbox: Sandbox):
    reply = call("GET", target)
    assert reply.status == 400
    assert reply.fields() == [field]
    assert not sandbox.requests


def test_api_bad_idempotency_key_header_is_400(call: Call, sandbox: Sandbox):
    reply = call("POST", "/events", event_body(), headers={"Idempotency-Key": "k" * 300})
    assert reply.status == 400
    assert reply.fields() == ["Idempotency-Key"]
    assert not sandbox.requests


def test_api_form_content_type_is_still_read_as_json(call: Call, sandbox: Sandbox):
    # Given `curl -d` without -H: Content-Type application/x-www-form-urlencoded, a JSON body
    body = {"data": {"email": "curl@customer.example.com"}}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    # When / Then
    assert call("POST", "/contacts", body, headers=headers).status == 200
    assert sandbox.contact("curl@customer.example.com")


# ---- 403: tenant isolation ----------------------------------------------------------------------
@pytest.mark.parametrize(("method", "target", "body"), EVERY_ROUTE, ids=ROUTE_IDS)
def test_api_key_of_group_a_gets_403_for_group_b_on_every_route(
    method: str, target: str, body: Any, call: Call, sandbox: Sandbox
):
    # When demo-shop's key names group outlet
    reply = call(method, target, body, headers={"Idempotency-Key": "k-1"})
    # Then it is refused and nothing reached SALESmanago
    assert reply.status == 403
    assert reply.error["code"] == "forbidden"
    assert not sandbox.requests


@pytest.mark.parametrize(("method", "target", "body"), EVERY_ROUTE, ids=ROUTE_IDS)
def test_api_unbound_or_missing_key_gets_403_on_every_route(
    method: str, target: str, body: Any, call: Call, sandbox: Sandbox
):
    without_group = target.replace("group_key=outlet", "").rstrip("?&")
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "group_key"}
    assert call(method, without_group, body, key_id="unbound-key-id-3").status == 403
    assert call(method, without_group, body, key_id=None).status == 403
    assert not sandbox.requests


def test_api_unknown_group_is_403_not_a_hint(call: Call, sandbox: Sandbox):
    reply = call(
        "POST", "/contacts", {"group_key": "no-such-group", "data": {"email": "x@customer.example.com"}}
    )
    assert reply.status == 403
    assert "no-such-group" not in json.dumps(reply.body)
    assert not sandbox.requests


def test_api_group_key_in_query_of_a_write_is_checked_too(call: Call, sandbox: Sandbox):
    body = {"data": {"email": "x@customer.example.com"}}
    assert call("POST", "/contacts?group_key=outlet", body).status == 403
    mismatch = call("POST", "/contacts?group_key=outlet", {**body, "group_key": "demo-shop"})
    assert mismatch.status == 400 and mismatch.fields() == ["group_key"]
    assert not sandbox.requests


# ---- group_key defaulting ---------------------------------------------------------------------
def test_api_group_key_omitted_uses_the_keys_only_group(call: Call, sandbox: Sandbox):
    reply = call("POST", "/contacts", {"data": {"email": "default@customer.example.com"}})
    assert reply.status == 200 and reply.body["group_key"] == "demo-shop"
    assert sandbox.contact("default@customer.example.com", client_id="demo-client-1")


@pytest.mark.parametrize(("method", "target", "body"), EVERY_ROUTE, ids=ROUTE_IDS)
def test_api_group_key_omitted_with_several_groups_is_400_naming_them(
    method: str, target: str, body: Any, call: Call, multi_key: str, sandbox: Sandbox
):
    without_group = target.replace("group_key=outlet", "").rstrip("?&")
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "group_key"}
    reply = call(method, without_group, body, key_id=multi_key)
    assert reply.status == 400
    assert reply.error["details"] == [
        {"field": "group_key", "problem": "is required; one of: demo-shop, outlet"}
    ]
    assert not sandbox.requests


def test_api_key_with_several_groups_may_name_each(call: Call, multi_key: str, sandbox: Sandbox):
    for group in ("demo-shop", "outlet"):
        body = {"group_key": group, "data": {"email": "both@customer.example.com"}}
        assert call("POST", "/contacts", body, key_id=multi_key).status == 200
    assert len(sandbox.contacts()) == 2


# ---- 404 --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "target",
    ["/contact/0b5b6c1e-8d2a-4c8f-9e4b-3f2a1d0c9b8a", "/contact_by_email?email=who@customer.example.com"],
)
def test_api_unknown_contact_is_404(target: str, call: Call):
    reply = call("GET", target)
    assert reply.status == 404
    assert reply.error == {"code": "not_found", "message": "no contact found", "details": []}


def test_api_deleted_contact_is_404(call: Call):
    upsert(call, "soft@customer.example.com")
    call("DELETE", "/contacts", {"data": {"email": "soft@customer.example.com"}})
    assert call("GET", "/contact_by_email?email=soft@customer.example.com").status == 404


def test_api_unknown_route_is_404_in_the_error_shape(call: Call):
    reply = call("GET", "/nothing/here")
    assert reply.status == 404 and reply.error["code"] == "not_found"


# ---- 413 --------------------------------------------------------------------------------------
def test_api_body_over_1_mb_is_413_before_anything_else(call: Call, sandbox: Sandbox):
    # Given a body just over 1 MB (and not even valid JSON)
    big = "{" + "x" * (1024 * 1024)
    # When
    reply = call("POST", "/contacts", big)
    # Then
    assert reply.status == 413
    assert reply.error["code"] == "payload_too_large"
    assert not sandbox.requests


def test_api_body_just_under_1_mb_is_accepted(call: Call):
    description = "d" * 1000
    products = [{**PRODUCT_BASE, "id": f"P{i}", "description": description} for i in range(900)]
    body = json.dumps({"data": products})
    assert len(body) < 1024 * 1024
    assert call("POST", "/products", body).status == 200


# ---- 502 --------------------------------------------------------------------------------------
def test_api_salesmanago_rejection_is_502_with_its_message(call: Call, sandbox: Sandbox):
    sandbox.reject_email("poison@customer.example.com")
    reply = upsert(call, "poison@customer.example.com")
    assert reply.status == 502
    assert reply.error["code"] == "salesmanago_rejected"
    assert "Invalid contact data" in reply.error["message"]
    assert "poison@customer.example.com" not in json.dumps(reply.body)


def test_api_salesmanago_refusing_credentials_is_502_without_secrets(
    call: Call, groups_file: Path, sample_groups: dict[str, Any]
):
    groups = json.loads(groups_file.read_text())
    groups["demo-shop"]["api_secret"] = "wrong-secret-value"
    groups_file.write_text(json.dumps(groups))
    reply = upsert(call, "creds@customer.example.com")
    assert reply.status == 502 and reply.error["code"] == "auth"
    assert "Not authenticated" in reply.error["message"]
    text = json.dumps(reply.body)
    assert "wrong-secret-value" not in text and sample_groups["demo-shop"]["api_secret"] not in text


def test_api_read_refused_by_salesmanago_is_502(call: Call, sandbox: Sandbox):
    sandbox.inject(Fault("success_false", path="contact/list", message="Owner has no access"))
    reply = call("GET", "/contact_by_email?email=x@customer.example.com")
    assert reply.status == 502
    assert "Owner has no access" in reply.error["message"]


def test_api_product_rejection_is_502_with_field_details(call: Call, sandbox: Sandbox, groups_file: Path):
    groups = json.loads(groups_file.read_text())
    groups["demo-shop"]["catalog_id"] = "00000000-0000-4000-8000-000000000000"  # unknown to SALESmanago
    groups_file.write_text(json.dumps(groups))
    reply = call("POST", "/products", {"data": [{**PRODUCT_BASE, "id": "P1"}]})
    assert reply.status == 502
    assert reply.error["code"] == "salesmanago_rejected"


# ---- 503 --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", status=429, retry_after=30, times=20),
        Fault("status", status=503, times=20),
        Fault("status", status=503, retry_after=2, times=20),
        Fault("drop", times=20),
        Fault("non_json", times=20),
    ],
    ids=["429-long-retry-after", "503", "503-retry-after", "connection-dropped", "not-json"],
)
@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("POST", "/contacts", {"data": {"email": "busy@customer.example.com"}}),
        ("POST", "/events", event_body("busy@customer.example.com")),
        ("GET", "/contact_by_email?email=busy@customer.example.com", None),
    ],
    ids=["write", "event", "read"],
)
def test_api_salesmanago_unavailable_is_503_with_retry_after_and_no_long_wait(
    fault: Fault, method: str, target: str, body: Any, call: Call, sandbox: Sandbox
):
    # Given SALESmanago keeps failing
    sandbox.inject(fault)
    # When
    reply = call(method, target, body, remaining_ms=QUICK_MS)
    # Then the caller is told to come back, quickly, and never gets a bare 500
    assert reply.status == 503, reply.body
    assert int(reply.headers["Retry-After"]) >= 1
    assert reply.error["code"] in {"throttled", "unavailable", "timeout", "outcome_unknown"}
    assert len(sandbox.requests) <= 4  # the first try and at most SALESMANAGO_MAX_RETRIES more


def test_api_throttled_with_short_retry_after_passes_it_on(call: Call, sandbox: Sandbox):
    # Given SALESmanago answers 429 with Retry-After: 0 to every attempt (nothing to sleep on)
    sandbox.inject(Fault("status", status=429, retry_after=0, times=20))
    # When
    reply = call("POST", "/contacts", {"data": {"email": "t@customer.example.com"}}, remaining_ms=QUICK_MS)
    # Then
    assert reply.status == 503 and reply.error["code"] == "throttled"
    assert reply.headers["Retry-After"] == "5"


def test_api_slow_salesmanago_is_503_within_the_budget(call: Call, sandbox: Sandbox):
    sandbox.inject(Fault("slow", delay_s=1.5, times=5))
    reply = call("POST", "/contacts", {"data": {"email": "slow@customer.example.com"}}, remaining_ms=QUICK_MS)
    assert reply.status == 503 and reply.error["code"] in {"timeout", "unavailable"}
    assert len(sandbox.requests) <= 4


def test_api_event_with_lost_reply_is_503_telling_to_retry(call: Call, sandbox: Sandbox):
    sandbox.inject(Fault("slow", delay_s=1.5, path="addContactExtEvent", apply=True))
    reply = call("POST", "/events", event_body("lost@customer.example.com"), remaining_ms=QUICK_MS)
    assert reply.status == 503
    assert reply.error["code"] == "outcome_unknown"
    assert "will not be created twice" in reply.error["message"]


def test_api_too_little_time_left_is_503_and_sends_nothing(call: Call, sandbox: Sandbox):
    reply = call("POST", "/contacts", {"data": {"email": "late@customer.example.com"}}, remaining_ms=2_000)
    assert reply.status == 503 and reply.error["code"] == "deadline"
    assert not sandbox.requests


# ---- never a bare 500 ---------------------------------------------------------------------------
def test_api_bug_in_our_code_is_500_in_the_error_shape_without_its_text(
    call: Call, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
):
    from salesmanago_bridge.dispatch import Dispatcher

    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("internal detail a@customer.example.com")

    monkeypatch.setattr(Dispatcher, "run", explode)
    reply = upsert(call, "bug@customer.example.com")
    assert reply.status == 500
    assert reply.error["code"] == "internal"
    assert "internal detail" not in json.dumps(reply.body)


def test_api_invalid_group_config_is_500_without_details(call: Call, groups_file: Path, sandbox: Sandbox):
    groups = json.loads(groups_file.read_text())
    groups["demo-shop"]["endpoint"] = "not a url"
    groups_file.write_text(json.dumps(groups))
    reply = upsert(call, "cfg@customer.example.com")
    assert reply.status == 500
    assert reply.error["code"] == "invalid_group_config" and reply.error["details"] == []
    assert not sandbox.requests
