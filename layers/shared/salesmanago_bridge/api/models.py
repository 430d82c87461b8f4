"""What the API reads and answers besides writes: route parameters, read and error replies.

A write's request model (``WriteRequest[<data model>]``, commands/requests.py) and its reply are
its ActionSpec's (actions.py).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import BaseModel, EmailStr, Field

from salesmanago_bridge.commands import GROUP_KEY_PATTERN
from salesmanago_bridge.mapping import ContactView
from salesmanago_bridge.request_guard import IDEMPOTENCY_KEY_HEADER

IDEMPOTENCY_KEY_MAX_LENGTH = 255
SM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

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
