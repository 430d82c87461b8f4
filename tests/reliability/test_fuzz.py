"""Hostile input, fuzzed: every handler parks (or refuses) it, naming the field, and never crashes.

Hypothesis builds a valid command and breaks it one way, so the culprit field is known: wrong types,
missing and extra fields, over-long strings, invalid e-mails and URLs, huge lists, wrong action names,
bodies that are not JSON or not objects, SNS and EventBridge envelopes with pieces missing, unicode
that is hard to carry. For each handler the property is the same: no exception escapes, the message
ends as a permanent failure (dead-lettered, or a 4xx from the API) whose reason names that field, the
hostile value is echoed nowhere, and SALESmanago never sees the message.

``make test`` runs the ``ci`` profile (200 examples a property, derandomized: the same examples every
run); ``make fuzz`` the ``fuzz`` profile (1,000, random). ``FUZZ_PROFILE`` selects one.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesmanago_bridge.codec import MAX_JSON_DEPTH, MAX_NUMBER_DIGITS, JsonLimitError, check_bounds
from salesmanago_bridge.fields import field_path
from salesmanago_bridge.privacy import scrub
from tests.conftest import PRODUCT_BASE
from tests.reliability.chaos import (
    ACCOUNT,
    QUEUE_ARN,
    REGION,
    RULE_ARN,
    TOPIC_ARN,
    ChaosConfig,
    ChaosRun,
    QueuedMessage,
)

settings.register_profile(
    "bridge-fuzz-ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
settings.register_profile(
    "bridge-fuzz", settings.get_profile("bridge-fuzz-ci"), max_examples=1000, derandomize=False
)
settings.register_profile("bridge-fuzz-quick", settings.get_profile("bridge-fuzz-ci"), max_examples=25)
PROFILE = {"ci": "bridge-fuzz-ci", "fuzz": "bridge-fuzz", "quick": "bridge-fuzz-quick"}[
    os.environ.get("FUZZ_PROFILE", "ci")
]
FUZZ = settings(settings.get_profile(PROFILE))
SOME = settings(FUZZ, max_examples=max(25, FUZZ.max_examples // 4))  # narrower properties: a quarter

MARK = "ZQXhostile"  # every hostile value carries it: no reason, log line or reply may echo it
DEAD_LETTER_LIMIT = 256 * 1024  # SQS's classic message limit, and Lambda's async payload limit
ACTIONS = ("contact.upsert", "contact.delete", "event.create", "products.upsert")
GROUPS = ("demo-shop", "outlet")
ENVELOPE_KEYS = {"action", "group_key", "data", "id"}
# Keys that would make an SQS body look like a wrapped SNS notification or EventBridge event.
WRAPPER_KEYS = {"Type", "Message", "detail-type", "detail", "source"}
CONTACT_FIELDS = {
    "email", "name", "phone", "fax", "company", "streetAddress", "zipCode", "city", "country", "newEmail",
    "externalId", "state", "tags", "removeTags", "properties", "birthday", "province", "lang", "forceOptIn",
    "forceOptOut", "forcePhoneOptIn", "forcePhoneOptOut", "consentDetails",
}  # fmt: skip
EVENT_FIELDS = {
    "email", "contactExtEventType", "description", "products", "location", "value", "externalId",
    "shopDomain", "date", *(f"detail{n}" for n in range(1, 21)),
}  # fmt: skip
PRODUCT_REQUIRED = ("id", "name", "description", "category", "brand", "url", "image_url")
_serial = itertools.count(1)


# ---- what a hostile command should end as --------------------------------------------------------
@dataclass
class Expect:
    """The culprit: a field path the reason must name (any of ``fields``), and the error types allowed."""

    fields: tuple[str, ...]
    types: frozenset[str] = frozenset({"validation"})

    def named_by(self, reason: dict[str, Any]) -> bool:
        if "unknown_group" in self.types and reason.get("error_type") == "unknown_group":
            return True
        named = [d.get("field", "") for d in reason.get("details") or []]
        return any(_covers(f, n) for f in self.fields for n in named)


def _covers(expected: str, named: str) -> bool:
    return named == expected or named.startswith((f"{expected}.", f"{expected}["))


@dataclass
class Hostile:
    command: dict[str, Any]
    expect: Expect
    values: list[str] = field(default_factory=list)  # hostile strings that must be echoed nowhere

    @property
    def action(self) -> Any:
        return self.command.get("action")


# ---- building blocks ---------------------------------------------------------------------------------
def _email() -> str:
    return f"fz{next(_serial)}@fuzz-customer.example.com"


def _base_data(action: str) -> Any:
    if action == "contact.upsert":
        return {"email": _email(), "name": "Fuzz Person", "tags": ["A"], "properties": {"k": "v"}}
    if action == "contact.delete":
        return {"email": _email()}
    if action == "event.create":
        return {"email": _email(), "contactExtEventType": "PURCHASE", "value": 10.5}
    return [_product(n) for n in range(2)]


def _product(n: int) -> dict[str, Any]:
    return {"id": f"fz{next(_serial)}-{n}", **PRODUCT_BASE}


# Strings that are hard to carry: NUL, a lone surrogate, bidi override, BOM, a ZWJ sequence, combining
# marks, non-characters, a 4-byte character, a line separator (JSON escapes them; nothing may choke).
UNICODE_EDGES = (
    "\u0000",
    "\ud800",
    "\u202eevil",
    "\ufeff",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "e\u0301\u0301\u0301",
    "\uffff\ufffe",
    "\U0010ffff",
    "\u2028",
    "\\u0041\"'<>&",
)
# What SQS and SNS accept in a message (a body with anything else never reaches a consumer).
SQS_TEXT = st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(
    lambda c: c in "\t\n\r" or (ord(c) >= 0x20 and c not in "\ufffe\uffff")
)


def marked(draw: Any, min_size: int = 0, max_size: int = 40) -> str:
    """A hostile string: the marker, then anything, or a unicode edge case."""
    tail = draw(st.one_of(st.text(min_size=min_size, max_size=max_size), st.sampled_from(UNICODE_EDGES)))
    return MARK + tail


def invalid_email(draw: Any) -> Any:
    """Surely not an e-mail address (email-validator would refuse each)."""
    kind = draw(st.sampled_from(["no_at", "two_at", "empty_local", "no_domain", "space", "long", "type"]))
    local = MARK + draw(st.text(alphabet="abcdefghij0123456789._-", max_size=20))
    return {
        "no_at": local + draw(st.text(max_size=20).filter(lambda t: "@" not in t)),
        "two_at": f"{local}@@example.com",
        "empty_local": f"@{local}.example.com",
        "no_domain": f"{local}@",
        "space": f"{local} x@example.com",
        "long": f"{local}{'a' * 250}@example.com",
        "type": draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=2), st.booleans())),
    }[kind]


def invalid_url(draw: Any) -> Any:
    kind = draw(st.sampled_from(["relative", "scheme", "space", "long", "type", "empty"]))
    return {
        "relative": f"/{MARK}/p",
        "scheme": draw(st.sampled_from(["ftp", "javascript", "file", "mailto"])) + f"://{MARK}.example.com",
        "space": f"https://shop.example.com/{MARK} x",
        "long": f"https://shop.example.com/{MARK}" + "a" * 600,
        "type": draw(st.one_of(st.integers(), st.lists(st.text(), max_size=2))),
        "empty": "",
    }[kind]


def wrong_type(draw: Any, *, not_str: bool = True) -> Any:
    """A JSON value no string, number or boolean field of ours takes."""
    choices = [
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    ]
    if not_str:
        choices.append(st.integers(min_value=-(10**6), max_value=10**6))
    return draw(st.one_of(*choices))


def too_long(draw: Any, limit: int) -> str:
    return MARK + "x" * (limit + draw(st.integers(1, 50)))


# ---- one mutation each; they return what the reason must name ------------------------------------------
Mutation = Callable[[Any, Hostile], Expect]


def m_missing_data(draw: Any, h: Hostile) -> Expect:
    del h.command["data"]
    return Expect(("data",))


def m_missing_group(draw: Any, h: Hostile) -> Expect:
    del h.command["group_key"]
    return Expect(("group_key",))


def m_bad_group_key(draw: Any, h: Hostile) -> Expect:
    h.command["group_key"] = draw(
        st.one_of(
            st.text(max_size=20).filter(
                lambda k: not k.strip() or any(not (c.isascii() and (c.isalnum() or c in "_-")) for c in k)
            ),
            st.just("g" * 129),
            st.integers(),
            st.lists(st.integers(), max_size=2),
        )
    )
    return Expect(("group_key",))


def m_unknown_group(draw: Any, h: Hostile) -> Expect:
    h.command["group_key"] = draw(
        st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True).filter(lambda k: k not in GROUPS)
    )
    return Expect(("group_key",), frozenset({"unknown_group"}))


def m_wrong_action(draw: Any, h: Hostile) -> Expect:
    h.command["action"] = draw(
        st.one_of(
            st.text(max_size=30).filter(lambda a: a not in ACTIONS),
            st.sampled_from([a.upper() for a in ACTIONS] + [a.replace(".", "_") for a in ACTIONS]),
            st.integers(),
            st.floats(allow_nan=False),
            st.booleans(),
            st.lists(st.text(max_size=3), max_size=2),
            st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=1),
        )
    )
    return Expect(("action",))


def m_missing_action(draw: Any, h: Hostile) -> Expect:
    del h.command["action"]
    return Expect(("action",))


def m_extra_envelope_field(draw: Any, h: Hostile) -> Expect:
    key = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in ENVELOPE_KEYS | WRAPPER_KEYS))
    h.command[key] = marked(draw)
    h.values.append(h.command[key])
    return Expect((key,))


def m_bad_id(draw: Any, h: Hostile) -> Expect:
    h.command["id"] = draw(
        st.one_of(
            st.just(too_long(draw, 256)),
            st.sampled_from(["", "   "]),
            st.integers(),
            st.lists(st.integers(), max_size=2),
        )
    )
    return Expect(("id",))


def m_data_not_object(draw: Any, h: Hostile) -> Expect:
    h.command["data"] = draw(
        st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=10), st.none())
    )
    return Expect(("data",))


def m_bad_email(draw: Any, h: Hostile) -> Expect:
    h.command["data"]["email"] = value = invalid_email(draw)
    if isinstance(value, str):
        h.values.append(value)
    return Expect(("data.email",))


def m_missing_email(draw: Any, h: Hostile) -> Expect:
    del h.command["data"]["email"]
    return Expect(("data.email",))


def m_unmapped_field(draw: Any, h: Hostile) -> Expect:
    known = (
        CONTACT_FIELDS
        if h.action == "contact.upsert"
        else EVENT_FIELDS
        if h.action == "event.create"
        else {"email", "permanently"}
    )
    key = draw(st.text(min_size=1, max_size=80).filter(lambda k: k not in known))
    h.command["data"][key] = marked(draw)
    h.values.append(h.command["data"][key])
    return Expect((scrub(field_path(("data", key))),), frozenset({"unmapped_field"}))


def contact_field(draw: Any, h: Hostile) -> Expect:
    data = h.command["data"]
    name, value, path = draw(
        st.sampled_from(
            [
                ("name", "long", "name"),
                ("company", "long", "company"),
                ("city", "long", "city"),
                ("externalId", "long", "externalId"),
                ("name", "type", "name"),
                ("phone", "type", "phone"),
                ("tags", "VIP", "tags"),
                ("tags", [1, 2], "tags[0]"),
                ("tags", ["ok", ""], "tags[1]"),
                ("properties", ["a"], "properties"),
                ("properties", {"k": {"nested": 1}}, "properties.k"),
                ("state", "VIP", "state"),
                ("birthday", "2024-13-45", "birthday"),
                ("birthday", "yesterday", "birthday"),
                ("forceOptIn", "maybe", "forceOptIn"),
                ("consentDetails", "x", "consentDetails"),
                ("consentDetails", [{"consentAccept": True}], "consentDetails[0].consentName"),
                ("newEmail", "email", "newEmail"),
            ]
        )
    )
    if value == "long":
        value = too_long(draw, 255)
        h.values.append(value)
    elif value == "type":
        value = wrong_type(draw)
    elif value == "email":
        value = invalid_email(draw)
    data[name] = value
    return Expect((f"data.{path}",))


def m_opt_in_and_out(draw: Any, h: Hostile) -> Expect:
    h.command["data"] |= {"forceOptIn": True, "forceOptOut": True}
    return Expect(("data",))


def m_huge_tag_list(draw: Any, h: Hostile) -> Expect:
    size = draw(st.integers(1000, 5000))
    bad = draw(st.integers(0, size - 1))
    h.command["data"]["tags"] = ["t"] * size
    h.command["data"]["tags"][bad] = ""
    return Expect((f"data.tags[{bad}]",))


def event_field(draw: Any, h: Hostile) -> Expect:
    name, value = draw(
        st.sampled_from(
            [
                ("contactExtEventType", "BUY"),
                ("contactExtEventType", "purchase"),
                ("contactExtEventType", "type"),
                ("value", "abc"),
                ("value", [1]),
                ("value", 1.234),
                ("value", 1e25),
                ("date", "tomorrow"),
                ("date", 1_700_000_000),  # seconds, not milliseconds
                ("date", 10**17),
                ("date", True),
                ("products", 5),
                ("products", [{"a": 1}]),
                ("products", "long"),
                ("location", "long"),  # any text up to 255 is SALESmanago's (salesmanago.md)
                ("location", "type"),
                ("description", "long"),
                ("detail7", "type"),
                ("detail7", "long"),
            ]
        )
    )
    if value == "long":
        value = too_long(draw, 2048 if name == "description" else 512 if name == "products" else 255)
        h.values.append(value)
    elif value == "type":
        value = wrong_type(draw)
    h.command["data"][name] = value
    return Expect((f"data.{name}",))


def m_missing_event_type(draw: Any, h: Hostile) -> Expect:
    del h.command["data"]["contactExtEventType"]
    return Expect(("data.contactExtEventType",))


def m_bad_permanently(draw: Any, h: Hostile) -> Expect:
    h.command["data"]["permanently"] = draw(st.sampled_from(["maybe", 5, [], {}]))
    return Expect(("data.permanently",))


def product_field(draw: Any, h: Hostile) -> Expect:
    products = h.command["data"]
    index = draw(st.integers(0, len(products) - 1))
    name, value = draw(
        st.sampled_from(
            [
                ("url", "url"),
                ("image_url", "url"),
                ("image2_url", "url"),
                ("id", 123),
                ("id", ""),
                ("id", "long32"),
                ("name", "long100"),
                ("description", "long1024"),
                ("brand", "long512"),
                ("color", "long40"),
                ("price", "abc"),
                ("price", -1),
                ("price", 1.999),
                ("sex", 3),
                ("stock_available", -1),
                ("stock_available", 1.5),
                ("active", "maybe"),
                ("detail2", "type"),
            ]
        )
    )
    if value == "url":
        value = invalid_url(draw)
        if isinstance(value, str) and value:
            h.values.append(value)
    elif isinstance(value, str) and value.startswith("long"):
        value = too_long(draw, int(value.removeprefix("long")))
        h.values.append(value)
    elif value == "type":
        value = wrong_type(draw)
    products[index][name] = value
    return Expect((f"data[{index}].{name}",))


def m_product_missing_field(draw: Any, h: Hostile) -> Expect:
    index = draw(st.integers(0, len(h.command["data"]) - 1))
    name = draw(st.sampled_from(PRODUCT_REQUIRED))
    del h.command["data"][index][name]
    return Expect((f"data[{index}].{name}",))


def m_product_not_object(draw: Any, h: Hostile) -> Expect:
    index = draw(st.integers(0, len(h.command["data"]) - 1))
    h.command["data"][index] = draw(
        st.one_of(st.integers(), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=2))
    )
    return Expect((f"data[{index}]",))


def m_products_empty(draw: Any, h: Hostile) -> Expect:
    h.command["data"] = draw(st.sampled_from([[], {}, "x", 0]))
    return Expect(("data",))


def m_huge_product_list(draw: Any, h: Hostile) -> Expect:
    size = draw(st.integers(300, 1000))  # up to ~180 KB: within what SQS and SNS deliver
    bad = draw(st.integers(0, size - 1))
    h.command["data"] = [_product(n) for n in range(size)]
    h.command["data"][bad]["url"] = f"/{MARK}"
    return Expect((f"data[{bad}].url",))


def m_many_bad_products(draw: Any, h: Hostile) -> Expect:
    # Every item wrong: the reason must still fit in a dead letter (it lists the first problems).
    size = draw(st.integers(2, 500))
    h.command["data"] = [{"id": n, "url": f"/{MARK}"} for n in range(size)]
    return Expect(("data[0].id", "data[0].name", "data[0].url"))


# ---- hostile by size and shape (issue 16): refused when parsed, or named, in linear time ------------
BODY = Expect(("body",))  # refused when the body is parsed: the problem names the body
# Lone surrogates (repeated, a high one never meets a low one after it: JSON would pair them) and
# control characters, C0 and DEL.
LONE_SURROGATES = ("\ud800", "\udfff", "\udbff")
CONTROL_CHARACTERS = ("\u0001", "\u001f", "\u007f", "\u0000\u0008")


def _slot(draw: Any, h: Hostile) -> tuple[dict[str, Any], str]:
    """Where a hostile value goes: a field of ``data``, or of one product; and that field's path."""
    if isinstance(h.command["data"], list):
        index = draw(st.integers(0, len(h.command["data"]) - 1))
        return h.command["data"][index], f"data[{index}]"
    return h.command["data"], "data"


