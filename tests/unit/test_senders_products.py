"""Packing the items of many commands into one v3 products write, and mapping the reply back per
command: the products a refusal names fail their own command alone, the others are sent again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from salesmanago_bridge.commands import CommandEnvelope
from salesmanago_bridge.errors import (
    FieldProblem,
    GroupConfigError,
    SalesmanagoRejectedError,
    UnavailableError,
)
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.senders import write_products
from salesmanago_bridge.sources import Inbound, Source
from salesmanago_bridge.work import ProductItem, Work
from tests.conftest import PRODUCT_BASE

GROUP = GroupConfig.model_validate(
    {
        "client_id": "c",
        "api_secret": "s",
        "owner": "owner@shop.example",
        "endpoint": "https://app3.salesmanago.com",
        "products_api_key": "pk",
        "catalog_id": "cat-1",
    }
)


@dataclass(frozen=True)
class Stock:
    id: str
    quantity: int


def build(stock: Stock) -> dict[str, Any]:
    return {"productId": stock.id, "quantity": stock.quantity}


def items(*lists: list[str]) -> list[ProductItem]:
    """The items of one command per list of product ids, in arrival order."""
    packed = []
    for position, ids in enumerate(lists):
        data = [{**PRODUCT_BASE, "id": product_id} for product_id in ids]
        command = CommandEnvelope.parse(
            {"action": "products.upsert", "group_key": "g", "data": data}
        ).to_command()
        work = Work(position, Inbound(f"m{position}", Source.SQS, {}), command, GROUP)
        packed += [ProductItem(work, index, Stock(pid, index)) for index, pid in enumerate(ids)]
    return packed


class Writes:
    """A gateway write that records each request's product ids and answers by a rule."""

    def __init__(self, answer: Any = None) -> None:
        self.answer = answer or (lambda ids: ["w"])
        self.requests: list[list[str]] = []

    def __call__(
        self, group: GroupConfig, catalog_id: str, bodies: list[dict[str, Any]], *, action: str
    ) -> Any:
        assert (group, catalog_id, action) == (GROUP, "cat-1", "products.upsert")
        ids = [body["productId"] for body in bodies]
        self.requests.append(ids)
        return self.answer(ids)


def refused(*problems: tuple[str, str], status: int = 400) -> SalesmanagoRejectedError:
    """What the client raises for a v3 reply with these (field, text) problems."""
    details = [FieldProblem(field, text) for field, text in problems]
    return SalesmanagoRejectedError(
        "SALESmanago rejected the request: field problems", details=details, status=status
    )


def raising(error: Exception) -> Any:
    def answer(ids: list[str]) -> list[str]:
        raise error

    return answer


def test_items_of_many_commands_share_one_request_and_each_command_gets_its_ids() -> None:
    # Given three commands of 2, 3 and 1 products
    write = Writes()

    # When
    results = write_products(write, GROUP, items(["a", "b"], ["c", "d", "e"], ["f"]), build)

    # Then one request carried all six, and each command's result names its own products
    assert write.requests == [["a", "b", "c", "d", "e", "f"]]
    assert results == {
        0: {"productIds": ["a", "b"], "warnings": ["w"]},
        1: {"productIds": ["c", "d", "e"], "warnings": ["w"]},
        2: {"productIds": ["f"], "warnings": ["w"]},
    }


@pytest.mark.parametrize("status", [400, 200], ids=["nothing-applied", "others-applied"])
def test_unknown_product_fails_only_its_own_command_with_the_reason(status: int) -> None:
    # Given SALESmanago naming product "x" (index 2 of the request) as unknown, in either reply shape
    def answer(ids: list[str]) -> list[str]:
        if "x" in ids:
            raise refused(
                (f"products[{ids.index('x')}].productId", "Product not found (reason 16)"), status=status
            )
        return []

    write = Writes(answer)

    # When
    results = write_products(write, GROUP, items(["a", "b"], ["c", "x"], ["d"]), build)

    # Then its command alone fails, naming its own item and SALESmanago's reason; the others are
    # sent again without that command's products (setting a value twice is harmless)
    error = results[1]
    assert isinstance(error, SalesmanagoRejectedError) and not error.retryable
    assert error.details == [
        FieldProblem("data[1] (SALESmanago field productId)", "Product not found (reason 16)")
    ]
    assert results[0] == {"productIds": ["a", "b"], "warnings": []}
    assert results[2] == {"productIds": ["d"], "warnings": []}
    assert write.requests == [["a", "b", "c", "x", "d"], ["a", "b", "d"]]


def test_refusal_naming_no_product_is_split_until_the_culprit_is_alone() -> None:
    # Given a refusal that names no index whenever "x" is in the request
    def answer(ids: list[str]) -> list[str]:
        if "x" in ids:
            raise refused(("body", "Something is wrong (reason 14)"))
        return []

    write = Writes(answer)
    batch = items(*[[f"p{n}"] for n in range(7)], ["x"])

    # When
    results = write_products(write, GROUP, batch, build)

    # Then only the command holding "x" fails, in about log2(8) extra requests
    assert [p for p, r in results.items() if isinstance(r, SalesmanagoRejectedError)] == [7]
    assert len(write.requests) <= 1 + 2 * 3


def test_catalog_refusal_fails_every_command_without_resending() -> None:
    write = Writes(raising(refused(("catalogId", "Catalog not found (reason 16)"))))
    results = write_products(write, GROUP, items(["a"], ["b"]), build)
    assert len(write.requests) == 1
    assert all(isinstance(r, SalesmanagoRejectedError) for r in results.values())


def test_transient_failure_fails_the_chunk_retryably_once() -> None:
    write = Writes(raising(UnavailableError("down")))
    results = write_products(write, GROUP, items(["a"], ["b"]), build)
    assert len(write.requests) == 1
    assert all(isinstance(r, UnavailableError) and r.retryable for r in results.values())


def test_group_without_a_catalog_sends_nothing() -> None:
    write = Writes()
    group = GROUP.model_copy(update={"catalog_id": None})
    batch = [
        ProductItem(Work(i.work.position, i.work.inbound, i.work.command, group), i.index, i.product)
        for i in items(["a"])
    ]
    results = write_products(write, group, batch, build)
    assert write.requests == []
    assert isinstance(results[0], GroupConfigError)
