"""Hostile bodies through every handler: a clear 400 or a permanent dead letter naming the problem.

Non-finite numbers, over-long numbers and nesting past ``MAX_JSON_DEPTH`` are refused when the body
is parsed; a huge unknown key is named by its first 64 characters. None of them is retried, none is
a 500 (issue 16).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.runner import load_handler
from salesmanago_bridge.codec import MAX_JSON_DEPTH, MAX_NUMBER_DIGITS
from tests.conftest import FakeContext, load_event
from tests.integration.test_api import api_environment, caller

EMAIL = "hostile@customer.example.com"


def contact_text(**data_fields: str) -> str:
    """A contact.upsert command as JSON text, with raw JSON spliced in for each extra field."""
    extra = "".join(f', "{name}": {raw}' for name, raw in data_fields.items())
    return f'{{"action": "contact.upsert", "group_key": "demo-shop", "data": {{"email": "{EMAIL}"{extra}}}}}'


def event_text(raw_date: str) -> str:
    return (
        '{"action": "event.create", "group_key": "demo-shop", "data": {"email": "'
        + EMAIL
        + '", "contactExtEventType": "PURCHASE", "date": '
        + raw_date
        + "}}"
    )


DEEP = "[" * 20_000 + "]" * 20_000
# Each hostile body, and the words its problem must carry.
HOSTILE = {
    "date-1e400": (event_text("1e400"), "finite"),
    "date-minus-1e400": (event_text("-1e400"), "finite"),
    "date-NaN": (event_text("NaN"), "finite"),
    "date-Infinity": (event_text("Infinity"), "finite"),
    "int-5000-digits": (event_text("1" * 5000), "digits"),
    "int-100-digits": (event_text("9" * 100), "digits"),
    "nested-20000": (contact_text(tags=DEEP), "nested"),
    "nested-past-limit": (
        contact_text(tags="[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)),
        "nested",
    ),
}


@pytest.fixture
def api_call(monkeypatch: pytest.MonkeyPatch, groups_file: Path) -> Iterator[Any]:
    with api_environment(monkeypatch, groups_file):
        yield caller(load_handler("api").lambda_handler)


def _route(text: str) -> tuple[str, str, str]:
    """The API request for a command text: the route of its action, the body without the action."""
    path = "/events" if '"event.create"' in text else "/contacts"
    body = text.replace('"action": "event.create", ', "").replace('"action": "contact.upsert", ', "")
    return "POST", path, body


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_api_body_is_a_400_naming_the_problem(api_call: Any, sandbox: Any, name: str):
    # Given a body with a non-finite number, an over-long number or deep nesting
    text, words = HOSTILE[name]
    method, path, body = _route(text)
    # When
    reply = api_call(method, path, body)
    # Then a 400 whose detail names the body and the problem; SALESmanago never hears of it
    assert reply.status == 400, reply.body
    assert reply.error["code"] == "validation"
    problems = " ".join(d["problem"] for d in reply.error["details"])
    assert words in problems, reply.error
    assert not sandbox.requests


def sqs_event(text: str, receive_count: int = 1) -> dict[str, Any]:
    record = copy.deepcopy(load_event("sqs_contact_upsert.json")["Records"][0])
    record["body"] = text
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return {"Records": [record]}


def sns_event(text: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("sns_contact_upsert.json"))
    event["Records"][0]["Sns"]["Message"] = text
    event["Records"][0]["Sns"]["MessageAttributes"] = {}
    return event


def check_parked(dead_letters: Any, words: str) -> dict[str, Any]:
    [(_, reason)] = dead_letters()
    assert reason["error_type"] == "validation", reason
    assert reason["receive_count"] == 1
    problems = " ".join(d["problem"] for d in reason["details"])
    assert words in problems, reason
    return reason


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_sqs_record_is_parked_at_once(handler: Any, dead_letters: Any, sandbox: Any, name: str):
    # Given a record with a hostile body, on its first receive
    text, words = HOSTILE[name]
    # When
    result = handler("sqs_consumer")(sqs_event(text), FakeContext())
    # Then it is dead-lettered now (never handed back for a retry), naming the problem
    assert result == {"batchItemFailures": []}
    check_parked(dead_letters, words)
    assert not sandbox.requests


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_sns_message_is_parked_at_once(handler: Any, dead_letters: Any, sandbox: Any, name: str):
    text, words = HOSTILE[name]
    result = handler("sns_consumer")(sns_event(text), FakeContext())
    assert [o["status"] for o in result["outcomes"]] == ["dead_lettered"]
    check_parked(dead_letters, words)
    assert not sandbox.requests


# What the Lambda runtime hands the EventBridge consumer: already parsed by the json module, so
# 1e400 is inf, nesting stops near the interpreter's recursion limit, and ints stop at 4,300 digits.
RUNTIME_PARSED = {
    "date-1e400": ({"date": float("inf")}, "finite"),
    "date-NaN": ({"date": float("nan")}, "finite"),
    "int-4000-digits": ({"date": int("7" * 4000)}, "digits"),
    "nested-900": ({"tags": json.loads("[" * 900 + "]" * 900)}, "nested"),
}


@pytest.mark.parametrize("name", RUNTIME_PARSED)
def test_hostile_eventbridge_detail_is_parked_at_once(
    handler: Any, dead_letters: Any, sandbox: Any, name: str
):
    # Given an event whose detail the runtime parsed into a non-finite, huge or deep value
    fields, words = RUNTIME_PARSED[name]
    event = copy.deepcopy(load_event("eventbridge_event_create.json"))
    event["detail"]["data"].update(fields)
    # When
    result = handler("eventbridge_consumer")(event, FakeContext())
    # Then parked now, naming the problem, and its dead letter could be written
    assert [o["status"] for o in result["outcomes"]] == ["dead_lettered"]
    check_parked(dead_letters, words)
    assert not sandbox.requests


def test_hostile_json_limits_are_the_documented_ones():
    # The limits the README documents: a command nested this deep still parses, one level more does not
    from salesmanago_bridge.codec import JsonLimitError, loads

    assert loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    with pytest.raises(JsonLimitError, match="nested"):
        loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    assert loads("9" * MAX_NUMBER_DIGITS) == int("9" * MAX_NUMBER_DIGITS)
    with pytest.raises(JsonLimitError, match="digits"):
        loads("9" * (MAX_NUMBER_DIGITS + 1))
    # The fallback parser (a lone surrogate sends the text to the json module) keeps the same limits
    with pytest.raises(JsonLimitError, match="nested"):
        loads('["\\ud800", ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "]")
    with pytest.raises(JsonLimitError, match="finite"):
        loads('["\\ud800", 1e400]')
