"""The API's one error mapping, its validation messages, the size check and the request deadline."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from salesmanago_bridge import api
from salesmanago_bridge.errors import (
    AuthError,
    BridgeError,
    DeadlineError,
    ErrorType,
    EventInFlightError,
    FieldProblem,
    GroupConfigError,
    HeldForOrderError,
    InternalError,
    OutcomeUnknownError,
    RequestInProgressError,
    SalesmanagoRejectedError,
    ThrottledError,
    UnavailableError,
    UnknownGroupError,
    UnmappedFieldError,
    ValidationFailedError,
)
from salesmanago_bridge.idempotency import IdempotencyConflictError
from tests.conftest import FakeContext


def body_of(response: Any) -> dict[str, Any]:
    return response.body["error"]


@pytest.mark.parametrize("error_type", list(ErrorType))
def test_api_every_error_type_has_a_status(error_type: ErrorType):
    status = api.STATUS_BY_ERROR_TYPE[error_type]
    # Only our own faults are 500: nothing a caller sends can cause one
    ours = {ErrorType.INTERNAL, ErrorType.INVALID_GROUP_CONFIG, ErrorType.INVALID_SETTINGS}
    assert (status == 500) == (error_type in ours)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ValidationFailedError("bad", details=[FieldProblem("data.email", "is invalid")]), 400, "validation"),
        (UnmappedFieldError("unmapped", details=[FieldProblem("data.x", "unknown")]), 400, "unmapped_field"),
        (UnknownGroupError("unknown group 'g'"), 403, "unknown_group"),
        (IdempotencyConflictError("reused"), 409, "idempotency_conflict"),
        (AuthError("SALESmanago refused the credentials: Not authenticated"), 502, "auth"),
        (SalesmanagoRejectedError("SALESmanago rejected the request: Invalid"), 502, "salesmanago_rejected"),
        (ThrottledError("throttling", retry_after_s=7.2), 503, "throttled"),
        (UnavailableError("down"), 503, "unavailable"),
        (OutcomeUnknownError("no reply"), 503, "outcome_unknown"),
        (DeadlineError("late"), 503, "deadline"),
        (HeldForOrderError("held"), 503, "held_for_order"),
        (EventInFlightError("busy"), 503, "event_in_flight"),
        (RequestInProgressError("busy"), 503, "request_in_progress"),
        (api.ForbiddenError("no"), 403, "forbidden"),
        (api.ContactNotFoundError("no contact found"), 404, "not_found"),
        (api.PayloadTooLargeError("big"), 413, "payload_too_large"),
        (NotFoundError(), 404, "not_found"),
    ],
)
def test_api_error_response_maps_each_error(error: Exception, status: int, code: str):
    response = api.error_response(error)
    assert response.status_code == status
    assert body_of(response)["code"] == code
    assert set(response.body) == {"error"}


def test_api_error_response_keeps_details_and_never_the_group_prefix():
    error = ValidationFailedError(
        "invalid data", details=[FieldProblem("data.email", "is invalid")], group_key="demo-shop"
    )
    assert body_of(api.error_response(error)) == {
        "code": "validation",
        "message": "invalid data",
        "details": [{"field": "data.email", "problem": "is invalid"}],
    }


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (ThrottledError("t", retry_after_s=7.2), "8"),
        (UnavailableError("u", retry_after_s=0.1), "1"),
        (UnavailableError("u"), str(api.DEFAULT_RETRY_AFTER_S)),
        (DeadlineError("d"), str(api.DEFAULT_RETRY_AFTER_S)),
        (RequestInProgressError("r"), str(api.DEFAULT_RETRY_AFTER_S)),
    ],
)
def test_api_503_always_says_when_to_retry(error: BridgeError, retry_after: str):
    response = api.error_response(error)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == retry_after


def test_api_outcome_unknown_tells_the_caller_a_retry_is_safe():
    message = body_of(api.error_response(OutcomeUnknownError("no reply in time after the event was sent")))[
        "message"
    ]
    assert message.startswith("no reply in time") and "not be created twice" in message


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("boom at /var/task/x.py with a@customer.example.com"),
        InternalError("unexpected KeyError"),
        GroupConfigError("the group's config is invalid", details=[FieldProblem("api_secret", "missing")]),
    ],
)
def test_api_500_is_generic_and_carries_no_exception_text(error: Exception):
    response = api.error_response(error)
    error_body = body_of(response)
    assert response.status_code == 500
    assert error_body["message"] == api.GENERIC_500
    assert error_body["details"] == []
    assert "boom" not in json.dumps(response.body) and "api_secret" not in json.dumps(response.body)


def test_api_error_messages_never_carry_an_email():
    error = SalesmanagoRejectedError("SALESmanago rejected the request: contact a@customer.example.com")
    assert "a@customer.example.com" not in json.dumps(api.error_response(error).body)


def test_api_validation_problems_name_fields_without_values():
    # Given Powertools' (pydantic's) errors, inputs included
    errors = [
        {"type": "missing", "loc": ("body", "data", "email"), "msg": "Field required", "input": {}},
        {
            "type": "string_too_long",
            "loc": ("body", "data", 2, "name"),
            "msg": "String too long",
            "input": "x",
        },
        {"type": "json_invalid", "loc": ("body", 17), "msg": "JSON decode error", "input": {}},
        {
            "type": "string_type",
            "loc": ("query", "email"),
            "msg": "Input should be a valid string",
            "input": 1,
        },
        {"type": "too_long", "loc": ("header", "idempotency-key"), "msg": "too long", "input": "k"},
        {"type": "model_type", "loc": ("body",), "msg": "Input should be ContactUpsertRequest", "input": []},
        {"type": "value_error", "loc": ("body", "data", "function-after[x]"), "msg": "Value error, both"},
        {"type": "missing", "loc": ("body", "data", "email"), "msg": "Field required", "input": {}},
    ]
    # When
    problems = api.validation_problems(errors)
    # Then each is named once, in our path syntax, and no input and no class name is in them
    assert [(p.field, p.problem) for p in problems] == [
        ("data.email", "is required"),
        ("data[2].name", "String too long"),
        ("body", "is not valid JSON"),
        ("email", "Input should be a valid string"),
        ("Idempotency-Key", "too long"),
        ("body", "must be a JSON object"),
        ("data", "both"),
    ]


def test_api_request_validation_error_is_400_not_422():
    error = RequestValidationError([{"type": "missing", "loc": ("body", "data"), "msg": "Field required"}])
    response = api.error_response(error)
    assert response.status_code == 400
    assert body_of(response)["details"] == [{"field": "data", "problem": "is required"}]


@pytest.mark.parametrize(
    ("event", "size"),
    [
        ({"body": None}, 0),
        ({"body": "żółw"}, 7),
        ({"body": base64.b64encode(b"x" * 300).decode(), "isBase64Encoded": True}, 300),
    ],
)
def test_api_body_size_counts_decoded_bytes(event: dict[str, Any], size: int):
    assert api.body_size(event) == size


@pytest.mark.parametrize(
    ("headers", "rewritten"),
    [
        ({}, True),
        ({"content-type": "application/x-www-form-urlencoded"}, True),
        ({"Content-Type": "text/plain"}, True),
        ({"Content-Type": "application/json; charset=utf-8"}, False),
        ({"content-type": "application/merge-patch+json"}, False),
    ],
)
def test_api_bodies_are_read_as_json_whatever_the_content_type(headers: dict[str, str], rewritten: bool):
    event = {"body": "{}", "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()}}
    result = api.as_json_request(event)
    content_types = [v for k, v in result["headers"].items() if k.lower() == "content-type"]
    assert len(content_types) == (1 if rewritten or headers else 0)
    if rewritten:
        assert content_types == ["application/json"]
        assert result["multiValueHeaders"]["Content-Type"] == ["application/json"]
    else:
        assert result is event


def test_api_request_deadline_caps_the_lambda_time_at_the_api_limit():
    # Given a Lambda with 28 s left
    deadline = api.RequestDeadline(FakeContext(remaining_ms=28_000))
    # Then the request sees at most API_TIME_LIMIT_MS
    assert api.API_TIME_LIMIT_MS - 1000 < deadline.get_remaining_time_in_millis() <= api.API_TIME_LIMIT_MS
    assert deadline.aws_request_id == FakeContext.aws_request_id


def test_api_request_deadline_follows_a_shorter_lambda_time():
    assert api.RequestDeadline(FakeContext(remaining_ms=4_000)).get_remaining_time_in_millis() <= 4_000


def test_api_request_deadline_counts_down():
    deadline = api.RequestDeadline(None, limit_ms=200)
    time.sleep(0.05)
    assert deadline.get_remaining_time_in_millis() <= 150
