"""A group's field map: which producer fields it may route, and routing them into ``data``."""

from __future__ import annotations

from typing import Any

from salesmanago_bridge.commands.data import DATA_MODELS, Action
from salesmanago_bridge.fields import field_path

# Computed once: pydantic builds a fresh mapping on every ``model_fields`` access.
FIELD_NAMES: dict[Action, frozenset[str]] = {
    action: frozenset(model.model_fields) for action, model in DATA_MODELS.items()
}
# Field-map targets beyond the model's own fields: contact properties take any name.
PREFIXED_TARGETS: dict[Action, tuple[str, ...]] = {Action.CONTACT_UPSERT: ("properties.",)}


def is_valid_target(action: Action, target: str) -> bool:
    """Whether a field map may route a source field of ``action`` to ``target``."""
    if target in FIELD_NAMES[action]:
        return True
    return any(target.startswith(p) and len(target) > len(p) for p in PREFIXED_TARGETS.get(action, ()))


def allowed_targets(action: Action) -> list[str]:
    """The documented targets for ``action`` (``properties.<name>`` stands for any name)."""
    return sorted(DATA_MODELS[action].model_fields) + [f"{p}<name>" for p in PREFIXED_TARGETS.get(action, ())]


def route_fields(
    raw: dict[str, Any], action: Action, field_map: dict[str, str], path: str
) -> tuple[dict[str, Any], list[str]]:
    """Apply the group's field map; return the routed data and the fields nothing took.

    A value the producer set itself wins over a routed one, and ``raw`` is never modified
    (it is what a dead letter carries).
    """
    known = FIELD_NAMES[action]
    if raw.keys() <= known:  # nothing to route: validation does not modify ``raw``
        return raw, []
    routed = dict(raw)
    copied: set[str] = set()  # buckets (``properties``) copied before a routed value goes in
    unmapped: list[str] = []
    for key in [key for key in raw if key not in known]:  # in the producer's order
        value = routed.pop(key)
        if key not in field_map:
            unmapped.append(field_path((path, key)))
            continue
        head, _, tail = field_map[key].partition(".")
        if not tail:
            routed.setdefault(head, value)
            continue
        bucket = routed.get(head)
        if head not in copied and (bucket is None or isinstance(bucket, dict)):
            bucket = routed[head] = dict(bucket or {})
            copied.add(head)
        if isinstance(bucket, dict):  # otherwise the producer's own value is wrong: validation names it
            bucket.setdefault(tail, value)
    return routed, unmapped
