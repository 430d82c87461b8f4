"""What the API reads and answers: request models (validated by Powertools, the source of
docs/openapi.json), route parameters, read and error replies. Write replies are the ActionSpecs'.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import BaseModel, ConfigDict, EmailStr, Field, WithJsonSchema

from salesmanago_bridge.commands import (
    GROUP_KEY_PATTERN,
    ContactDeleteData,
    ContactUpsertData,
    EventCreateData,
    ProductData,
)
from salesmanago_bridge.idempotency import IDEMPOTENCY_KEY_HEADER
from salesmanago_bridge.mapping import ContactView

IDEMPOTENCY_KEY_MAX_LENGTH = 255
SM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

# ---- request models: validated by Powertools, and the source of docs/openapi.json --------------
_OPEN = ConfigDict(extra="allow")  # other fields go through the group's field_map (else 400)


class ContactUpsertFields(ContactUpsertData):
    """The contact. Fields not listed here are routed by the group's `field_map`, else refused."""

    model_config = _OPEN


class ContactDeleteFields(ContactDeleteData):
    """The contact to delete."""

    model_config = _OPEN


# The event fields whose validators accept more than their JSON schema says.
_PRODUCTS_TYPE = EventCreateData.model_fields["products"].annotation
_DATE_TYPE = EventCreateData.model_fields["date"].annotation
_EventProducts = Annotated[
    _PRODUCTS_TYPE,  # type: ignore[valid-type]  # the model field's own annotation, read at runtime
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": 512}, {"type": "array", "items": {"type": "string"}}]}
    ),
]
_EventDate = Annotated[
    _DATE_TYPE,  # type: ignore[valid-type]  # the model field's own annotation, read at runtime
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
            "description": "epoch milliseconds or ISO 8601; default: when the request arrived",
        }
    ),
]


class EventCreateFields(EventCreateData):
    """The external event. Fields not listed here are routed by the group's `field_map`, else refused."""

    model_config = _OPEN
    products: _EventProducts = None
    date: _EventDate = None


class ProductFields(ProductData):
    """One product. Other fields go through the group's `field_map`; unmapped ones are ignored and listed."""

    model_config = _OPEN


GroupKeyField = Annotated[
    str | None,
    Field(
        pattern=GROUP_KEY_PATTERN,
        description="The tenant. Optional when the API key is bound to exactly one group.",
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_key: GroupKeyField = None


class ContactUpsertRequest(_Request):
    data: ContactUpsertFields


class ContactDeleteRequest(_Request):
    data: ContactDeleteFields


class EventCreateRequest(_Request):
    data: EventCreateFields


class ProductsUpsertRequest(_Request):
    data: Annotated[list[ProductFields], Field(min_length=1)]


# Parameters of the routes, with their OpenAPI descriptions.
GroupKeyQuery = Annotated[
    str | None, Query(pattern=GROUP_KEY_PATTERN, description="optional when the key has one group")
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        description="repeat it with the same body: the first reply again, and no second event",
    ),
]
SmIdPath = Annotated[str, Path(pattern=SM_ID_PATTERN, description="SALESmanago's contact id")]
EmailQuery = Annotated[EmailStr, Query(description="the contact's e-mail")]


# ---- replies (a write's reply is its ActionSpec's; see actions.py) ---------------------------------
class ContactFound(BaseModel):
    group_key: str
    contact: ContactView


class ErrorDetail(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    code: str = Field(description="the error type, e.g. validation, forbidden, salesmanago_rejected")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorReply(BaseModel):
    error: ErrorBody


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Not JSON, or fails validation: every failing field is listed (values are never echoed)",
    403: "The API key may not use this group_key",
    404: "No contact with that id or e-mail",
    409: "This Idempotency-Key was already used with another body",
    413: "The body is over 1 MB",
    502: "SALESmanago rejected the request (its message is included)",
    503: "SALESmanago is unavailable or throttling: retry after Retry-After seconds",
}


def responses(ok: str, *statuses: int) -> dict[int, Any]:
    """A route's OpenAPI responses: ``ok`` describes the 200 (its schema is the return annotation)."""
    documented: dict[int, Any] = {HTTPStatus.OK: {"description": ok}}
    for status in statuses:
        documented[status] = {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorReply}},
        }
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            documented[status]["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
            }
    return documented
