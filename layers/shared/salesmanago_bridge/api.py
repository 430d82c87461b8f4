"""The HTTP API behind API Gateway (REST): tenants, request checks, errors → statuses, replies, reads.

``functions/api/app.py`` only declares the routes; what each route does is here:

    proxy event ─> BridgeResolver.resolve   413 over 1 MB; the body is JSON whatever its Content-Type
                ─> Powertools validation    the request models below; failures become 400, not 422
                ─> route → write / read     tenant (403, group_key default), command, dispatcher
                ─> error_response           the one mapping from an error to a status and a body

Every error answers ``{"error": {"code", "message", "details": [{"field", "problem"}]}}``; ``code`` is
the bridge's ``error_type`` (or ``forbidden``, ``not_found``, ``payload_too_large``). Input values are
never echoed: e-mails and names are personal data.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from functools import lru_cache
from http import HTTPStatus
from traceback import format_exc
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server, ServerVariable
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, WithJsonSchema

from salesmanago_bridge.claims import IdempotencyConflictError
from salesmanago_bridge.codec import JsonLimitError, loads
from salesmanago_bridge.commands import (
    GROUP_KEY_PATTERN,
    Action,
    CommandEnvelope,
    ContactDeleteData,
    ContactUpsertData,
    EventCreateData,
    ProductData,
    field_path,
)
from salesmanago_bridge.dispatch import get_dispatcher
from salesmanago_bridge.errors import (
    BridgeError,
    ErrorType,
    FieldProblem,
    RequestInProgressError,
    UnavailableError,
    UnknownGroupError,
    ValidationFailedError,
    aws_refusal,
)
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.mapping import ContactView, contact_view
from salesmanago_bridge.observability import logger, metrics, scrub
from salesmanago_bridge.settings import get_settings

MAX_BODY_BYTES = 1024 * 1024  # API Gateway itself stops at 10 MB
API_TIME_LIMIT_MS = 25_000  # API Gateway cuts at 29 s; retries and Retry-After waits fit in this
DEFAULT_RETRY_AFTER_S = 5
STRIP_PREFIXES = ["/v1"]  # the custom domain's base path, passed on by API Gateway
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"
# An event without date, Idempotency-Key (or id) is recognised by its body for this long: a client's
# blind retry is not a second event, the same body sent later is.
BLIND_RETRY_WINDOW_S = 900
# The first sight of a key is remembered a little longer than the event it pins.
KEY_MEMORY_MARGIN_S = 3600
KEYED_PREFIX = "api.idempotency_key"
UNKEYED_PREFIX = "api.event_body"
READ_ACTION = "contact.get"
SM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

# The status of each error_type (DESIGN.md, "Errors"): one table, used by error_response only.
STATUS_BY_ERROR_TYPE: dict[ErrorType, HTTPStatus] = {
    ErrorType.VALIDATION: HTTPStatus.BAD_REQUEST,
    ErrorType.UNMAPPED_FIELD: HTTPStatus.BAD_REQUEST,
    ErrorType.UNKNOWN_GROUP: HTTPStatus.FORBIDDEN,  # never tell a caller which groups exist
    ErrorType.IDEMPOTENCY_CONFLICT: HTTPStatus.CONFLICT,
    ErrorType.AUTH: HTTPStatus.BAD_GATEWAY,  # our credentials: nothing the caller can fix
    ErrorType.SALESMANAGO_REJECTED: HTTPStatus.BAD_GATEWAY,
    ErrorType.THROTTLED: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.TIMEOUT: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.OUTCOME_UNKNOWN: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.DEAD_LETTER_FAILED: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.DEADLINE: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.HELD_FOR_ORDER: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.EVENT_IN_FLIGHT: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.REQUEST_IN_PROGRESS: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorType.INVALID_GROUP_CONFIG: HTTPStatus.INTERNAL_SERVER_ERROR,
    ErrorType.INVALID_SETTINGS: HTTPStatus.INTERNAL_SERVER_ERROR,
    ErrorType.INTERNAL: HTTPStatus.INTERNAL_SERVER_ERROR,
}
GENERIC_500 = "internal error; contact the operator if it persists"
OUTCOME_UNKNOWN_HINT = (
    "; send the same request again (same body and Idempotency-Key): the event will not be created twice"
)


# ---- errors only the API has ------------------------------------------------------------------
class ApiError(Exception):
    """Raised for a refusal of the HTTP layer itself (tenant, size, missing contact)."""

    status = HTTPStatus.BAD_REQUEST
    code = "bad_request"

    def __init__(self, message: str, details: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ForbiddenError(ApiError):
    """Raised when the caller's API key may not use the group it names (or any group)."""

    status = HTTPStatus.FORBIDDEN
    code = "forbidden"