def m_huge_key(draw: Any, h: Hostile) -> Expect:
    # A key of up to 60,000 characters: e-mail characters without an @ (the worst text for an e-mail
    # scan), an @ run, lone surrogates or control characters. Named by its first 64 characters.
    size = draw(st.sampled_from([65, 1_000, 10_000, 60_000]))  # in JSON: within what SQS and SNS carry
    unit = draw(st.sampled_from(["a", "@", "a.b@", *LONE_SURROGATES, *CONTROL_CHARACTERS]))
    key = MARK + unit * max(65, size // len(json.dumps(unit)[1:-1]))
    # The API's validation cannot read a key of lone surrogates: it names the object holding it.
    unreadable = unit in LONE_SURROGATES
    if h.action == "contact.upsert" and len(key) > 255 and draw(st.booleans()):  # over a property name's 255
        h.command["data"]["properties"] = {key: "v"}
        return Expect(("data.properties", "data") if unreadable else ("data.properties",))
    target, path = _slot(draw, h)
    target[key] = 1
    if h.action == "products.upsert":  # ignored and listed, the others still sent: make one fail
        target["url"] = f"/{MARK}"
        return Expect((f"{path}.url", path) if unreadable else (f"{path}.url",))
    named = scrub(field_path((path, key)))
    if unreadable:
        return Expect((named, path), frozenset({"unmapped_field", "validation"}))
    return Expect((named,), frozenset({"unmapped_field"}))


def m_huge_value(draw: Any, h: Hostile) -> Expect:
    size = draw(st.sampled_from([1_000, 10_000, 100_000]))  # in JSON: within what SQS and SNS carry
    unit = draw(st.sampled_from(["x", "a@", *LONE_SURROGATES, *CONTROL_CHARACTERS]))
    value = MARK + unit * (size // len(json.dumps(unit)[1:-1]))
    target, path = _slot(draw, h)
    name = "name" if h.action in ("contact.upsert", "products.upsert") else "email"
    target[name] = value
    h.values.append(value)
    return Expect((f"{path}.{name}",))


def m_odd_characters(draw: Any, h: Hostile) -> Expect:
    # An e-mail (or a product id) carrying lone surrogates or control characters
    odd = draw(st.sampled_from([*LONE_SURROGATES, *CONTROL_CHARACTERS]))
    target, path = _slot(draw, h)
    name = "id" if h.action == "products.upsert" else "email"
    target[name] = value = MARK + odd + "@fuzz-customer.example.com" if name == "email" else MARK + odd * 40
    h.values.append(value)
    return Expect((f"{path}.{name}",))


def m_deep_nesting(draw: Any, h: Hostile) -> Expect:
    depth = draw(
        st.integers(MAX_JSON_DEPTH, 400)
    )  # the json module's encoder recurses: kept well under its limit
    value: Any = draw(st.sampled_from([[], {}, "x", 1]))
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    target, _ = _slot(draw, h)
    target[draw(st.sampled_from(["name", "tags", "value", "detail1", "properties"]))] = value
    return BODY


def m_huge_number(draw: Any, h: Hostile) -> Expect:
    digits = draw(st.integers(MAX_NUMBER_DIGITS + 1, 4_000))  # past 4,300 the encoder itself refuses
    number = int("7" * digits) * draw(st.sampled_from([1, -1]))
    target, _ = _slot(draw, h)
    target[draw(st.sampled_from(["date", "value", "price", "stock_available", "name"]))] = number
    return BODY


def m_non_finite_number(draw: Any, h: Hostile) -> Expect:
    # json.dumps writes these as Infinity, -Infinity and NaN; 1e400 is parsed as infinity too
    number = draw(st.sampled_from([float("inf"), float("-inf"), float("nan")]))
    target, _ = _slot(draw, h)
    target[draw(st.sampled_from(["date", "value", "price", "stock_available", "name"]))] = number
    return BODY


HOSTILE_SIZES: list[Mutation] = [
    m_huge_key,
    m_huge_value,
    m_odd_characters,
    m_deep_nesting,
    m_huge_number,
    m_non_finite_number,
]


COMMON: list[Mutation] = [
    m_missing_data,
    m_missing_group,
    m_bad_group_key,
    m_unknown_group,
    m_wrong_action,
    m_missing_action,
    m_extra_envelope_field,
    m_bad_id,
]
BY_ACTION: dict[str, list[Mutation]] = {
    "contact.upsert": [
        m_bad_email,
        m_missing_email,
        m_unmapped_field,
        contact_field,
        contact_field,
        m_opt_in_and_out,
        m_huge_tag_list,
        m_data_not_object,
    ],
    "contact.delete": [m_bad_email, m_missing_email, m_unmapped_field, m_bad_permanently, m_data_not_object],
    "event.create": [
        m_bad_email,
        m_missing_email,
        m_unmapped_field,
        event_field,
        event_field,
        m_missing_event_type,
        m_data_not_object,
    ],
    "products.upsert": [
        product_field,
        product_field,
        m_product_missing_field,
        m_product_not_object,
        m_products_empty,
        m_huge_product_list,
        m_many_bad_products,
    ],
}


@st.composite
def hostile_commands(draw: Any, *, envelope: bool = True) -> Hostile:
    """A valid command broken one way; ``envelope=False`` keeps action and group_key sound (the API)."""
    action = draw(st.sampled_from(ACTIONS))
    hostile = Hostile(
        {"action": action, "group_key": draw(st.sampled_from(GROUPS)), "data": _base_data(action)}, Expect(())
    )
    if draw(st.booleans()):
        hostile.command["id"] = f"fz-{next(_serial)}"
    mutations = BY_ACTION[action] + HOSTILE_SIZES + (COMMON if envelope else [])
    mutation = draw(st.sampled_from(mutations))
    hostile.expect = mutation(draw, hostile)
    try:  # an integer drawn past MAX_NUMBER_DIGITS (st.integers() is unbounded): refused when parsed
        check_bounds(hostile.command)
    except JsonLimitError:
        hostile.expect = Expect((*hostile.expect.fields, "body"), hostile.expect.types | {"validation"})
    return hostile


# ---- the environment: the consumers against the sandbox, moto for the dead-letter queue -----------------
@dataclass
class Env:
    run: ChaosRun
    logs: list[str] = field(default_factory=list)

    def start_example(self) -> None:
        self.logs.clear()
        self.run.drain_dead_letter_queue()
        self.run.sandbox.drain()
        self.run.wire.clear()

    def invoke(self, function: str, event: Any) -> Any:
        result, error = self.run.invoke(function, event)
        assert error is None, f"{function} raised {type(error).__name__}: {error}"
        return result

    def dead_letters(self) -> list[tuple[str, dict[str, Any], str]]:
        """The dead letters of this example, read (and removed) from the queue, reasons watched."""
        return [(body, json.loads(reason), reason) for body, reason in self.run.drain_dead_letter_queue()]

    def requests_mentioning(self, text: str) -> int:
        """How many requests of this example reached SALESmanago with ``text`` in them."""
        return sum(1 for request, _ in self.run.wire if text in json.dumps(request.body))


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    # No faults here, so nothing needs the chaos run's short read timeout: a long one keeps a busy
    # machine (a slow sandbox reply) from turning a sound neighbour into a redelivery.
    config = ChaosConfig(fault_rate=0.0, crash_rate=0.0, replay=False, log_level="DEBUG", read_timeout_s=5.0)
    with ChaosRun(config) as run:
        environment = Env(run)
        run.log_stream.keep = environment.logs
        run.stdout_stream.keep = environment.logs
        yield environment


def check_parked(env: Env, hostile: Hostile, *, expect: Expect | None = None) -> dict[str, Any]:
    """Exactly one dead letter, permanent, naming the culprit, small enough, echoing nothing hostile."""
    expect = expect or hostile.expect
    letters = env.dead_letters()
    assert len(letters) == 1, f"expected one dead letter, got {len(letters)}"
    body, reason, reason_text = letters[0]
    assert reason["error_type"] in expect.types, f"{reason['error_type']} for {expect}: {reason}"
    assert expect.named_by(reason), (
        f"{expect.fields} not named in {[d['field'] for d in reason['details']][:10]}"
    )
    assert reason["receive_count"] == 1
    assert len(body.encode()) + len(reason_text.encode()) <= DEAD_LETTER_LIMIT, (
        f"dead letter of {len(body) + len(reason_text):,} bytes: SQS would refuse it, and the message "
        "could never be parked with its reason"
    )
    check_not_echoed(env, hostile, reason_text)
    email = (
        (hostile.command.get("data") or {}).get("email")
        if isinstance(hostile.command.get("data"), dict)
        else None
    )
    if isinstance(email, str) and "@fuzz-customer" in email:
        assert env.requests_mentioning(email) == 0, "a hostile command reached SALESmanago"
    return reason


def check_not_echoed(env: Env, hostile: Hostile, *texts: str) -> None:
    for value in hostile.values:
        probe = value[: len(MARK) + 12]
        for text in (*texts, *env.logs):
            assert probe not in text and json.dumps(probe)[1:-1] not in text, "a hostile value was echoed"


# ---- SQS ---------------------------------------------------------------------------------------------
def sqs_event(*records: tuple[str, str | None]) -> dict[str, Any]:
    """An SQS event of (body, action attribute) records."""
    built = []
    for body, attribute in records:
        message = QueuedMessage(f"fz-msg-{next(_serial)}", body, 0, 1_764_095_400_000, attribute)
        message.receive_count, message.first_receive_ms = 1, 1_764_095_400_500
        built.append(message.record(QUEUE_ARN))
    return {"Records": built}


def neighbour() -> tuple[str, str]:
    email = _email()
    return email, json.dumps({"action": "contact.upsert", "group_key": "outlet", "data": {"email": email}})


def as_sqs_body(draw: Any, hostile: Hostile) -> tuple[str, str | None]:
    """The command as a producer queues it: plain, action as attribute, through a topic or a bus."""
    command = copy.deepcopy(hostile.command)
    action = command.get("action")
    how = draw(
        st.sampled_from(["plain", "attribute", "topic", "bus"])
        if isinstance(action, str)
        else st.just("plain")
    )
    if how == "plain":
        return json.dumps(command), None
    del command["action"]
    if how == "attribute":
        return json.dumps(command), action
    if how == "topic":
        notification = {
            "Type": "Notification",
            "MessageId": f"fz-{next(_serial)}",
            "TopicArn": TOPIC_ARN,
            "Message": json.dumps(command),
            "Timestamp": "2025-11-25T18:30:00.000Z",
            "MessageAttributes": {"action": {"Type": "String", "Value": action}},
        }
        return json.dumps(notification), None
    bus = {
        "version": "0",
        "id": "fz",
        "detail-type": action,
        "source": "com.example.shop",
        "time": "2025-11-25T18:30:00Z",
        "detail": command,
    }
    return json.dumps(bus), None


@FUZZ
@given(data=st.data(), hostile=hostile_commands())
def test_fuzz_sqs_consumer_parks_hostile_commands_naming_the_field(env: Env, data: Any, hostile: Hostile):
    # Given a hostile command in a batch beside a sound one
    env.start_example()
    hostile_record = as_sqs_body(data.draw, hostile)
    good_email, good = neighbour()
    records = [hostile_record, (good, None)]
    if data.draw(st.booleans()):
        records.reverse()
    # When the SQS consumer takes the batch
    result = env.invoke("sqs_consumer", sqs_event(*records))
    # Then the hostile one is parked naming its culprit, the sound one applied, nothing redelivered
    assert result == {"batchItemFailures": []}
    check_parked(env, hostile)
    assert env.run.sandbox.contact(good_email) is not None


@SOME
@given(
    body=st.one_of(
        st.text(SQS_TEXT, max_size=200).filter(lambda t: not _is_json(t)),
        st.sampled_from(UNICODE_EDGES[2:]),
        st.sampled_from(
            ["", " ", "{", "null", "[]", "[1, 2]", '"text"', "42", "true", "{'single': 'quotes'}"]
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=3),
            max_leaves=6,
        ).map(json.dumps),
    )
)
def test_fuzz_sqs_consumer_parks_bodies_that_are_not_commands(env: Env, body: str):
    env.start_example()
    result = env.invoke("sqs_consumer", sqs_event((body, None)))
    assert result == {"batchItemFailures": []}
    reason = check_parked(env, Hostile({}, Expect(("body",))))
    assert reason["action"] == "unknown"


hostile_json = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=2),
    st.fixed_dictionaries(
        {"action": st.one_of(st.text(max_size=5), st.integers(), st.lists(st.integers(), max_size=1))}
    ),
    st.fixed_dictionaries(
        {
            "action": st.fixed_dictionaries(
                {"Value": st.one_of(st.integers(), st.lists(st.integers(), max_size=1))}
            )
        }
    ),
)


