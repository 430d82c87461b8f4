"""Where the corpus holds more than one plausible shape of a real reply, the bridge reads each.

The samples are fed to the bridge's own reply reading, not to the sandbox (which answers one shape).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from salesmanago_bridge.batching import Work
from salesmanago_bridge.catalogs import read_catalog
from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.commands import CommandEnvelope
from salesmanago_bridge.dispatch import Dispatcher, find_event
from salesmanago_bridge.errors import OutcomeUnknownError, SalesmanagoRejectedError
from salesmanago_bridge.gateway import SalesmanagoGateway, product_problems
from salesmanago_bridge.groups import FileGroupStore, GroupConfig
from salesmanago_bridge.mapping import contact_view, event_item
from salesmanago_bridge.senders import add_events
from salesmanago_bridge.settings import Settings
from salesmanago_bridge.sources import Inbound, Source
from tests.conformance.conftest import load_corpus

CORPUS = load_corpus()


def samples(operation: str, name: str) -> list[dict[str, Any]]:
    return [r for r in CORPUS[operation]["replies"] if r["name"] == name]


class RepliesWith:
    """A client stand-in answering the batch call with a corpus sample, a single call with an id."""

    def __init__(self, batch_reply: dict[str, Any]) -> None:
        self.batch_reply = batch_reply
        self.single_calls: list[str] = []

    def call_v2(self, group: GroupConfig, path: str, body: dict[str, Any], *, action: str) -> dict[str, Any]:
        if path.endswith("addBatchContactExtEvent"):
            return self.batch_reply
        self.single_calls.append(body["email"])
        return {"success": True, "message": [], "eventId": "single-1"}


def event_work(position: int, email: str) -> Work:
    data = {"email": email, "contactExtEventType": "PURCHASE", "date": 1_714_557_600_000}
    command = CommandEnvelope.parse({"action": "event.create", "group_key": "g", "data": data}).to_command()
    return Work(position, Inbound(f"m{position}", Source.SQS, {}), command, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reply",
    samples("event_batch", "partial"),
    ids=lambda r: r["confidence"] + str(r.get("alternative", False)),
)
def test_batch_events_failed_contacts_read_in_either_shape(reply: dict[str, Any]) -> None:
    # Given a batch of two whose second e-mail the sample names as failed
    client = RepliesWith(reply["body"])
    works = [event_work(0, "ada@customer.example.com"), event_work(1, "bad@customer.example.com")]

    # When
    results = add_events(SalesmanagoGateway(client), None, works, event_item)  # type: ignore[arg-type]

    # Then the failed one alone is re-sent for its own answer; the created one is not doubted
    assert client.single_calls == ["bad@customer.example.com"]
    assert results[0] == {"eventId": None, "batched": True}
    assert not isinstance(results[0], OutcomeUnknownError)


@pytest.mark.parametrize("reply", samples("catalog_list", "success"), ids=lambda r: r["confidence"])
def test_listed_catalog_read_in_either_shape(reply: dict[str, Any]) -> None:
    # Given / When
    [catalog] = [read_catalog(raw) for raw in reply["body"]["catalogs"]]

    # Then
    assert catalog is not None
    assert (catalog.catalog_id, catalog.name, catalog.location) == (
        "0b7c1d2e-0000-4000-8000-0000000000c1", "Main", "MyShop",
    )  # fmt: skip


@pytest.mark.parametrize("operation", ["contact_list", "contact_list_by_id"])
def test_contact_read_from_the_real_reply_shape(operation: str) -> None:
    # Given / When
    [reply] = samples(operation, "success")
    [view] = [contact_view(raw) for raw in reply["body"]["contacts"]]

    # Then the tags come from contactTags, in SALESmanago's order
    expected = {"contact_list": ["SPRING"], "contact_list_by_id": ["NEWSLETTER"]}[operation]
    assert view.tags == expected
    assert view.sm_id == "3e1c9a52-0000-4000-8000-00000000a001"


@pytest.mark.parametrize("stored", CORPUS["contact_list"]["contact_ext_event"]["alternatives"])
def test_stored_event_found_whether_its_id_is_event_id_or_id(stored: dict[str, Any]) -> None:
    # Given a doubtful event the bridge sent, with its externalId
    data = {
        "email": "ada@customer.example.com",
        "contactExtEventType": "PURCHASE",
        "date": 1_714_557_600_000,
        "value": 12.5,
        "externalId": "order-1",
    }
    command = CommandEnvelope.parse({"action": "event.create", "group_key": "g", "data": data}).to_command()

    # When
    match = find_event([stored], command)

    # Then
    assert match is not None and (match.get("eventId") or match.get("id"))


class Answers(BaseAdapter):
    """A corpus sample's status (200 by default) and body, or no body at all when it has none."""

    def __init__(self, body: Any, status: int = 200) -> None:
        super().__init__()
        self.body = b"" if body is None else json.dumps(body).encode()
        self.status = status

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code, response._content, response.url = self.status, self.body, request.url
        response.headers["Content-Type"] = "application/json"
        response.request = request
        return response

    def close(self) -> None:
        pass


