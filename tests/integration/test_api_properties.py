"""Property-based run against the API handler: whatever a caller sends, no 5xx while SALESmanago is healthy.

Bounded (MAX_EXAMPLES, derandomized) so it stays a few seconds in `make test`.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from local.runner import load_handler
from local.sandbox import Sandbox
from salesmanago_bridge.commands import EVENT_TYPES
from tests.conftest import PRODUCT_BASE
from tests.integration.test_api import MULTI_KEY, Call, api_environment, bind_to_both_groups, caller

MAX_EXAMPLES = 200
ALLOWED = {200, 400, 403, 404, 409, 413}
KEY_IDS = ["demo-key-id-1", "outlet-key-id-2", "unbound-key-id-3", MULTI_KEY, None]
GROUPS = ["demo-shop", "outlet", "no-such-group"]
PREFIXES = ["", "/Production", "/v1"]
# A marker the generated e-mails carry, so the test can tell that none was echoed in an error.
MARKER = "zq9"

emails = st.builds(
    lambda local, domain: f"{MARKER}{local}@{domain}.example.com",
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12),
    st.sampled_from(["customer", "shop", "x"]),
)
bad_emails = st.builds(lambda s: f"{MARKER}{s}", st.text(max_size=20))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**22), max_value=10**22),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
texts = st.text(max_size=40)
money = st.decimals(min_value=0, max_value=10**6, places=2).map(float)

# Valid values per field; `mutated` then breaks some requests on purpose.
contact_fields = {
    "name": texts,
    "phone": st.text(string.digits + "+ ", max_size=15),
    "company": texts,
    "streetAddress": texts,
    "city": texts,
    "country": st.sampled_from(["PL", "DE", "Polska"]),
    "state": st.sampled_from(["CUSTOMER", "PROSPECT", "PARTNER", "OTHER", "UNKNOWN"]),
    "tags": st.lists(st.text(string.ascii_uppercase + "_", min_size=1, max_size=20), max_size=4),
    "removeTags": st.lists(st.text(string.ascii_uppercase, min_size=1, max_size=20), max_size=2),
    "properties": st.dictionaries(
        st.text(string.ascii_lowercase, min_size=1, max_size=10), scalars, max_size=3
    ),
    "birthday": st.sampled_from(["19880417", "1988-04-17"]),
    "lang": st.sampled_from(["pl", "en"]),
    "forceOptIn": st.booleans(),
    "loyalty_tier": texts,  # routed by demo-shop's field map
}
event_fields = {
    "value": money,
    "date": st.one_of(
        st.integers(1_600_000_000_000, 2_000_000_000_000), st.sampled_from(["2026-11-25T18:29:00Z"])
    ),
    "products": st.one_of(
        st.lists(st.text(string.ascii_uppercase + string.digits + "-", min_size=1, max_size=8), max_size=3),
        st.text(string.ascii_uppercase + ",", max_size=40),
    ),
    "description": st.text(max_size=60),
    "location": st.sampled_from(["demo_shop", "outlet", "shop.example/1"]),
    "externalId": texts,
    "shopDomain": st.sampled_from(["shop.example.com"]),
    "detail1": texts,
    "order_channel": texts,  # routed by demo-shop's field map
}
product_fields = {
    "sub_category": texts,
    "sex": st.sampled_from([-1, 0, 1, 2, 4]),
    "price": money,
    "special_price": money,
    "image2_url": st.sampled_from(["https://s.example.com/2.jpg"]),
    "stock_available": st.integers(0, 10**6),
    "color": st.text(max_size=40),
    "season": st.text(max_size=40),
    "active": st.booleans(),
    "detail1": texts,
    "ean": st.text(string.digits, max_size=13),  # routed by demo-shop's field map
    "warranty": json_values,  # nothing maps it: ignored and listed
}
event_types = st.sampled_from(EVENT_TYPES)


def some_of(
    fields: dict[str, st.SearchStrategy[Any]], **required: st.SearchStrategy[Any]
) -> st.SearchStrategy:
    return st.fixed_dictionaries(required, optional=fields)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid object, or (one time in four) one with a field dropped, replaced or added."""
    value = dict(draw(valid))
    if draw(st.integers(0, 3)) == 0:
        how = draw(st.sampled_from(["drop", "replace", "add"]))
        if how == "add" or not value:
            value[draw(st.text(max_size=12))] = draw(json_values)
        else:
            name = draw(st.sampled_from(sorted(value)))
            if how == "drop":
                del value[name]
            else:
                value[name] = draw(st.one_of(json_values, bad_emails))
    return value


