"""Our request bodies against the corpus: every key we send exists there with the same JSON type,
and every key the corpus marks required is sent. The bodies are taken from the sandbox's request
log, so they are exactly what went over the wire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local.sandbox import RecordedRequest, Sandbox
from salesmanago_bridge.catalogs import NewCatalog, create_catalog, list_catalogs
from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.commands import CommandEnvelope
from salesmanago_bridge.deadletters import DeadLetterSink
from salesmanago_bridge.dispatch import Dispatcher
from salesmanago_bridge.groups import FileGroupStore
from salesmanago_bridge.settings import Settings
from salesmanago_bridge.sources import Inbound, Source
from tests.conformance.conftest import CONFIDENCES, has_path, load_corpus, shape_differences
from tests.conftest import PRODUCT_BASE
from tests.integration.test_api import call, handler  # noqa: F401 - fixtures

CORPUS = load_corpus()
AUTH_FIELDS = frozenset({"clientId", "apiKey", "sha", "requestTime", "owner"})
SENT_AT_MS = 1_764_095_400_000
CONTACT = {
    "email": "ada@customer.example.com",
    "name": "Ada Nowak",
    "phone": "+48 600 100 200",
    "fax": "+48 22 100 20 30",
    "company": "Nowak i Syn",
    "externalId": "crm-77",
    "state": "CUSTOMER",
    "streetAddress": "Polna 3",
    "zipCode": "30-001",
    "city": "Krakow",
    "country": "PL",
    "newEmail": "ada.nowak@customer.example.com",
    "tags": ["SPRING"],
    "removeTags": ["LEAD"],
    "properties": {"loyalty": "gold"},
    "birthday": "1990-05-17",
    "province": "malopolskie",
    "lang": "PL",
    "forceOptIn": True,
    "forcePhoneOptOut": False,
    "consentDetails": [{"consentName": "MARKETING", "consentAccept": True, "ip": "203.0.113.7"}],
}
EVENT = {
    "email": "ada@customer.example.com",
    "contactExtEventType": "PURCHASE",
    "description": "Order 1001",
    "products": ["SKU-1", "SKU-2"],
    "location": "demo_shop",
    "value": 249.9,
    "externalId": "order-1001",
    "shopDomain": "shop.example.com",
    "date": 1_714_557_600_000,
    **{f"detail{n}": f"d{n}" for n in range(1, 21)},
}
PRODUCT = {
    **PRODUCT_BASE,
    "id": "SKU-1",
    "sub_category": "Winter",
    "sex": 4,
    "price": 499,
    "special_price": 399.5,
    "detail1": "wool",
    "image2_url": "https://s.example.com/i2",
    "stock_available": 3,
    "color": "navy",
    "season": "winter",
    "active": True,
}


@pytest.fixture
def dispatcher(groups_file: Path) -> Dispatcher:
    settings = Settings.model_validate({"SALESMANAGO_GROUPS_FILE": str(groups_file)})
    return Dispatcher(
        settings, FileGroupStore(groups_file), SalesmanagoClient(settings), DeadLetterSink(None)
    )


def run(dispatcher: Dispatcher, action: str, data: Any) -> None:
    envelope = CommandEnvelope.parse({"action": action, "group_key": "demo-shop", "data": data})
    group = dispatcher.groups.get("demo-shop")
    dispatcher.run(envelope.to_command(sent_at_ms=SENT_AT_MS, default_location=group.location))


def run_batch(dispatcher: Dispatcher, action: str, items: list[Any]) -> None:
    dispatcher.dispatch_batch(
        [
            Inbound(
                f"m{n}",
                Source.SQS,
                {"action": action, "group_key": "demo-shop", "data": data},
                None,
                SENT_AT_MS,
            )
            for n, data in enumerate(items)
        ]
    )


def sent(sandbox: Sandbox, dispatcher: Dispatcher, call: Any, operation: str) -> RecordedRequest:  # noqa: F811
    """Make the bridge send ``operation`` and return what reached the sandbox."""
    if operation == "contact_upsert":
        run(dispatcher, "contact.upsert", CONTACT)
    elif operation == "contact_batch_upsert":
        run_batch(
            dispatcher,
            "contact.upsert",
            [CONTACT, {**CONTACT, "email": "ola@customer.example.com", "newEmail": None}],
        )
    elif operation == "contact_delete":
        run(dispatcher, "contact.upsert", {"email": "gone@customer.example.com"})
        run(dispatcher, "contact.delete", {"email": "gone@customer.example.com", "permanently": True})
    elif operation == "contact_list":
        run(dispatcher, "contact.upsert", {"email": "ada@customer.example.com", "tags": ["SPRING"]})
        assert call("GET", "/contact_by_email?email=ada@customer.example.com").status == 200
    elif operation == "contact_list_by_id":
        run(dispatcher, "contact.upsert", {"email": "ada@customer.example.com"})
        contact_id = sandbox.contact("ada@customer.example.com")["id"]
        assert call("GET", f"/contact/{contact_id}").status == 200
    elif operation == "event_create":
        run(dispatcher, "event.create", EVENT)
    elif operation == "event_batch":
        run_batch(dispatcher, "event.create", [EVENT, {**EVENT, "email": "ola@customer.example.com"}])
    elif operation == "product_upsert":
        run(dispatcher, "products.upsert", [PRODUCT, {**PRODUCT_BASE, "id": "SKU-2"}])
    elif operation == "catalog_list":
        list_catalogs(dispatcher.client, dispatcher.groups.get("demo-shop"))
    elif operation == "catalog_upsert":
        catalog = NewCatalog.parse(name="EU", currency="EUR", location="ShopEU", set_as_default=True)
        create_catalog(dispatcher.client, dispatcher.groups.get("demo-shop"), catalog)
    elif operation == "product_update_quantity":
        run(dispatcher, "products.upsert", [PRODUCT, {**PRODUCT_BASE, "id": "SKU-2"}])
        run(dispatcher, "products.stock", [{"id": "SKU-1", "quantity": 0}, {"id": "SKU-2", "quantity": 7}])
    elif operation == "product_update_price":
        run(dispatcher, "products.upsert", [PRODUCT, {**PRODUCT_BASE, "id": "SKU-2"}])
        run(
            dispatcher,
            "products.price",
            [
                {"id": "SKU-1", "price": 489, "special_price": 389.5},
                {"id": "SKU-2", "price": 9, "special_price": None},
            ],
        )
    else:
        raise AssertionError(f"no way to make the bridge send {operation}: add one here")
    path = CORPUS[operation]["path"]
    return [r for r in sandbox.requests if r.path == path][-1]


def test_corpus_covers_every_operation_with_sources_and_confidences() -> None:
    # Given the operations the bridge calls (issue 14): every one needs a sample
    expected = {
        "contact_upsert", "contact_batch_upsert", "contact_delete", "contact_list", "contact_list_by_id",
        "event_create", "event_batch", "product_upsert", "catalog_list", "catalog_upsert",
        "product_update_quantity", "product_update_price",
    }  # fmt: skip

    # Then
    assert set(CORPUS) == expected
    for name, operation in CORPUS.items():
        samples = [operation["request"], *operation["replies"]]
        assert all(s["source"] and s["confidence"] in CONFIDENCES for s in samples), name
        assert {"success"} <= {r["name"] for r in operation["replies"]}, name
        assert any(r["name"] not in ("success", "warning") for r in operation["replies"]), name


@pytest.mark.parametrize("operation", sorted(CORPUS))
def test_request_body_has_the_corpus_shape(
    sandbox: Sandbox,
    dispatcher: Dispatcher,
    call: Any,  # noqa: F811
    operation: str,
) -> None:
    # Given the corpus sample
    sample = CORPUS[operation]["request"]

    # When the bridge sends the operation
    request = sent(sandbox, dispatcher, call, operation)

    # Then
    assert request.method == CORPUS[operation]["method"]
    body = request.body
    if request.path.startswith("/api/") and "clientId" not in sample["body"]:
        assert body.keys() >= AUTH_FIELDS  # checked against contact_upsert's sample, which has them
        body = {key: value for key, value in body.items() if key not in AUTH_FIELDS}
    if sample["body"] is None:
        assert body is None
        return
    maps = frozenset(sample.get("maps", ()))
    assert shape_differences(body, sample["body"], complete=False, maps=maps) == []
    assert [path for path in sample["required"] if not has_path(body, path)] == []