class ContactNotFoundError(ApiError):
    """Raised when SALESmanago has no (live) contact with that id or e-mail."""

    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class PayloadTooLargeError(ApiError):
    """Raised when the request body is over MAX_BODY_BYTES."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


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
    _PRODUCTS_TYPE,  # type: ignore[valid-type]
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": 512}, {"type": "array", "items": {"type": "string"}}]}
    ),
]
_EventDate = Annotated[
    _DATE_TYPE,  # type: ignore[valid-type]
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


# ---- replies -----------------------------------------------------------------------------------
class _Applied(BaseModel):
    status: Literal["applied"] = "applied"
    action: str
    group_key: str


class ContactUpserted(_Applied):
    contactId: str | None = Field(None, description="SALESmanago's id of the contact")


class ContactDeleted(_Applied):
    deleted: bool
    already_absent: bool = False


class EventCreated(_Applied):
    eventId: str | None = Field(None, description="SALESmanago's id of the event")
    warnings: list[str] = Field(
        default_factory=list,
        description="sent anyway, but e.g. `location_mismatch`: the location differs from the catalog's",
    )


class ProductsUpserted(_Applied):
    productIds: list[str]
    ignored_fields: list[str] = Field(default_factory=list, description="fields no field map takes")
    warnings: list[str] = Field(
        default_factory=list, description="values trimmed to SALESmanago's limits, and SALESmanago's warnings"
    )


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


# ---- the one error mapping ---------------------------------------------------------------------
def error_response(exc: Exception) -> Response:
    """The HTTP answer for any exception: status, ``{"error": {...}}`` body and headers.

    Args:
        exc: what a route, the validation or the resolver raised.

    Returns:
        The response; a 5xx never carries exception text except SALESmanago's own message (502).
    """
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        status, code, message, details = exc.status, exc.code, exc.message, exc.details
    elif isinstance(exc, RequestValidationError | RequestUnsupportedContentType):
        status, code = HTTPStatus.BAD_REQUEST, str(ErrorType.VALIDATION)
        details = validation_problems(exc.errors())
        message = "invalid request"
    elif isinstance(exc, NotFoundError):
        status, code, message, details = HTTPStatus.NOT_FOUND, "not_found", "no such route", []
    elif isinstance(exc, ServiceError):
        status, code, message, details = HTTPStatus(exc.status_code), "error", exc.msg, []
    elif isinstance(exc, BridgeError):
        status = STATUS_BY_ERROR_TYPE.get(exc.error_type, HTTPStatus.INTERNAL_SERVER_ERROR)
        code, message, details = str(exc.error_type), exc.message, exc.details
        if exc.error_type is ErrorType.OUTCOME_UNKNOWN:
            message += OUTCOME_UNKNOWN_HINT
        if status == HTTPStatus.SERVICE_UNAVAILABLE:
            headers["Retry-After"] = str(retry_after_s(exc))
    else:
        status, code, message, details = HTTPStatus.INTERNAL_SERVER_ERROR, str(ErrorType.INTERNAL), "", []
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        message, details = GENERIC_500, []
        logger.error(
            "API request failed in our code",
            extra={"exception_type": type(exc).__name__, "traceback": scrub(format_exc())},
        )
    else:
        log = logger.warning if status >= HTTPStatus.INTERNAL_SERVER_ERROR else logger.info
        log("API request refused", extra={"status": int(status), "code": code, **aws_refusal(exc)})
    body = {"error": {"code": code, "message": scrub(message), "details": [d.as_dict() for d in details]}}
    return Response(
        status_code=int(status), content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


def retry_after_s(error: BridgeError) -> int:
    """Whole seconds to announce in Retry-After: SALESmanago's own value when it sent one."""
    upstream = getattr(error, "retry_after_s", None)
    return max(1, math.ceil(upstream)) if upstream else DEFAULT_RETRY_AFTER_S