@st.composite
def hostile_wrappers(draw: Any) -> tuple[str, Hostile]:
    """A body shaped like a topic's notification or a bus's event (producers can send those), its pieces
    of the wrong type, around a hostile command."""
    # The inner command keeps its action: else the wrapper's detail-type may rightly complete it.
    hostile = draw(hostile_commands().filter(lambda h: "action" in h.command))
    command = copy.deepcopy(hostile.command)
    if draw(st.booleans()):
        wrapper = {
            "Type": "Notification",
            "Message": json.dumps(command),
            "Timestamp": "2025-11-25T18:30:00Z",
        }
        piece = draw(st.sampled_from(["MessageAttributes", "Timestamp", "MessageId"]))
    else:
        wrapper = {"detail-type": "contact.upsert", "source": "com.example.shop", "detail": command}
        piece = draw(st.sampled_from(["time", "detail-type", "id"]))
    wrapper[piece] = draw(hostile_json)
    hostile.expect = Expect((*hostile.expect.fields, "action", "body"), hostile.expect.types | {"validation"})
    return json.dumps(wrapper), hostile


@SOME
@given(wrapped=hostile_wrappers())
def test_fuzz_sqs_consumer_parks_hostile_wrappers(env: Env, wrapped: tuple[str, Hostile]):
    # Given a body that looks like a notification or an event, with a piece of the wrong type
    env.start_example()
    body, hostile = wrapped
    good_email, good = neighbour()
    # When
    result = env.invoke("sqs_consumer", sqs_event((body, None), (good, None)))
    # Then it is parked, and its neighbour is not dragged down with it
    assert result == {"batchItemFailures": []}
    check_parked(env, hostile)
    assert env.run.sandbox.contact(good_email) is not None


