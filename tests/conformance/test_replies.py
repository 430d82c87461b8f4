"""The sandbox's replies against the corpus: the same keys and JSON types as the samples SALESmanago's
own clients show, so the sandbox cannot drift into agreeing only with the bridge.

Each reply sample is provoked in the sandbox by a scenario below; a sample the sandbox cannot give
is listed in NOT_PRODUCED with the reason.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from local.sandbox import Sandbox
from tests.conformance.conftest import load_corpus, shape_differences

CORPUS = load_corpus()
TIMEOUT_S = 5
CATALOG_ID = "5b2f8f8e-7c1e-4d3a-9a51-0c7d8e1f2a31"  # demo-shop's, local/groups.sample.json
# Corpus samples the sandbox never answers, and why.
NOT_PRODUCED = {
    (
        "contact_delete",
        "success_bare",
    ): "the sandbox always answers JSON; the bridge's tolerance of a bare 200 is tested in test_tolerance.py",
}


class Account:
    """Calls the sandbox as the demo-shop group's account (local/groups.sample.json)."""

    def __init__(self, sandbox: Sandbox, sample_groups: dict[str, Any]) -> None:
        self.sandbox = sandbox
        self.config = sample_groups["demo-shop"]

    def v2(self, path: str, secret: str | None = None, **body: Any) -> tuple[int, Any]:
        api_key = "conformance"
        client_id, secret = self.config["client_id"], secret or self.config["api_secret"]
        sha = hashlib.sha1(f"{api_key}{client_id}{secret}".encode(), usedforsecurity=False).hexdigest()
        auth = {
            "clientId": client_id,
            "apiKey": api_key,
            "sha": sha,
            "requestTime": int(time.time() * 1000),
            "owner": self.config["owner"],
        }
        reply = requests.post(f"{self.sandbox.url}/api/{path}", json={**auth, **body}, timeout=TIMEOUT_S)
        return reply.status_code, reply.json()

    def v3(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        reply = requests.request(
            method,
            f"{self.sandbox.url}/v3/{path}",
            json=body,
            headers={"API-KEY": key or self.config["products_api_key"]},
            timeout=TIMEOUT_S,
        )
        return reply.status_code, reply.json()

    # ---- shared steps
    def upsert(self, email: str, **fields: Any) -> str:
        return self.v2("contact/upsert", contact={"email": email, **fields.pop("contact", {})}, **fields)[1][
            "contactId"
        ]

    def rich_contact(self) -> str:
        contact_id = self.upsert(
            "ada@customer.example.com",
            contact={"name": "Ada", "address": {"city": "Krakow"}},
            tags=["SPRING", "NEWSLETTER"],
            properties={"loyalty": "gold"},
            birthday="19900517",
        )
        self.v2("v2/contact/addContactExtEvent", email="ada@customer.example.com", contactEvent=event())
        return contact_id


def event(**fields: Any) -> dict[str, Any]:
    return {"date": int(time.time() * 1000), "contactExtEventType": "PURCHASE", "value": 12.5, **fields}


def product(**fields: Any) -> dict[str, Any]:
    return {"productId": "SKU-1", "name": "Coat", "price": 10.0, "setAsNull": ["discountPrice"], **fields}


def quantities(*items: dict[str, Any]) -> dict[str, Any]:
    """A stock or price update's body: the catalog and its products."""
    return {"catalogId": CATALOG_ID, "products": list(items)}


def _list_by_id_over_limit(a: Account) -> tuple[int, Any]:
    return a.v2("contact/listById", contactId=[f"id-{n}" for n in range(51)])


SCENARIOS: dict[tuple[str, str], Callable[[Account], tuple[int, Any]]] = {
    ("contact_upsert", "success"): lambda a: a.v2(
        "contact/upsert", contact={"email": "ada@customer.example.com"}
    ),
    ("contact_upsert", "error"): lambda a: a.v2(
        "contact/upsert", secret="wrong", contact={"email": "ada@customer.example.com"}
    ),
    ("contact_batch_upsert", "success"): lambda a: a.v2(
        "contact/batchupsert",
        upsertDetails=[
            {"contact": {"email": "ola@customer.example.com"}},
            {"contact": {"email": "ewa@customer.example.com"}},
        ],
    ),
    ("contact_batch_upsert", "error"): lambda a: (
        a.sandbox.reject_email("bad@customer.example.com"),
        a.v2("contact/batchupsert", upsertDetails=[{"contact": {"email": "bad@customer.example.com"}}]),
    )[1],
    ("contact_delete", "success"): lambda a: (
        a.upsert("gone@customer.example.com"),
        a.v2("contact/delete", email="gone@customer.example.com"),
    )[1],
    ("contact_delete", "error"): lambda a: a.v2("contact/delete", email="nobody@customer.example.com"),
    ("contact_list", "success"): lambda a: (
        a.rich_contact(),
        a.v2("contact/list", email=["ada@customer.example.com"]),
    )[1],
    ("contact_list", "error"): lambda a: a.v2(
        "contact/list", email=[f"c{n}@customer.example.com" for n in range(51)]
    ),
    ("contact_list_by_id", "success"): lambda a: a.v2("contact/listById", contactId=[a.rich_contact()]),
    ("contact_list_by_id", "error"): _list_by_id_over_limit,
    ("event_create", "success"): lambda a: a.v2(
        "v2/contact/addContactExtEvent",
        email="ada@customer.example.com",
        contactEvent=event(location="MyShop"),
    ),
    ("event_create", "error"): lambda a: a.v2(
        "v2/contact/addContactExtEvent",
        email="ada@customer.example.com",
        contactEvent=event(contactExtEventType="ORDER"),
    ),
    ("event_batch", "success"): lambda a: a.v2(
        "v2/contact/addBatchContactExtEvent",
        events=[{"email": "ada@customer.example.com", "contactEvent": event()}],
    ),
    ("event_batch", "partial"): lambda a: (
        a.sandbox.reject_email("bad@customer.example.com"),
        a.v2(
            "v2/contact/addBatchContactExtEvent",
            events=[
                {"email": "ada@customer.example.com", "contactEvent": event()},
                {"email": "bad@customer.example.com", "contactEvent": event()},
            ],
        ),
    )[1],
    ("event_batch", "error"): lambda a: a.v2("v2/contact/addBatchContactExtEvent", events=[]),
    ("product_upsert", "success"): lambda a: a.v3(
        "POST", "product/upsert", {"catalogId": CATALOG_ID, "products": [product()]}
    ),
    ("product_upsert", "warning"): lambda a: (
        setattr(a.sandbox, "warn_trim", True),
        a.v3("POST", "product/upsert", {"catalogId": CATALOG_ID, "products": [product()]}),
    )[1],
    ("product_upsert", "field_errors"): lambda a: a.v3(
        "POST",
        "product/upsert",
        {"catalogId": CATALOG_ID, "products": [product(systemDetails={"brand": "b" * 256})]},
    ),
    ("product_upsert", "auth_error"): lambda a: a.v3(
        "POST", "product/upsert", {"catalogId": CATALOG_ID}, key="old"
    ),
    ("product_update_quantity", "success"): lambda a: (
        a.v3("POST", "product/upsert", {"catalogId": CATALOG_ID, "products": [product()]}),
        a.v3("POST", "product/updateQuantity", quantities({"productId": "SKU-1", "quantity": 0})),
    )[1],
    ("product_update_quantity", "unknown_product"): lambda a: (
        a.v3("POST", "product/upsert", {"catalogId": CATALOG_ID, "products": [product()]}),
        a.v3(
            "POST",
            "product/updateQuantity",
            quantities({"productId": "SKU-1", "quantity": 1}, {"productId": "SKU-404", "quantity": 1}),
        ),
    )[1],
    ("product_update_quantity", "field_errors"): lambda a: a.v3(
        "POST", "product/updateQuantity", quantities({"productId": "SKU-1", "quantity": 1.5})
    ),
    ("product_update_quantity", "auth_error"): lambda a: a.v3(
        "POST", "product/updateQuantity", quantities(), key="old"
    ),
    ("product_update_price", "success"): lambda a: (
        a.v3("POST", "product/upsert", {"catalogId": CATALOG_ID, "products": [product()]}),
        a.v3(
            "POST",
            "product/updatePrice",
            quantities({"productId": "SKU-1", "price": 9.5, "discountPrice": None}),
        ),
    )[1],
    ("product_update_price", "unknown_product"): lambda a: (
        a.v3("POST", "product/upsert", {"catalogId": CATALOG_ID, "products": [product()]}),
        a.v3(
            "POST",
            "product/updatePrice",
            quantities({"productId": "SKU-1", "price": 1}, {"productId": "SKU-404", "price": 1}),
        ),
    )[1],
    ("product_update_price", "field_errors"): lambda a: a.v3(
        "POST", "product/updatePrice", quantities({"productId": "SKU-1", "price": 9.999})
    ),
    ("product_update_price", "auth_error"): lambda a: a.v3(
        "POST", "product/updatePrice", quantities(), key="old"
    ),
    ("catalog_list", "success"): lambda a: a.v3("GET", "product/catalogList"),
    ("catalog_list", "auth_error"): lambda a: a.v3("GET", "product/catalogList", key="old"),
    ("catalog_upsert", "success"): lambda a: a.v3(
        "POST", "product/catalogUpsert", {"catalogName": "EU", "currency": "EUR", "location": "ShopEU"}
    ),
    ("catalog_upsert", "field_errors"): lambda a: a.v3(
        "POST", "product/catalogUpsert", {"catalogName": "EU", "currency": "EUR", "location": "shop-eu.pl"}
    ),
}
REPLY_NAMES = sorted({(op, reply["name"]) for op, spec in CORPUS.items() for reply in spec["replies"]})


def test_every_reply_sample_has_a_scenario_or_a_reason() -> None:
    assert set(REPLY_NAMES) == set(SCENARIOS) | set(NOT_PRODUCED)


@pytest.mark.parametrize(("operation", "name"), [n for n in REPLY_NAMES if n not in NOT_PRODUCED])
def test_sandbox_reply_has_the_corpus_shape(
    sandbox: Sandbox, sample_groups: dict[str, Any], operation: str, name: str
) -> None:
    # Given the corpus samples of this reply (an unknown real shape has several: any may match)
    samples = [r for r in CORPUS[operation]["replies"] if r["name"] == name]

    # When the sandbox is made to give that reply
    status, body = SCENARIOS[(operation, name)](Account(sandbox, sample_groups))

    # Then it matches one of them: same status, same keys, same JSON types
    verdicts = [
        [f"status {status}, the corpus has {s['status']}"] * (status != s["status"])
        + shape_differences(
            body,
            s["body"],
            complete=True,
            optional=frozenset(s.get("optional", ())),
            maps=frozenset(s.get("maps", ())),
        )
        for s in samples
    ]
    assert min(verdicts, key=len) == [], f"{operation} {name}: {verdicts}"