_PROBLEM_BY_TYPE = {
    "json_invalid": "is not valid JSON",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "missing": "is required",
    "extra_forbidden": "is not allowed",
    "unsupported_content_type": "must be JSON",
}


def validation_problems(errors: Any) -> list[FieldProblem]:
    """Powertools' (pydantic's) errors as ``FieldProblem``s: a field path and a problem, no input."""
    problems: list[FieldProblem] = []
    for error in errors:
        loc = tuple(error.get("loc") or ())
        where, rest = (str(loc[0]), loc[1:]) if loc else ("body", ())
        kind = str(error.get("type", ""))
        if kind == "json_invalid":
            rest = ()
        parts = [p for p in rest if not (isinstance(p, str) and p.startswith("function-"))]
        if where == "body":
            field = field_path(parts) or "body"
        elif where == "header" and parts:  # Powertools looks headers up in lower case
            field = "-".join(word.capitalize() for word in str(parts[0]).split("-"))
        else:  # query or path: the parameter's own name
            field = str(parts[0]) if parts else where
        problem = _PROBLEM_BY_TYPE.get(kind) or str(error.get("msg", "is invalid")).removeprefix(
            "Value error, "
        )
        candidate = FieldProblem(field, problem)
        if candidate not in problems:
            problems.append(candidate)
    return problems


# ---- the resolver ------------------------------------------------------------------------------
class RequestDeadline:
    """The Lambda context, its remaining time capped so that a request ends within API_TIME_LIMIT_MS."""

    def __init__(self, context: Any, limit_ms: int = API_TIME_LIMIT_MS) -> None:
        self._context = context
        self._ends = time.monotonic() + limit_ms / 1000

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def get_remaining_time_in_millis(self) -> int:
        own = int((self._ends - time.monotonic()) * 1000)
        getter = getattr(self._context, "get_remaining_time_in_millis", None)
        return max(0, min(own, int(getter())) if callable(getter) else own)


class BridgeResolver(APIGatewayRestResolver):
    """``APIGatewayRestResolver`` with the size check, JSON bodies, our error mapping and OpenAPI info."""

    def __init__(self) -> None:
        super().__init__(
            enable_validation=True, strip_prefixes=list(STRIP_PREFIXES), json_body_deserializer=parse_body
        )
        self.exception_handler(Exception)(error_response)
        self.configure_openapi(
            title="SALESmanago bridge",
            version="1",
            description=(
                "Contacts, external events and products into SALESmanago, one API key per tenant. "
                'Errors: {"error": {"code", "message", "details": [{"field", "problem"}]}}.'
            ),
            servers=[
                Server(
                    url="https://{api_id}.execute-api.{region}.amazonaws.com/Production",
                    description="API Gateway stage Production",
                    variables={
                        "api_id": ServerVariable(default="abcdef1234"),
                        "region": ServerVariable(default="eu-central-1"),
                    },
                ),
                Server(
                    url="https://{domain}/v1",
                    description="custom domain, base path v1",
                    variables={"domain": ServerVariable(default="api.example.com")},
                ),
            ],
            security_schemes={"apiKey": APIKey(name="x-api-key", in_=APIKeyIn.header)},
            security=[{"apiKey": []}],
        )

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        """413 before anything reads the body; otherwise Powertools' resolution with a capped deadline."""
        if body_size(event) > MAX_BODY_BYTES:
            too_large = PayloadTooLargeError(f"the body is over {MAX_BODY_BYTES} bytes")
            builder = ResponseBuilder(error_response(too_large), serializer=self._serializer)
            return builder.build(self._to_proxy_event(event))
        return super().resolve(as_json_request(event), RequestDeadline(context))

    def get_openapi_json_schema(self, **kwargs: Any) -> str:
        """Powertools' document, without the 422 it would list: validation failures answer 400 here."""
        document = json.loads(super().get_openapi_json_schema(**kwargs))
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            if f'"#/components/schemas/{name}"' not in json.dumps(document.get("paths")):
                schemas.pop(name, None)
        return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def parse_body(text: str) -> Any:
    """The request body as JSON, within the codec's bounds (depth, finite and bounded numbers).

    Raises:
        ValidationFailedError: the body is past a bound (a 400 naming the problem).
        json.JSONDecodeError: the body is not JSON (Powertools answers it as ``json_invalid``).
    """
    try:
        return loads(text)
    except JsonLimitError as exc:
        raise ValidationFailedError(f"body {exc}", details=[FieldProblem("body", str(exc))]) from None


