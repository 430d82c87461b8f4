"""What each action's ``data`` may hold: the actions, their data models and their limits.

Field names are the ones our users have always sent, so the models keep them as they are
(camelCase for contacts and events, snake_case for products). A model's docstring is its
description in docs/openapi.json.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    create_model,
    model_serializer,
    model_validator,
)

from salesmanago_bridge.fields import (
    CHECK_URL,
    Birthday,
    Email,
    EpochMs,
    EventValue,
    Money,
    PropertyValue,
    Tag,
    Text,
    at_most,
    join_ids,
    text,
    url_text,
)


class Action(StrEnum):
    """The write operations; also the EventBridge ``detail-type``."""

    CONTACT_UPSERT = "contact.upsert"
    CONTACT_DELETE = "contact.delete"
    EVENT_CREATE = "event.create"
    PRODUCTS_UPSERT = "products.upsert"
    PRODUCTS_STOCK = "products.stock"
    PRODUCTS_PRICE = "products.price"


# salesmanago-api.md §3: the 13 types older integrations know, then the 12 added later.
LEGACY_EVENT_TYPES = (
    "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED",
    "ACTIVATION", "MEETING", "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION",
)  # fmt: skip
EVENT_TYPES = (
    *LEGACY_EVENT_TYPES,
    "CANCELLATION", "RETURN", "SURVEY", "APP_STATUS", "APP_TYPE_WEB", "APP_TYPE_MANUAL",
    "APP_TYPE_RETENTION", "APP_TYPE_UPSALE", "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN", "REPEATED_LOAN",
)  # fmt: skip
# mypy cannot read a Literal of a tuple built at runtime; pydantic can (one list, EVENT_TYPES)
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
ContactState = Literal["CUSTOMER", "PROSPECT", "PARTNER", "OTHER", "UNKNOWN"]

EVENT_LOCATION_MAX_LENGTH = 255  # SALESmanago's library trims an event's location here
# What the validators of an event's products and date accept, beyond what their types say.
PRODUCT_IDS_SCHEMA = {
    "anyOf": [{"type": "string", "maxLength": 512}, {"type": "array", "items": {"type": "string"}}]
}
EVENT_DATE_SCHEMA = {
    "anyOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
    "description": "epoch milliseconds or ISO 8601; default: when the request arrived",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class ConsentDetail(_Model):
    consentName: Annotated[str, text(255, 1)]
    consentAccept: bool
    agreementDate: EpochMs | None = None
    ip: Text | None = None
    optOut: bool | None = None


class ContactUpsertData(_Model):
    """The contact."""

    email: Email
    name: Text | None = None
    phone: Text | None = None
    fax: Text | None = None
    company: Text | None = None
    streetAddress: Text | None = None
    zipCode: Text | None = None
    city: Text | None = None
    country: Text | None = None
    newEmail: Email | None = None
    externalId: Text | None = None
    state: ContactState | None = None
    tags: list[Tag] | None = None
    removeTags: list[Tag] | None = None
    properties: dict[Annotated[str, text(255, 1)], PropertyValue] | None = None
    birthday: Birthday | None = None
    province: Text | None = None
    lang: Text | None = None
    forceOptIn: bool | None = None
    forceOptOut: bool | None = None
    forcePhoneOptIn: bool | None = None
    forcePhoneOptOut: bool | None = None
    consentDetails: list[ConsentDetail] | None = None

    @model_validator(mode="after")
    def _opt_in_xor_out(self) -> ContactUpsertData:
        if self.forceOptIn and self.forceOptOut:
            raise ValueError("forceOptIn and forceOptOut cannot both be true")
        if self.forcePhoneOptIn and self.forcePhoneOptOut:
            raise ValueError("forcePhoneOptIn and forcePhoneOptOut cannot both be true")
        return self


class ContactDeleteData(_Model):
    """The contact to delete."""

    email: Email
    permanently: bool = False


# create_model makes the 20 detail fields; mypy sees neither the call's keywords nor the class it
# returns as a base, hence the two ignores below and on EventCreateData (and ProductData likewise).
_EventDetails = create_model(  # detail1 ... detail20, each at most 255 characters
    "_EventDetails",
    __base__=_Model,
    **{f"detail{n}": (Text | None, None) for n in range(1, 21)},  # type: ignore[call-overload]
)


class EventCreateData(_EventDetails):  # type: ignore[misc, valid-type]
    """The external event."""

    email: Email
    contactExtEventType: EventType
    description: Annotated[str, text(2048)] | None = None
    products: Annotated[
        Annotated[str, BeforeValidator(join_ids), AfterValidator(at_most(512))] | None,
        WithJsonSchema(PRODUCT_IDS_SCHEMA),
    ] = None
    location: Annotated[str, text(EVENT_LOCATION_MAX_LENGTH)] | None = None
    value: EventValue | None = None
    externalId: Text | None = None
    shopDomain: Text | None = None
    date: Annotated[EpochMs | None, WithJsonSchema(EVENT_DATE_SCHEMA)] = None


_ProductDetails = create_model(  # detail1 ... detail5, each at most 512 characters
    "_ProductDetails",
    __base__=_Model,
    **{f"detail{n}": (Annotated[str, text(512)] | None, None) for n in range(1, 6)},  # type: ignore[call-overload]
)


class ProductData(_ProductDetails):  # type: ignore[misc, valid-type]
    """One product."""

    id: Annotated[str, text(32, 1)]
    name: Annotated[str, text(100, 1)]
    description: Annotated[str, text(1024, 1)]
    category: Annotated[str, text(255, 1)]
    sub_category: Annotated[str, text(512)] | None = None
    brand: Annotated[str, text(512, 1)]
    sex: Literal[-1, 0, 1, 2, 4] | None = None
    price: Money | None = None
    special_price: Money | None = None
    url: Annotated[str, url_text(512), CHECK_URL]
    image_url: Annotated[str, url_text(512), CHECK_URL]
    image2_url: Annotated[str, url_text(128), CHECK_URL] | None = None
    stock_available: Annotated[int, Field(ge=0)] | None = None
    color: Annotated[str, text(40)] | None = None
    season: Annotated[str, text(40)] | None = None
    active: bool | None = None
    available: bool | None = None


class ProductStockData(_Model):
    """One product's stock, set as given (SALESmanago's `updateQuantity`); the rest of the product,
    `available` included, stays as its last full upsert set it."""

    id: Annotated[str, text(32, 1)]
    # Strict: an integer as JSON has it; true, 2.5, "3" are refused, not read as a quantity.
    quantity: Annotated[int, Field(ge=0, strict=True)]


class ProductPriceData(_Model):
    """One product's prices (SALESmanago's `updatePrice`). `special_price` is required: a number
    sets the discount price, `null` ends the discount."""

    id: Annotated[str, text(32, 1)]
    price: Money
    # Required and nullable, so ending a discount is always said: SALESmanago's library sends
    # discountPrice with every price update (null when none), and what a missing one does is unknown.
    special_price: Money | None

    @model_serializer(mode="wrap")
    def _say_the_null(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """``special_price: null`` survives ``exclude_none`` (dead letters, derived ids): without
        it a replay would be refused, and the null is the instruction."""
        dumped: dict[str, Any] = handler(self)
        dumped.setdefault("special_price", None)
        return dumped


# ---- one entry per action ----------------------------------------------------------------------
DATA_MODELS: dict[Action, type[BaseModel]] = {
    Action.CONTACT_UPSERT: ContactUpsertData,
    Action.CONTACT_DELETE: ContactDeleteData,
    Action.EVENT_CREATE: EventCreateData,
    Action.PRODUCTS_UPSERT: ProductData,
    Action.PRODUCTS_STOCK: ProductStockData,
    Action.PRODUCTS_PRICE: ProductPriceData,
}
# Actions whose ``data`` is a non-empty list of items, each of the model (unmapped item fields are
# ignored and listed); every other action's ``data`` is one object (unmapped fields are refused).
ITEM_LISTS: frozenset[Action] = frozenset(
    {Action.PRODUCTS_UPSERT, Action.PRODUCTS_STOCK, Action.PRODUCTS_PRICE}
)
# What a validated command holds (mypy's view of ``Command.data``): one model, or a tuple of items.
CommandData = (
    ContactUpsertData
    | ContactDeleteData
    | EventCreateData
    | tuple[ProductData, ...]
    | tuple[ProductStockData, ...]
    | tuple[ProductPriceData, ...]
)

ACTION_OF_MODEL: dict[type[BaseModel], Action] = {model: action for action, model in DATA_MODELS.items()}
if len(ACTION_OF_MODEL) != len(DATA_MODELS):  # the API derives a request model from each data model
    raise RuntimeError("two actions share a data model: give each action a model of its own")
