"""The SALESmanago gateway: each operation's path, body envelope and reading of the reply."""

from __future__ import annotations

from typing import Any

import pytest

from salesmanago_bridge import gateway
from salesmanago_bridge.catalogs import NewCatalog
from salesmanago_bridge.errors import (
    AuthError,
    FieldProblem,
    SalesmanagoRejectedError,
    UnavailableError,
)
from salesmanago_bridge.gateway import SalesmanagoGateway

GROUP: Any = object()  # the gateway hands the group to the transport untouched


class Recorder:
    """A transport that records each call and answers with the next prepared reply (or raises it)."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[str, str, Any, str]] = []

    def _next(self) -> Any:
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def call_v2(self, group: Any, path: str, body: dict[str, Any], *, action: str) -> dict[str, Any]:
        assert group is GROUP
        self.calls.append(("v2", path, body, action))
        return self._next()

    def call_v3(
        self, group: Any, method: str, path: str, body: dict[str, Any] | None = None, *, action: str
    ) -> tuple[dict[str, Any], list[str]]:
        self.calls.append((f"v3 {method}", path, body, action))
        return self._next()


def test_upsert_contact_posts_the_item_and_reads_the_id() -> None:
    transport = Recorder({"success": True, "contactId": "c-1"})
    assert SalesmanagoGateway(transport).upsert_contact(GROUP, {"email": "a@x.pl"}, action="a") == "c-1"
    assert transport.calls == [("v2", "contact/upsert", {"email": "a@x.pl"}, "a")]


def test_upsert_contacts_wraps_items_and_keys_ids_by_lowercased_email() -> None:
    transport = Recorder({"success": True, "contactIds": {"A@X.pl": "c-1"}})
    ids = SalesmanagoGateway(transport).upsert_contacts(GROUP, [{"email": "A@X.pl"}], action="a")
    assert ids == {"a@x.pl": "c-1"}
    assert transport.calls[0][1:3] == ("contact/batchupsert", {"upsertDetails": [{"email": "A@X.pl"}]})


@pytest.mark.parametrize("message", ["Contact not found", "contact does not exist", "No such contact"])
def test_delete_of_an_absent_contact_is_not_an_error(message: str) -> None:
    transport = Recorder(SalesmanagoRejectedError(f"SALESmanago rejected the request: {message}"))
    assert SalesmanagoGateway(transport).delete_contact(GROUP, {"email": "a@x.pl"}, action="d") is False
    assert transport.calls[0][1] == "contact/delete"


def test_delete_refused_for_another_reason_raises() -> None:
    refusal = SalesmanagoRejectedError("SALESmanago rejected the request: owner is wrong")
    with pytest.raises(SalesmanagoRejectedError):
        SalesmanagoGateway(Recorder(refusal)).delete_contact(GROUP, {"email": "a@x.pl"}, action="d")


def test_delete_applied_is_true() -> None:
    assert SalesmanagoGateway(Recorder({"success": True})).delete_contact(GROUP, {}, action="d") is True


def test_add_events_reads_failed_contacts_in_either_shape() -> None:
    reply = {"success": True, "failedContacts": ["A@x.pl", {"email": "b@x.pl"}, {"id": 3}], "failedAmount": 3}
    transport = Recorder(reply)
    batch = SalesmanagoGateway(transport).add_events(GROUP, [{"email": "a@x.pl"}], action="e")
    assert batch == gateway.EventBatchReply({"a@x.pl", "b@x.pl"}, 3)
    assert transport.calls[0][1:3] == (
        "v2/contact/addBatchContactExtEvent",
        {"events": [{"email": "a@x.pl"}]},
    )


def test_add_event_reads_the_event_id() -> None:
    transport = Recorder({"success": True, "eventId": "e-1"})
    assert SalesmanagoGateway(transport).add_event(GROUP, {"email": "a@x.pl"}, action="e") == "e-1"
    assert transport.calls[0][1] == "v2/contact/addContactExtEvent"


def test_contact_events_marks_unreadable_shapes() -> None:
    contacts = [
        {"email": "A@x.pl", "contactExtEvents": [{"contactExtEventType": "PURCHASE", "date": 1}]},
        {"email": "b@x.pl"},
        {"email": "c@x.pl", "contactExtEvents": [{"type": "PURCHASE"}]},
    ]
    transport = Recorder({"success": True, "contacts": contacts})
    events = SalesmanagoGateway(transport).contact_events(GROUP, ["a@x.pl"], action="e")
    assert events == {
        "a@x.pl": [{"contactExtEventType": "PURCHASE", "date": 1}],
        "b@x.pl": None,
        "c@x.pl": None,
    }
    assert transport.calls[0][1:3] == ("contact/list", {"email": ["a@x.pl"]})


def test_contact_reads_by_id_and_by_email() -> None:
    transport = Recorder({"success": True, "contacts": [{"id": "1"}]}, {"success": True})
    reads = SalesmanagoGateway(transport)
    assert reads.contacts_by_id(GROUP, ["1"], action="r") == [{"id": "1"}]
    assert reads.contacts_by_email(GROUP, ["a@x.pl"], action="r") == []
    assert [call[1:3] for call in transport.calls] == [
        ("contact/listById", {"contactId": ["1"]}),
        ("contact/list", {"email": ["a@x.pl"]}),
    ]


def test_upsert_products_sends_the_catalog_and_returns_warnings() -> None:
    transport = Recorder(({}, ["trimmed"]))
    warnings = SalesmanagoGateway(transport).upsert_products(GROUP, "cat-1", [{"productId": "p"}], action="p")
    assert warnings == ["trimmed"]
    assert transport.calls == [
        ("v3 POST", "product/upsert", {"catalogId": "cat-1", "products": [{"productId": "p"}]}, "p")
    ]


@pytest.mark.parametrize(
    ("method", "path", "item"),
    [
        ("update_quantities", "product/updateQuantity", {"productId": "p", "quantity": 0}),
        ("update_prices", "product/updatePrice", {"productId": "p", "price": 9.5, "discountPrice": None}),
    ],
)
def test_stock_and_price_updates_send_the_catalog_envelope_and_return_warnings(
    method: str, path: str, item: dict[str, Any]
) -> None:
    # Given / When
    transport = Recorder(({"requestId": "r-1"}, ["w"]))
    warnings = getattr(SalesmanagoGateway(transport), method)(GROUP, "cat-1", [item], action="a")

    # Then the body is {"catalogId", "products"} as the library's ProductsModel builds it; a null
    # discountPrice is kept (it is how the library says "no discount price")
    assert warnings == ["w"]
    assert transport.calls == [("v3 POST", path, {"catalogId": "cat-1", "products": [item]}, "a")]


def test_stock_and_price_updates_are_idempotent_operations() -> None:
    # Setting an absolute quantity or price twice leaves the same state: never claimed, re-sent freely
    assert gateway.PRODUCT_UPDATE_QUANTITY.idempotent and gateway.PRODUCT_UPDATE_PRICE.idempotent
    assert {gateway.PRODUCT_UPDATE_QUANTITY, gateway.PRODUCT_UPDATE_PRICE} <= set(gateway.OPERATIONS)


def test_list_catalogs_reads_either_name_key_and_the_limit() -> None:
    reply = {
        "catalogs": [{"catalogId": "1", "catalogName": "Shop"}, {"name": "no id"}, "junk"],
        "limits": {"max": 5},
    }
    listed = SalesmanagoGateway(Recorder((reply, []))).list_catalogs(GROUP, action="l")
    assert listed.catalogs == [gateway.Catalog("1", "Shop", None, None)]
    assert listed.max_catalogs == 5


def test_create_catalog_sends_catalog_name_and_needs_an_id_back() -> None:
    catalog = NewCatalog.parse(name="Shop", currency="PLN", location="shop_pl")
    transport = Recorder(({"catalogId": "c-9"}, []), ({}, []))
    shop = SalesmanagoGateway(transport)
    assert shop.create_catalog(GROUP, catalog, action="c") == "c-9"
    assert transport.calls[0][2] == {
        "catalogName": "Shop",
        "currency": "PLN",
        "location": "shop_pl",
        "setAsDefault": False,
    }
    with pytest.raises(UnavailableError):
        shop.create_catalog(GROUP, catalog, action="c")


def test_request_level_refusals_are_recognised_by_their_text() -> None:
    assert gateway.is_request_level(AuthError("x"))
    assert gateway.is_request_level(SalesmanagoRejectedError("Owner not found"))
    assert gateway.is_request_level(SalesmanagoRejectedError("no such catalog"))
    assert not gateway.is_request_level(SalesmanagoRejectedError("email is invalid"))


def test_product_problems_name_products_or_blame_the_request() -> None:
    named = SalesmanagoRejectedError(
        "field problems",
        details=[FieldProblem("products[2].name", "too long"), FieldProblem("products[0]", "bad")],
    )
    assert gateway.product_problems(named) == [
        gateway.ProductProblem(2, "name", "too long"),
        gateway.ProductProblem(0, "", "bad"),
    ]
    catalog = SalesmanagoRejectedError("field problems", details=[FieldProblem("catalogId", "unknown")])
    assert gateway.product_problems(catalog) is None


def test_unknown_product_on_a_successful_reply_is_still_named() -> None:
    # Given the alternative shape: HTTP 200, others applied, one product refused with reason 16
    refusal = SalesmanagoRejectedError(
        "SALESmanago rejected the request: field problems",
        details=[FieldProblem("products[1].productId", "Product not found (reason 16)")],
        status=200,
    )
    # Then
    assert gateway.product_problems(refusal) == [
        gateway.ProductProblem(1, "productId", "Product not found (reason 16)")
    ]


def test_only_the_event_operations_are_at_most_once() -> None:
    assert set(gateway.AT_MOST_ONCE_PATHS) == {"addContactExtEvent", "addBatchContactExtEvent"}
    assert all(
        op.idempotent for op in gateway.OPERATIONS if op not in (gateway.EVENT_ADD, gateway.EVENT_BATCH_ADD)
    )