def body_size(event: Any) -> int:
    """The decoded size of the request body in bytes."""
    body = event.get("body") if isinstance(event, dict) else None
    if not body:
        return 0
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode("utf-8", errors="replace"))


def as_json_request(event: Any) -> Any:
    """The event with a JSON Content-Type when it has a body: older clients send none, or a form type."""
    if not isinstance(event, dict) or not event.get("body"):
        return event
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    original = next((v for k, v in (event.get("headers") or {}).items() if k.lower() == "content-type"), "")
    if original.lower().startswith(content_types.APPLICATION_JSON) or "+json" in original.lower():
        return event
    return {
        **event,
        "headers": {**headers, "Content-Type": content_types.APPLICATION_JSON},
        "multiValueHeaders": {**multi, "Content-Type": [content_types.APPLICATION_JSON]},
    }


# ---- tenants -----------------------------------------------------------------------------------
def api_key_id(app: APIGatewayRestResolver) -> str | None:
    """The id of the API key the caller used (set by API Gateway, never by the caller)."""
    identity = (app.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    value = identity.get("apiKeyId")
    return value if isinstance(value, str) and value else None


def resolve_group(app: APIGatewayRestResolver, *named: Any) -> str:
    """The group this request may use: the one it names, or the key's only group.

    Raises:
        ForbiddenError: the key is not bound to the named group (or to any group).
        ValidationFailedError: no group named and the key is bound to several; names the choices.
    """
    key_id = api_key_id(app)
    try:
        allowed = get_dispatcher().groups.group_keys_for_api_key(key_id) if key_id else []
    except BridgeError:
        raise
    except Exception as exc:  # SSM throttled or unreachable
        raise UnavailableError("could not read the group configs") from exc
    requested = sorted({name for name in named if name is not None})
    if len(requested) > 1:
        raise ValidationFailedError(
            "group_key differs between the body and the query string",
            details=[FieldProblem("group_key", "must be given once, or be the same in body and query")],
        )
    if requested:
        if requested[0] not in allowed:
            raise ForbiddenError("this API key may not use this group_key")
        return _bound(key_id, requested[0])
    if len(allowed) == 1:
        return _bound(key_id, allowed[0])
    if not allowed:
        raise ForbiddenError("this API key may not use any group")
    raise ValidationFailedError(
        "group_key is required: this API key may use several groups",
        details=[FieldProblem("group_key", "is required; one of: " + ", ".join(allowed))],
    )


def _bound(key_id: str | None, group_key: str) -> str:
    """``group_key`` if its own config lists the key: the index may lag, the config decides."""
    try:
        listed = get_dispatcher().groups.get(group_key).api_key_ids
    except UnknownGroupError:
        listed = ()
    if key_id is None or key_id not in listed:
        raise ForbiddenError("this API key may not use this group_key")
    return group_key


def _query_group_key(app: APIGatewayRestResolver) -> str | None:
    value = (app.current_event.query_string_parameters or {}).get("group_key")
    return value or None


# ---- writes ------------------------------------------------------------------------------------
def write(app: APIGatewayRestResolver, action: Action, idempotency_key: str | None = None) -> Response:
    """Validate the body for ``action`` in its group, run it now, and answer with what was done.

    Raises:
        BridgeError, ApiError: mapped to a status by ``error_response``.
    """
    body = app.current_event.json_body
    group_key = resolve_group(app, body.get("group_key"), _query_group_key(app))
    dispatcher = get_dispatcher()
    group = dispatcher.groups.get(group_key)
    envelope = CommandEnvelope.parse(
        {"action": str(action), "group_key": group_key, "data": body.get("data")}
    )
    options = {"field_map": group.routes_for(action), "default_location": group.location}
    sent_at_ms = _request_time_ms(app)
    # Validated before any idempotency record is written: a refused body binds no key.
    command = envelope.to_command(sent_at_ms=sent_at_ms, **options)
    if action is Action.EVENT_CREATE:
        command_id, first_seen_ms = event_identity(
            app, group_key, group, body.get("data"), idempotency_key, sent_at_ms
        )
        if command_id is not None or first_seen_ms != sent_at_ms:
            envelope = envelope.model_copy(update={"id": command_id})
            command = envelope.to_command(sent_at_ms=first_seen_ms, **options)
    result = dispatcher.run(command, app.lambda_context)
    headers = {REPLAYED_HEADER: "true"} if result.get("duplicate") else {}
    return Response(
        status_code=int(HTTPStatus.OK),
        content_type=content_types.APPLICATION_JSON,
        body=_reply(action, group_key, result),
        headers=headers,
    )


def _reply(action: Action, group_key: str, result: dict[str, Any]) -> BaseModel:
    common = {"action": str(action), "group_key": group_key}
    if action is Action.CONTACT_UPSERT:
        return ContactUpserted(**common, contactId=result.get("contactId"))
    if action is Action.CONTACT_DELETE:
        return ContactDeleted(
            **common, deleted=bool(result.get("deleted")), already_absent=bool(result.get("already_absent"))
        )
    if action is Action.EVENT_CREATE:
        return EventCreated(
            **common, eventId=result.get("eventId"), warnings=list(result.get("warnings") or [])
        )
    return ProductsUpserted(
        **common,
        productIds=list(result.get("productIds") or []),
        ignored_fields=list(result.get("ignored_fields") or []),
        warnings=list(result.get("warnings") or []),
    )


def _request_time_ms(app: APIGatewayRestResolver) -> int:
    epoch = (app.current_event.raw_event.get("requestContext") or {}).get("requestTimeEpoch")
    return int(epoch) if isinstance(epoch, int | float) and epoch > 0 else int(time.time() * 1000)


# ---- idempotency of POST /events ---------------------------------------------------------------
def event_identity(
    app: APIGatewayRestResolver,
    group_key: str,
    group: GroupConfig,
    data: Any,
    idempotency_key: str | None,
    now_ms: int,
) -> tuple[str | None, int]:
    """The event's command id and the date it gets when its body has none.

    With an ``Idempotency-Key``, the id is derived from (API key id, group_key, key), so a retry is
    the same event to the idempotency guard, and the key's first use fixes the default date: a
    retry with the same body is then the very same command, even after a lost reply or a crash.
    The same key with another body is refused (409). Without a key, an event that has no date gets
    the date of its body's first sight within BLIND_RETRY_WINDOW_S, so a blind retry is recognised.

    Raises:
        IdempotencyConflictError: the key was used with another body.
        UnavailableError: the idempotency table cannot be used right now.
    """
    guard = get_request_guard()
    if guard is not None:
        guard.register(app.lambda_context)
    key_id = api_key_id(app) or ""
    body_hash = _sha256([group_key, data])
    if idempotency_key is not None:
        command_id = "api:" + _sha256([key_id, group_key, idempotency_key])[:48]
        if guard is None:
            return command_id, now_ms
        return command_id, guard.first_seen(
            [key_id, group_key, idempotency_key], body_hash, now_ms, keyed=True
        )
    if guard is None or _has_date(data, group):
        return None, now_ms
    return None, guard.first_seen([key_id, group_key, body_hash], body_hash, now_ms, keyed=False)


def _has_date(data: Any, group: GroupConfig) -> bool:
    if not isinstance(data, dict):
        return False
    sources = ["date", *(s for s, t in group.routes_for(Action.EVENT_CREATE).items() if t == "date")]
    return any(data.get(source) is not None for source in sources)


def _sha256(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _arrival(request: dict[str, Any]) -> dict[str, Any]:
    return {"first_seen_ms": request["now_ms"]}


class RequestGuard:
    """Remembers when a key was first seen, and with which body (Powertools Idempotency, DynamoDB)."""

    def __init__(self, table_name: str, ttl_s: int, *, dynamodb_client: Any = None) -> None:
        keyed = IdempotencyConfig(
            event_key_jmespath="scope",
            payload_validation_jmespath="body_sha256",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_s + KEY_MEMORY_MARGIN_S,
            hash_function="sha256",
        )
        unkeyed = IdempotencyConfig(
            event_key_jmespath="scope",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=BLIND_RETRY_WINDOW_S,
            hash_function="sha256",
        )
        self._configs = {True: keyed, False: unkeyed}
        if dynamodb_client is None:  # one client for both layers: each would build its own
            import boto3

            dynamodb_client = boto3.client("dynamodb")
        # A persistence layer keeps the first config it is given: one layer per config.
        self._remember = {
            flag: idempotent_function(
                _arrival,
                data_keyword_argument="request",
                persistence_store=DynamoDBPersistenceLayer(
                    table_name=table_name, boto3_client=dynamodb_client
                ),
                config=config,
                key_prefix=KEYED_PREFIX if flag else UNKEYED_PREFIX,
            )
            for flag, config in self._configs.items()
        }

    def first_seen(self, scope: list[str], body_sha256: str, now_ms: int, *, keyed: bool) -> int:
        """When ``scope`` was first seen (``now_ms`` if now).

        Raises:
            IdempotencyConflictError: a keyed scope seen before with another body.
            RequestInProgressError: the same key is being recorded by a concurrent request.
            UnavailableError: DynamoDB refused or could not be reached.
        """
        request = {"scope": scope, "body_sha256": body_sha256, "now_ms": now_ms}
        try:
            return int(self._remember[keyed](request=request)["first_seen_ms"])
        except IdempotencyValidationError:
            raise IdempotencyConflictError(
                f"this {IDEMPOTENCY_KEY_HEADER} was already used with another body",
                details=[FieldProblem(IDEMPOTENCY_KEY_HEADER, "was used before with another body")],
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise RequestInProgressError(
                f"a request with this {IDEMPOTENCY_KEY_HEADER} is in progress"
            ) from None
        except Exception as exc:
            raise UnavailableError(f"idempotency store unavailable: {type(exc).__name__}") from exc

    def register(self, context: Any) -> None:
        for config in self._configs.values():
            config.register_lambda_context(context)


@lru_cache(maxsize=1)
def get_request_guard() -> RequestGuard | None:
    """The process-wide guard, or None when IDEMPOTENCY_TABLE_NAME is unset (idempotency off)."""
    settings = get_settings()
    if not settings.idempotency_table_name:
        return None
    return RequestGuard(settings.idempotency_table_name, settings.idempotency_ttl_s)


# ---- reads -------------------------------------------------------------------------------------
def contact_by_id(app: APIGatewayRestResolver, sm_id: str, group_key: str | None) -> ContactFound:
    """The contact with SALESmanago id ``sm_id`` (v2 ``contact/listById``).

    Raises:
        ContactNotFoundError: no live contact has that id.
    """
    return _read(app, group_key, "contact/listById", {"contactId": [sm_id]}, ("id", "contactId"), sm_id)


def contact_by_email(app: APIGatewayRestResolver, email: str, group_key: str | None) -> ContactFound:
    """The contact with that e-mail (v2 ``contact/list``: tags and properties included).

    Raises:
        ContactNotFoundError: no live contact has that e-mail.
    """
    return _read(app, group_key, "contact/list", {"email": [email]}, ("email",), email.lower())


def _read(
    app: APIGatewayRestResolver,
    group_key: str | None,
    path: str,
    body: dict[str, Any],
    keys: tuple[str, ...],
    wanted: str,
) -> ContactFound:
    resolved = resolve_group(app, group_key)
    dispatcher = get_dispatcher()
    group = dispatcher.groups.get(resolved)
    dispatcher.client.budget.set_remaining(app.lambda_context.get_remaining_time_in_millis())
    try:
        reply = dispatcher.client.call_v2(group, path, body, action=READ_ACTION)
    finally:
        metrics.flush()
    for raw in reply.get("contacts") or []:
        if not isinstance(raw, dict) or raw.get("deleted"):
            continue
        if any(str(raw.get(key) or "").lower() == wanted.lower() for key in keys):
            try:
                return ContactFound(group_key=resolved, contact=contact_view(raw))
            except ValidationError:
                raise UnavailableError("SALESmanago answered with a contact we cannot read") from None
    raise ContactNotFoundError("no contact found")