@pytest.mark.parametrize("name", ["success", "success_bare"])
def test_delete_answered_as_json_or_bare_200_is_success(groups_file: Path, name: str) -> None:
    # Given SALESmanago answering the delete with one of the corpus' successes
    [reply] = samples("contact_delete", name)
    session = requests.Session()
    session.mount("http://", Answers(reply["body"]))
    settings = Settings.model_validate({"SALESMANAGO_GROUPS_FILE": str(groups_file)})
    client = SalesmanagoClient(settings, session=session)
    group = FileGroupStore(groups_file).get("demo-shop")

    # When
    answer = client.call_v2(
        group, "contact/delete", {"email": "gone@customer.example.com"}, action="contact.delete"
    )

    # Then
    assert answer["success"] is True


@pytest.mark.parametrize(
    "contact",
    [
        {"email": "ada@customer.example.com"},
        {"email": "ada@customer.example.com", "contactExtEvents": [{"type": "PURCHASE", "time": 1}]},
    ],
    ids=["no-events-key", "unknown-item-shape"],
)
def test_doubtful_event_not_resent_when_the_events_cannot_be_read(
    groups_file: Path, contact: dict[str, Any]
) -> None:
    # Given a doubtful event, and a contact/list reply whose events the bridge cannot read
    class Lists:
        def call_v2(self, group: Any, path: str, body: dict[str, Any], *, action: str) -> dict[str, Any]:
            return {"success": True, "message": [], "contacts": [contact]}

    settings = Settings.model_validate({"SALESMANAGO_GROUPS_FILE": str(groups_file)})
    dispatcher = Dispatcher(settings, FileGroupStore(groups_file), Lists(), None)  # type: ignore[arg-type]
    work = event_work(0, "ada@customer.example.com")

    # When
    found, unsent = dispatcher._reconcile([work])

    # Then it stays doubtful (handed back, reconciled later), it is not sent again
    assert unsent == []
    assert isinstance(found[0], OutcomeUnknownError)


def gateway_answering(groups_file: Path, reply: dict[str, Any]) -> tuple[SalesmanagoGateway, GroupConfig]:
    """The gateway over the real client, SALESmanago answering with ``reply`` (a corpus sample)."""
    session = requests.Session()
    session.mount("http://", Answers(reply["body"], reply["status"]))
    settings = Settings.model_validate(
        {"SALESMANAGO_GROUPS_FILE": str(groups_file), "SALESMANAGO_MAX_RETRIES": 0}
    )
    return SalesmanagoGateway(SalesmanagoClient(settings, session=session)), FileGroupStore(groups_file).get(
        "demo-shop"
    )


UPDATES = {"product_update_quantity": "update_quantities", "product_update_price": "update_prices"}


@pytest.mark.parametrize(
    ("operation", "reply"),
    [(op, r) for op in UPDATES for r in samples(op, "success")],
    ids=lambda v: v if isinstance(v, str) else v["confidence"] + str(v.get("alternative", False)),
)
def test_update_success_read_in_every_plausible_shape(
    groups_file: Path, operation: str, reply: dict[str, Any]
) -> None:
    # Given SALESmanago answering a stock or price update with one of the corpus' successes
    shop, group = gateway_answering(groups_file, reply)
    item = CORPUS[operation]["request"]["body"]["products"][0]

    # When / Then: applied, no warnings (a requestId alone, or with productIds)
    assert getattr(shop, UPDATES[operation])(group, "cat-1", [item], action="a") == []


@pytest.mark.parametrize(
    ("operation", "reply"),
    [(op, r) for op in UPDATES for r in samples(op, "unknown_product")],
    ids=lambda v: v if isinstance(v, str) else f"status{v['status']}",
)
def test_unknown_product_read_back_to_its_item_in_every_plausible_shape(
    groups_file: Path, operation: str, reply: dict[str, Any]
) -> None:
    # Given SALESmanago naming the second product as unknown, on a 400 or on a 200
    shop, group = gateway_answering(groups_file, reply)
    items = CORPUS[operation]["request"]["body"]["products"]

    # When
    with pytest.raises(SalesmanagoRejectedError) as refused:
        getattr(shop, UPDATES[operation])(group, "cat-1", items, action="a")

    # Then the refusal names that product by its index, with SALESmanago's reason
    [problem] = product_problems(refused.value) or []
    assert (problem.index, problem.field) == (1, "productId")
    assert "reason 16" in problem.problem
