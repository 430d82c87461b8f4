"""The action registry: one ``ActionSpec`` per action, read by batching, sending, the API's requests
and replies, and the at-most-once paths. An action without a spec fails at import, and ``spec_for``
refuses any other.

Adding an action (docs/architecture.md, "Adding an action"): its ``Action`` member and data model in
commands/data.py; here its request and reply models, its item builder (unless one in mapping.py
fits) and its ``ActionSpec``; its route in functions/api/app.py; its events in template.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from salesmanago_bridge import gateway, senders
from salesmanago_bridge.commands import WriteRequest
from salesmanago_bridge.commands.data import (  # the module a new data model goes in
    DATA_MODELS,
    ITEM_LISTS,
    Action,
    ContactDeleteData,
    ContactUpsertData,
    EventCreateData,
    ProductData,
    ProductPriceData,
    ProductStockData,
)
from salesmanago_bridge.gateway import Operation, SalesmanagoGateway
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.mapping import contact_delete_body, contact_upsert_item, event_item, product_item
from salesmanago_bridge.work import Chunk, Results


# ---- requests of the HTTP API (validated by Powertools; their schemas are in docs/openapi.json) ---
class ContactUpsertRequest(WriteRequest[ContactUpsertData]):
    """The body of ``POST /contacts``."""


class ContactDeleteRequest(WriteRequest[ContactDeleteData]):
    """The body of ``DELETE /contacts``."""


class EventCreateRequest(WriteRequest[EventCreateData]):
    """The body of ``POST /events``."""


class ProductsUpsertRequest(WriteRequest[ProductData]):
    """The body of ``POST /products``."""


class ProductsStockRequest(WriteRequest[ProductStockData]):
    """The body of ``POST /products/stock``."""


class ProductsPriceRequest(WriteRequest[ProductPriceData]):
    """The body of ``POST /products/price``."""


# ---- replies of the HTTP API (their schemas are in docs/openapi.json) --------------------------
class Applied(BaseModel):
    """What every write answers; each action's reply adds the fields of its result."""

    status: Literal["applied"] = "applied"
    action: str
    group_key: str

    @classmethod
    def from_result(cls, action: Action, group_key: str, result: dict[str, Any]) -> Applied:
        """The reply: the model's own fields taken from the result (absent or None: the default)."""
        own = {name: result[name] for name in cls.model_fields if result.get(name) is not None}
        return cls.model_validate({**own, "status": "applied", "action": str(action), "group_key": group_key})


class ContactUpserted(Applied):
    contactId: str | None = Field(None, description="SALESmanago's id of the contact")


class ContactDeleted(Applied):
    deleted: bool
    already_absent: bool = False


class EventCreated(Applied):
    eventId: str | None = Field(None, description="SALESmanago's id of the event")
    warnings: list[str] = Field(
        default_factory=list,
        description="sent anyway, but e.g. `location_mismatch`: the location differs from the catalog's",
    )


class ProductsUpserted(Applied):
    productIds: list[str]
    ignored_fields: list[str] = Field(default_factory=list, description="fields no field map takes")
    warnings: list[str] = Field(
        default_factory=list, description="values trimmed to SALESmanago's limits, and SALESmanago's warnings"
    )


class ProductsUpdated(Applied):
    """The stock or the prices of these products were sent (SALESmanago may answer an id it does
    not hold without a word: docs/salesmanago.md)."""

    productIds: list[str]
    ignored_fields: list[str] = Field(default_factory=list, description="fields no field map takes")
    warnings: list[str] = Field(default_factory=list, description="SALESmanago's warnings")


# ---- item builders: a new action's goes here (the first four actions' are in mapping.py) -------
def product_stock_item(stock: ProductStockData) -> dict[str, Any]:
    """``{"productId", "quantity"}``: all SALESmanago's library sends to ``updateQuantity``.
    No ``available``: it stays as the product's last upsert set it."""
    return {"productId": stock.id, "quantity": stock.quantity}


def product_price_item(prices: ProductPriceData) -> dict[str, Any]:
    """``{"productId", "price", "discountPrice"}``, the three keys the library always sends to
    ``updatePrice``: ``discountPrice: None`` (JSON null) ends a discount."""
    return {"productId": prices.id, "price": prices.price, "discountPrice": prices.special_price}


# ---- the registry ------------------------------------------------------------------------------
class Chunking(StrEnum):
    """How a round's commands of one (group, action) become requests."""

    SINGLE = "single"  # one request per command: no reliable bulk endpoint
    BULK = "bulk"  # commands cut to the batch size
    ITEMS = "items"  # the commands' items (products) packed across commands, cut to the batch size


# (gateway, group, chunk, the spec's item builder) → one result per command of the chunk
Sender = Callable[[SalesmanagoGateway, GroupConfig, Chunk, senders.Build], Results]


@dataclass(frozen=True)
class ActionSpec:
    """Everything the bridge decides per action, in one place."""

    action: Action
    data: type[BaseModel]  # the model of one ``data`` (of one item, for ITEMS): DATA_MODELS[action]
    item: Callable[[Any], dict[str, Any]]  # data → the SALESmanago item (here or in mapping.py)
    operations: tuple[Operation, ...]  # what sending uses (gateway.py)
    chunking: Chunking
    batch_size_setting: str | None  # the Settings attribute that caps a chunk (None: SINGLE)
    send: Sender
    reply: type[Applied]  # the API's answer
    request: type[WriteRequest[Any]] | None  # the API's body (None: no route takes the action)
    # A valid ``data``, made up (example.com, product P1): priming runs it through every source's
    # unwrapping, validation and the item builder at init, so a first command builds nothing.
    example: Any

    @property
    def at_most_once(self) -> bool:
        """Not idempotent upstream: claimed in the event guard, never re-sent blindly."""
        return not all(op.idempotent for op in self.operations)