def _is_json(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


# ---- SNS -----------------------------------------------------------------------------------------------
def sns_event(draw: Any, hostile: Hostile) -> tuple[dict[str, Any], Expect]:
    """A notification carrying the hostile command, sometimes with pieces of the envelope missing."""
    command = copy.deepcopy(hostile.command)
    action = command.get("action")
    attributes: dict[str, Any] = {}
    if isinstance(action, str) and draw(st.booleans()):
        attributes["action"] = {"Type": "String", "Value": command.pop("action")}
    sns: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": f"fz-{next(_serial)}",
        "TopicArn": TOPIC_ARN,
        "Subject": None,
        "Message": json.dumps(command),
        "Timestamp": "2025-11-25T18:30:00.000Z",
        "SignatureVersion": "1",
        "MessageAttributes": attributes,
    }
    record: dict[str, Any] = {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{TOPIC_ARN}:s",
        "Sns": sns,
    }
    expect = hostile.expect
    pieces = ["Sns", "Message", "MessageAttributes", "MessageId", "Timestamp", "TopicArn", "Type"]
    missing = draw(st.sets(st.sampled_from([*pieces, "EventSubscriptionArn"]), max_size=3))
    if "Sns" in missing or "Message" in missing:
        expect = Expect(("body",))
    elif "MessageAttributes" in missing and attributes:  # the action was there: now it is missing too
        expect = Expect((*expect.fields, "action"), expect.types | {"validation"})
    for name in missing:
        (record if name in record else sns).pop(name, None)
    return {"Records": [record]}, expect