data_by_route = {
    ("POST", "/contacts"): mutated(some_of(contact_fields, email=emails)),
    ("DELETE", "/contacts"): mutated(some_of({"permanently": st.booleans()}, email=emails)),
    ("POST", "/events"): mutated(some_of(event_fields, email=emails, contactExtEventType=event_types)),
    ("POST", "/products"): st.lists(
        mutated(
            some_of(
                product_fields,
                **{k: st.just(v) for k, v in PRODUCT_BASE.items()},
                id=st.text(min_size=1, max_size=32),
            )
        ),
        min_size=1,
        max_size=3,
    ),
}


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, Any, dict[str, str], str | None]:
    kind = draw(st.sampled_from(["write", "write", "write", "get_by_id", "get_by_email", "raw", "elsewhere"]))
    prefix = draw(st.sampled_from(PREFIXES))
    key_id = draw(st.sampled_from(["demo-key-id-1", "demo-key-id-1", *KEY_IDS]))
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(st.text(string.printable.strip(), max_size=20))
    query: dict[str, str] = {}
    group = draw(st.one_of(st.none(), st.sampled_from(GROUPS), st.text(string.printable, max_size=8)))
    group = group if draw(st.integers(0, 2)) == 0 else None  # mostly the key's own group, by default
    if kind == "write":
        method, path = draw(st.sampled_from(sorted(data_by_route)))
        body: Any = {"data": draw(data_by_route[(method, path)])}
        if group is not None:
            body["group_key"] = group
        body = draw(mutated(st.just(body))) if draw(st.integers(0, 5)) == 0 else body
    elif kind == "raw":
        method, path = draw(st.sampled_from(sorted(data_by_route)))
        body = draw(st.one_of(st.text(max_size=40), json_values.map(json.dumps)))
    else:
        method, body = "GET", None
        if group is not None:
            query["group_key"] = group
        if kind == "get_by_id":
            ids = st.one_of(st.uuids().map(str), st.text(string.ascii_letters + "-_$%", max_size=70))
            path = "/contact/" + draw(ids)
        elif kind == "get_by_email":
            path = "/contact_by_email"
            query["email"] = draw(st.one_of(emails, bad_emails))
        else:
            method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
            path, body = "/" + draw(st.text(string.ascii_lowercase + "/_", max_size=15)), draw(json_values)
    target = prefix + path + ("?" + urlencode(query) if query else "")
    return method, target, body, headers, key_id


@pytest.fixture
def call(monkeypatch: pytest.MonkeyPatch, groups_file: Path, sandbox: Sandbox) -> Any:
    bind_to_both_groups(groups_file)
    with api_environment(monkeypatch, groups_file):
        yield caller(load_handler("api").lambda_handler)


@pytest.mark.slow
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(request=requests())
def test_api_any_request_gets_no_5xx_while_salesmanago_is_healthy(call: Call, sandbox: Sandbox, request: Any):
    # Given any request a caller could send, SALESmanago (the sandbox) healthy
    method, target, body, headers, key_id = request
    # When
    reply = call(method, target, body, headers=headers, key_id=key_id)
    event(f"{method} {reply.status}")  # shown by --hypothesis-show-statistics
    # Then it is answered, in the stable shape, and never with a 5xx
    assert reply.status in ALLOWED, (reply.status, reply.body)
    if reply.status >= 400:
        assert set(reply.body) == {"error"}
        assert set(reply.error) == {"code", "message", "details"}
        assert all(set(d) == {"field", "problem"} for d in reply.error["details"])
        assert MARKER not in json.dumps(reply.body)  # no input echoed