SPECS: dict[Action, ActionSpec] = {
    spec.action: spec
    for spec in (
        ActionSpec(
            Action.CONTACT_UPSERT,
            data=ContactUpsertData,
            item=contact_upsert_item,
            operations=(gateway.CONTACT_UPSERT, gateway.CONTACT_BATCH_UPSERT),
            chunking=Chunking.BULK,
            batch_size_setting="contact_batch_size",
            send=senders.send_contacts,
            reply=ContactUpserted,
            request=ContactUpsertRequest,
            example={"email": "priming@example.com", "name": "Priming", "tags": ["PRIMING"]},
        ),
        ActionSpec(
            Action.CONTACT_DELETE,
            data=ContactDeleteData,
            item=contact_delete_body,
            operations=(gateway.CONTACT_DELETE,),
            chunking=Chunking.SINGLE,
            batch_size_setting=None,
            send=senders.send_each_delete,
            reply=ContactDeleted,
            request=ContactDeleteRequest,
            example={"email": "priming@example.com"},
        ),
        ActionSpec(
            Action.EVENT_CREATE,
            data=EventCreateData,
            item=event_item,
            operations=(gateway.EVENT_ADD, gateway.EVENT_BATCH_ADD),
            chunking=Chunking.BULK,
            batch_size_setting="event_batch_size",
            send=senders.send_events,
            reply=EventCreated,
            request=EventCreateRequest,
            example={
                "email": "priming@example.com",
                "contactExtEventType": "OTHER",
                "value": 1.5,
                "products": ["P1"],
                "externalId": "priming",
            },
        ),
        ActionSpec(
            Action.PRODUCTS_UPSERT,
            data=ProductData,
            item=product_item,
            operations=(gateway.PRODUCT_UPSERT,),
            chunking=Chunking.ITEMS,
            batch_size_setting="product_batch_size",
            send=senders.send_products,
            reply=ProductsUpserted,
            request=ProductsUpsertRequest,
            example=[
                {
                    "id": "P1",
                    "name": "Priming",
                    "description": "Priming",
                    "category": "Priming",
                    "brand": "Priming",
                    "price": 1.5,
                    "url": "https://shop.example.com/p/1",
                    "image_url": "https://shop.example.com/p/1.jpg",
                }
            ],
        ),
        # Stock and prices alone, packed like products. PRODUCT_BATCH_SIZE (≤ 100) caps them too:
        # no limit is published for these paths; 100 is SALESmanago's library's own package.
        ActionSpec(
            Action.PRODUCTS_STOCK,
            data=ProductStockData,
            item=product_stock_item,
            operations=(gateway.PRODUCT_UPDATE_QUANTITY,),
            chunking=Chunking.ITEMS,
            batch_size_setting="product_batch_size",
            send=senders.send_quantities,
            reply=ProductsUpdated,
            request=ProductsStockRequest,
            example=[{"id": "P1", "quantity": 3}],
        ),
        ActionSpec(
            Action.PRODUCTS_PRICE,
            data=ProductPriceData,
            item=product_price_item,
            operations=(gateway.PRODUCT_UPDATE_PRICE,),
            chunking=Chunking.ITEMS,
            batch_size_setting="product_batch_size",
            send=senders.send_prices,
            reply=ProductsUpdated,
            request=ProductsPriceRequest,
            example=[{"id": "P1", "price": 1.5, "special_price": None}],
        ),
    )
}
# Loud at import: an action nobody can send must not ship, nor a spec at odds with the contract.
if set(SPECS) != set(Action):
    raise RuntimeError(f"actions without an ActionSpec: {sorted(set(Action) - set(SPECS))}")
for _spec in SPECS.values():
    if _spec.data is not DATA_MODELS[_spec.action]:
        raise RuntimeError(f"{_spec.action}: the spec's data model is not DATA_MODELS[{_spec.action!r}]")
    if (_spec.chunking is Chunking.ITEMS) != (_spec.action in ITEM_LISTS):
        raise RuntimeError(f"{_spec.action}: ITEMS chunking is for the actions in ITEM_LISTS, and only them")
    if _spec.request is not None and _spec.request.action() is not _spec.action:
        raise RuntimeError(f"{_spec.action}: its request model is another action's")


class UnknownActionError(LookupError):
    """Raised for an action the registry does not hold: a bug, never routed to another action."""


def spec_for(action: Any) -> ActionSpec:
    """The spec of ``action``.

    Raises:
        UnknownActionError: no spec (never a fallback to another action's).
    """
    try:
        return SPECS[action]
    except (KeyError, TypeError):
        raise UnknownActionError(f"no ActionSpec for action {action!r}") from None


def send_chunk(shop: SalesmanagoGateway, chunk: Chunk, group: GroupConfig | None = None) -> Results:
    """Send ``chunk`` (optionally with a fresher group config); one result per command."""
    spec = spec_for(chunk.action)
    return spec.send(shop, group or chunk.group, chunk, spec.item)