@SOME
@given(
    message=st.one_of(
        st.text(SQS_TEXT, max_size=200).filter(lambda t: not _is_json(t)), st.none(), st.integers()
    )
)
def test_fuzz_sns_consumer_parks_messages_that_are_not_commands(env: Env, message: Any):
    env.start_example()
    event = {
        "Records": [
            {"EventSource": "aws:sns", "Sns": {"MessageId": "m", "TopicArn": TOPIC_ARN, "Message": message}}
        ]
    }
    result = env.invoke("sns_consumer", event)
    assert [o["status"] for o in result["outcomes"]] == ["dead_lettered"]
    check_parked(env, Hostile({}, Expect(("body",))))


# ---- EventBridge ---------------------------------------------------------------------------------------
def eventbridge_event(draw: Any, hostile: Hostile) -> tuple[dict[str, Any], Expect]:
    """The event a rule delivers (detail-type = action), sometimes with pieces of it missing."""
    detail = copy.deepcopy(hostile.command)
    expect = hostile.expect
    event: dict[str, Any] = {
        "version": "0",
        "id": f"fz-{next(_serial)}",
        "source": "com.example.shop",
        "account": ACCOUNT,
        "time": "2025-11-25T18:30:00Z",
        "region": REGION,
        "resources": [RULE_ARN],
        "detail": detail,
    }
    if isinstance(detail.get("action"), str):
        event["detail-type"] = detail.pop("action")
    elif "action" in detail:  # a detail-type is a string: a hostile non-string action rides in the detail
        event["detail-type"] = draw(st.sampled_from(ACTIONS))
    pieces = ["detail", "detail-type", "id", "time", "source", "resources", "version", "account", "region"]
    missing = draw(st.sets(st.sampled_from(pieces), max_size=3))
    if "detail" in missing:
        expect = Expect(("body",))
    elif "detail-type" in missing and "action" not in detail:
        expect = Expect((*expect.fields, "action"), expect.types | {"validation"})
    for name in missing:
        event.pop(name, None)
    return event, expect


