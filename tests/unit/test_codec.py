"""JSON through pydantic-core: parses exactly what the json module parses, writes ASCII it reads back."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from salesmanago_bridge.codec import MAX_NUMBER_DIGITS, JsonLimitError, check_bounds, dumps, loads

BOUND = 10**MAX_NUMBER_DIGITS - 1
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-BOUND, BOUND)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def parsed(parse: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", parse(text)
    except ValueError:
        return "refused", None


@settings(max_examples=500, deadline=None)
@given(st.one_of(json_values.map(json.dumps), st.text(string.printable, max_size=30), st.text(max_size=30)))
def test_codec_loads_parses_what_json_loads_parses(text: str) -> None:
    ours, theirs = parsed(loads, text), parsed(json.loads, text)
    if theirs[0] == "ok" and not _within_bounds(theirs[1]):  # NaN, say: refused, naming the bound
        assert ours[0] == "refused"
        return
    assert ours[0] == theirs[0]
    assert json.dumps(ours[1], sort_keys=True) == json.dumps(theirs[1], sort_keys=True)


def _within_bounds(value: Any) -> bool:
    try:
        check_bounds(value)
    except JsonLimitError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_codec_dumps_is_ascii_json_that_reads_back(value: Any) -> None:
    body = dumps(value)
    assert body.isascii()
    assert json.loads(body) == value


def test_codec_dumps_escapes_like_the_json_module() -> None:
    value = {"name": "Łódź", "city": "Gdańsk", "n": [1, 2.5, None, True]}
    assert dumps(value) == json.dumps(value, separators=(",", ":")).encode()
