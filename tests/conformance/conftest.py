"""The conformance corpus: request and reply samples that neither the bridge nor the sandbox wrote.

Each ``corpus/*.json`` file is one SALESmanago operation: a request sample and reply samples, each
naming its source (the official library, a real reply kept by a public client, the docs) and its
confidence (H, M, L as in docs/salesmanago.md). The tests hold the bridge's request bodies and the
sandbox's replies to these shapes: keys, nesting and JSON types, not values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).parent / "corpus"
CONFIDENCES = frozenset({"H", "M", "L"})


def load_corpus() -> dict[str, dict[str, Any]]:
    """Every operation file, by file stem."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(CORPUS_DIR.glob("*.json"))}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape_differences(
    actual: Any,
    sample: Any,
    *,
    complete: bool,
    optional: frozenset[str] = frozenset(),
    maps: frozenset[str] = frozenset(),
    path: str = "",
) -> list[str]:
    """Where ``actual`` leaves the sample's shape.

    Every key of ``actual`` must be in the sample with the same JSON type (an integer may stand
    where the sample has a number, not the reverse); with ``complete``, every key of the sample must
    be in ``actual`` too, unless its path is ``optional``. At a path in ``maps`` the keys are free
    (a map of names, such as contact properties) and each value is held to the sample's first. A
    null on either side says nothing about the type (real replies are full of nulls); list items
    are held to the sample's first item.
    """
    found, expected = _kind(actual), _kind(sample)
    if "null" in (found, expected):
        return []
    if found != expected and not (found == "integer" and expected == "number"):
        return [f"{path or 'body'}: {found} where the corpus has {expected}"]
    problems: list[str] = []
    if found == "object" and path in maps:
        for key, value in actual.items():
            problems += shape_differences(
                value, next(iter(sample.values()), None), complete=complete, path=f"{path}.{key}"
            )
    elif found == "object":
        for key, value in actual.items():
            where = f"{path}.{key}" if path else key
            if key not in sample:
                problems.append(f"{where}: not in the corpus sample")
            else:
                problems += shape_differences(
                    value, sample[key], complete=complete, optional=optional, maps=maps, path=where
                )
        if complete:
            for key in sample:
                where = f"{path}.{key}" if path else key
                if key not in actual and where not in optional:
                    problems.append(f"{where}: in the corpus sample, missing here")
    elif found == "array" and actual and sample:
        for item in actual:
            problems += shape_differences(
                item, sample[0], complete=complete, optional=optional, maps=maps, path=f"{path}[]"
            )
    return problems


def has_path(body: Any, path: str) -> bool:
    """Whether ``a.b[].c`` is present (in every item, for ``[]``)."""
    head, _, rest = path.partition(".")
    many = head.endswith("[]")
    key = head.removesuffix("[]")
    if not isinstance(body, dict) or key not in body:
        return False
    value = body[key]
    if not rest:
        return True
    if many:
        return isinstance(value, list) and bool(value) and all(has_path(item, rest) for item in value)
    return has_path(value, rest)