@pytest.mark.parametrize(
    ("function", "envelope"),
    [("sns_consumer", sns_event), ("eventbridge_consumer", eventbridge_event)],
    ids=["sns", "eventbridge"],
)
@FUZZ
@given(data=st.data(), hostile=hostile_commands())
def test_fuzz_async_consumers_park_hostile_envelopes_naming_the_field(
    env: Env,
    function: str,
    envelope: Callable[..., tuple[dict[str, Any], Expect]],
    data: Any,
    hostile: Hostile,
):
    env.start_example()
    event, expect = envelope(data.draw, hostile)
    result = env.invoke(function, event)
    assert [o["status"] for o in result["outcomes"]] == ["dead_lettered"]
    check_parked(env, hostile, expect=expect)


@SOME
@given(detail=st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.integers(), max_size=3)))
def test_fuzz_eventbridge_consumer_parks_details_that_are_not_objects(env: Env, detail: Any):
    env.start_example()
    event = {"id": "fz", "detail-type": "contact.upsert", "source": "com.example.shop", "detail": detail}
    result = env.invoke("eventbridge_consumer", event)
    assert [o["status"] for o in result["outcomes"]] == ["dead_lettered"]
    check_parked(env, Hostile({}, Expect(("body",))))


# ---- the HTTP API ----------------------------------------------------------------------------------------
ROUTES = {
    "contact.upsert": ("POST", "/contacts"),
    "contact.delete": ("DELETE", "/contacts"),
    "event.create": ("POST", "/events"),
    "products.upsert": ("POST", "/products"),
}


