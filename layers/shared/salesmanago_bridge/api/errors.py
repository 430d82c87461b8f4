"""The API's own refusals, and the one mapping from any error to a status and an error body."""

from __future__ import annotations

import math
from http import HTTPStatus
from traceback import format_exc
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from salesmanago_bridge.errors import (
    BridgeError,
    ErrorType,
    FieldProblem,
    aws_refusal,
)
from salesmanago_bridge.fields import field_path
from salesmanago_bridge.observability import logger, scrub

DEFAULT_RETRY_AFTER_S = 5

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
        status, code, message, details = HTTPStatus(exc.status_code), "error", str(exc.msg), []
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
