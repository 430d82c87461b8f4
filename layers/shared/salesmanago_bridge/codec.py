"""JSON in and out through pydantic-core's codec, already loaded for validation; bounded on the way in.

It reads and writes the bridge's bodies about twice as fast as the ``json`` module. Where it
refuses a text that ``json.loads`` accepts (a lone surrogate escape, say), ``json.loads`` decides,
so what parses is exactly what the ``json`` module would parse, within the bounds below.

Every parsed value is bounded, whichever parser read it: no non-finite number (``NaN``,
``Infinity``, or a literal such as ``1e400`` that overflows to infinity), no integer of more than
``MAX_NUMBER_DIGITS`` digits, no nesting deeper than ``MAX_JSON_DEPTH`` arrays and objects. A
value past a bound raises ``JsonLimitError`` naming the problem, so the callers refuse it as a
permanent validation failure instead of crashing later (an ``OverflowError`` in a date, Python's
4,300-digit limit in a ``str()``, a ``RecursionError`` in a serializer).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json, to_json

# The deepest sound command is 5 levels (envelope, data, consentDetails, an item); an SNS
# notification or an EventBridge event queued in SQS adds 2.
MAX_JSON_DEPTH = 32
# An epoch in milliseconds has 13 digits, an amount at most 21 (19 before the decimal point).
MAX_NUMBER_DIGITS = 32
_INT_LIMIT = 10**MAX_NUMBER_DIGITS
NESTED_PROBLEM = f"is nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects"
DIGITS_PROBLEM = f"holds an integer of more than {MAX_NUMBER_DIGITS} digits"
FINITE_PROBLEM = "holds a number that is not finite (NaN, Infinity, or out of the float range)"


class JsonLimitError(ValueError):
    """Raised when a JSON text or value is well-formed but past a bound; the message is the problem."""


def loads(text: str | bytes) -> Any:
    """Parse like ``json.loads``, within the bounds.

    Raises:
        JsonLimitError: the value is past a bound (its message names which).
        ValueError: the text is not JSON.
    """
    try:
        value = from_json(text, allow_inf_nan=False)
    except ValueError:
        value = _loads_with_json_module(text)
    check_bounds(value)
    return value


def _loads_with_json_module(text: str | bytes) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except RecursionError:  # the json module recurses per level: deeper than any bound of ours
        raise JsonLimitError(NESTED_PROBLEM) from None


def _refuse_constant(name: str) -> Any:
    raise JsonLimitError(FINITE_PROBLEM)


def _bounded_int(literal: str) -> int:
    # Checked before int(): past 4,300 digits Python refuses it, and the conversion is quadratic.
    if len(literal.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise JsonLimitError(DIGITS_PROBLEM)
    return int(literal)


def check_bounds(value: Any) -> None:
    """Walk ``value`` without recursion; raise on the first bound it breaks.

    For values parsed elsewhere too: the Lambda runtime parses an EventBridge event itself.

    Raises:
        JsonLimitError: naming the problem.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        kind = type(node)
        if kind is dict or kind is list:
            if depth >= MAX_JSON_DEPTH:
                raise JsonLimitError(NESTED_PROBLEM)
            for child in node.values() if kind is dict else node:
                push((child, depth + 1))
        elif kind is float:
            if node - node != 0.0:  # inf - inf and nan - nan are nan
                raise JsonLimitError(FINITE_PROBLEM)
        elif kind is int and not -_INT_LIMIT < node < _INT_LIMIT:
            raise JsonLimitError(DIGITS_PROBLEM)


def pruned(value: Any) -> Any:
    """A copy of ``value`` with every array or object past ``MAX_JSON_DEPTH`` replaced by a note.

    Built without recursion: a dead letter of a too-deep value must still be serializable.
    """
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        node, parent, slot, depth = stack.pop()
        if type(node) is dict or type(node) is list:
            if depth >= MAX_JSON_DEPTH:
                parent[slot] = f"(pruned: {NESTED_PROBLEM})"
                continue
            copy: Any = dict.fromkeys(node) if type(node) is dict else [None] * len(node)
            parent[slot] = copy
            keys = node.keys() if type(node) is dict else range(len(node))
            stack.extend((node[key], copy, key, depth + 1) for key in keys)
        else:
            parent[slot] = node
    return root[0]


def dumps(value: Any) -> bytes:
    """Compact JSON of plain data (dicts, lists, strings, numbers, booleans, None).

    ASCII, every other character escaped as the ``json`` module writes it: a server that reads
    a body without a charset as Latin-1 still gets "Łódź" right.
    """
    return to_json(value, ensure_ascii=True)