@pytest.fixture(scope="module")
def api(env: Env) -> Callable[..., tuple[int, dict[str, Any]]]:
    """``api(method, path, body)`` with the demo key (bound to demo-shop) → (status, reply body)."""

    def call(method: str, path: str, body: str) -> tuple[int, dict[str, Any]]:
        status, reply = env.run.call_api(method, path, body)
        env.logs.append(json.dumps(reply))
        return status, reply

    return call


@FUZZ
@given(
    hostile=hostile_commands(envelope=False),
    envelope=st.sampled_from(["sound", "extra", "group", "unknown", "no_data"]),
)
def test_fuzz_api_refuses_hostile_bodies_naming_the_field(
    env: Env, api: Any, hostile: Hostile, envelope: str
):
    # Given a hostile body for the route of its action (the API takes the action from the route)
    env.start_example()
    method, path = ROUTES[hostile.command.pop("action")]
    hostile.command.pop("id", None)
    body = {"group_key": "demo-shop", "data": hostile.command.get("data")}
    expect, statuses = hostile.expect, {400}
    if envelope == "extra":
        body["unexpected_field"] = 1
        expect = Expect(("unexpected_field",))
    elif envelope == "group":
        body["group_key"] = "not a group key!"
        expect = Expect(("group_key",))
    elif envelope == "unknown":
        body["group_key"] = "outlet"  # a group this API key may not use: 403, unless the body fails first
        statuses = {400, 403}
    elif envelope == "no_data":
        del body["data"]
        expect = Expect(("data",))
    if "body" in hostile.expect.fields and "data" in body:  # refused when parsed, before the envelope
        expect, statuses = hostile.expect, {400}
    # When
    status, reply = api(method, path, json.dumps(body))
    # Then a 4xx (never a 5xx), an error body naming the field, nothing sent to SALESmanago
    assert status in statuses, reply
    error = reply["error"]
    if status == 400:
        named = [d["field"] for d in error["details"]]
        assert any(_covers(f, n) for f in expect.fields for n in named), (
            f"{expect.fields} not in {named[:10]}"
        )
    check_not_echoed(env, hostile, json.dumps(reply))
    assert not env.run.wire, "a refused request reached SALESmanago"


@SOME
@given(
    body=st.one_of(
        st.text(max_size=200).filter(lambda t: not _is_json(t) and t.strip()),
        st.sampled_from(["[]", "42", '"x"', "null"]),
    ),
    route=st.sampled_from(list(ROUTES.values())),
)
def test_fuzz_api_refuses_bodies_that_are_not_objects(env: Env, api: Any, body: str, route: tuple[str, str]):
    env.start_example()
    status, reply = api(*route, body)
    assert status == 400, reply
    assert reply["error"]["details"], reply


# ---- envelopes with nothing in them ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("function", "event"),
    [
        ("sns_consumer", {}),
        ("sns_consumer", {"Records": None}),
    ],
)
def test_fuzz_empty_envelope_does_nothing(env: Env, function: str, event: dict[str, Any]):
    env.start_example()
    env.invoke(function, event)
    assert env.dead_letters() == []


# ---- bugs the fuzzer found, fixed: their regression tests --------------------------
@pytest.mark.parametrize("action", [[], ["contact.upsert"], {"name": "contact.upsert"}])
@pytest.mark.parametrize("function", ["sqs_consumer", "sns_consumer"])  # EventBridge: detail-type wins
def test_fuzz_unhashable_action_is_parked(env: Env, function: str, action: Any):
    # Given a command whose action is a JSON array or object, beside a sound one (SQS)
    env.start_example()
    command = {"action": action, "group_key": "outlet", "data": {"email": _email()}}
    if function == "sqs_consumer":
        event = sqs_event((json.dumps(command), None), (neighbour()[1], None))
    else:
        event = {
            "Records": [{"EventSource": "aws:sns", "Sns": {"MessageId": "m", "Message": json.dumps(command)}}]
        }
    # When / Then: no exception, one dead letter naming "action"
    env.invoke(function, event)
    check_parked(env, Hostile(command, Expect(("action",))))


SQS_MAX_MESSAGE = 1024 * 1024  # SQS's hard ceiling (body and attributes together)


@pytest.mark.parametrize("function", ["sqs_consumer", "sns_consumer"])
def test_fuzz_reason_of_many_bad_items_fits_in_a_dead_letter(env: Env, function: str):
    # Given 1,500 products, every one of them wrong (a 40 KB message)
    env.start_example()
    command = {
        "action": "products.upsert",
        "group_key": "outlet",
        "data": [{"id": n, "url": "/x"} for n in range(1500)],
    }
    text = json.dumps(command)
    if function == "sqs_consumer":
        event = sqs_event((text, None))
    else:
        event = {"Records": [{"EventSource": "aws:sns", "Sns": {"MessageId": "m", "Message": text}}]}
    # When
    env.invoke(function, event)
    # Then its dead letter fits in an SQS message, and still names the first culprits
    [(body, reason, reason_text)] = env.dead_letters()
    assert len(body.encode()) + len(reason_text.encode()) <= SQS_MAX_MESSAGE
    assert reason["details"][0]["field"] == "data[0].id"


SOUND = {
    "action": "contact.upsert",
    "group_key": "outlet",
    "data": {"email": "wrapped@fuzz-customer.example.com"},
}
NOTIFICATION = {"Type": "Notification", "Message": json.dumps(SOUND), "Timestamp": "2025-11-25T18:30:00Z"}
BUS_EVENT = {"detail-type": "contact.upsert", "source": "com.example.shop", "detail": SOUND}


@pytest.mark.parametrize(
    "body",
    [
        NOTIFICATION | {"Timestamp": 1_764_095_400},
        NOTIFICATION | {"Timestamp": ["2025-11-25"]},
        NOTIFICATION | {"MessageAttributes": "contact.upsert"},
        NOTIFICATION | {"MessageAttributes": {"action": "contact.upsert"}},
        BUS_EVENT | {"time": 1_764_095_400},
        BUS_EVENT | {"time": {"iso": "2025-11-25"}},
    ],
    ids=[
        "sns-timestamp-int",
        "sns-timestamp-list",
        "sns-attributes-str",
        "sns-attribute-str",
        "bus-time-int",
        "bus-time-object",
    ],
)
def test_fuzz_wrapped_body_with_wrong_types_fails_only_itself(env: Env, body: dict[str, Any]):
    # Given a producer's body shaped like a notification or an event, one piece of it of the wrong type
    env.start_example()
    good_email, good = neighbour()
    # When it arrives in a batch with a sound message
    result, error = env.run.invoke("sqs_consumer", sqs_event((json.dumps(body), None), (good, None)))
    env.dead_letters()
    # Then the batch is not failed as a whole: the neighbour is applied, nothing is handed back
    assert error is None, f"the SQS consumer raised {type(error).__name__}: the whole batch goes back"
    assert result == {"batchItemFailures": []}
    assert env.run.sandbox.contact(good_email) is not None
