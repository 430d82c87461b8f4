"""The envelope producers send, and the validated command the bridge executes.

Producers send ``{"data": ..., "group_key": "..."}`` (plus ``action`` and an optional ``id`` on the
async sources). ``build_command`` is where ``data`` is validated, once: after the group's field map
has routed it, against the action's model (commands/data.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from salesmanago_bridge.codec import JsonLimitError, check_bounds, loads
from salesmanago_bridge.commands.data import (
    DATA_MODELS,
    ITEM_LISTS,
    Action,
    CommandData,
    ContactDeleteData,
    ContactUpsertData,
    EventCreateData,
)
from salesmanago_bridge.commands.routing import route_fields
from salesmanago_bridge.errors import FieldProblem, UnmappedFieldError, ValidationFailedError
from salesmanago_bridge.fields import location_warnings, problems_from, trim_warnings

GROUP_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
GroupKey = Annotated[str, StringConstraints(pattern=GROUP_KEY_PATTERN)]
CommandId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]

# How a failed validation is told: (pydantic's error, the path of the data) → the failing fields.
# The consumers use pydantic's words (problems_from); the API its own (api/errors.py).
Describe = Callable[[ValidationError, tuple[int | str, ...]], list[FieldProblem]]
ObjectData = ContactUpsertData | ContactDeleteData | EventCreateData


@dataclass(frozen=True, eq=False)
class Command:
    """A validated, normalized command: what the dispatcher executes and a dead letter carries.

    Built only by ``build_command`` from parts pydantic has validated, so a plain dataclass: a
    model would cost a second validation (or ``model_construct``) per command.
    """

    action: Action
    group_key: str
    data: CommandData
    ignored_fields: tuple[str, ...] = ()
    given_id: str | None = None  # the producer's own id
    # Sent anyway, but not quite as given: trimmed values, a location no catalog shares.
    warnings: tuple[str, ...] = ()
    dated_by_default: bool = False  # an event's date is the time it was sent, not the producer's

    @cached_property
    def id(self) -> str:
        """The producer's id, else a hash of the content, derived only when asked for: most
        commands are applied without anyone reading it (it keys events and dead letters)."""
        return self.given_id or _derive_id(self.action, self.group_key, self.data)

    def __eq__(self, other: object) -> bool:
        # The same command whether its id was given (a replay) or derived (the first delivery).
        if not isinstance(other, Command):
            return NotImplemented
        return (self.action, self.group_key, self.data, self.ignored_fields, self.id) == (
            other.action,
            other.group_key,
            other.data,
            other.ignored_fields,
            other.id,
        )

    def __hash__(self) -> int:
        return hash((self.action, self.group_key, self.id))

    @cached_property
    def email(self) -> str | None:
        """The contact this command concerns (compared case-insensitively), if any."""
        return None if isinstance(self.data, tuple) else self.data.email.lower()

    def identified(self, given_id: str | None, default_date_ms: int) -> Command:
        """This command with the id and the default date an at-most-once path has fixed.

        Nothing is validated again: the id replaces the derived one, and the date is copied in
        only where the producer gave none (``dated_by_default``).
        """
        data = self.data
        if self.dated_by_default and isinstance(data, EventCreateData) and data.date != default_date_ms:
            data = data.model_copy(update={"date": default_date_ms})
        if data is self.data and given_id in (None, self.given_id):
            return self
        return replace(self, data=data, given_id=given_id or self.given_id)

    def normalized(self) -> dict[str, Any]:
        """``{"action", "group_key", "data", "id"}``: replayable as is, date and id kept."""
        if isinstance(self.data, tuple):
            data: Any = [p.model_dump(mode="json", exclude_none=True) for p in self.data]
        else:
            data = self.data.model_dump(mode="json", exclude_none=True)
        return {"action": str(self.action), "group_key": self.group_key, "data": data, "id": self.id}


class CommandEnvelope(BaseModel):
    """The outer shape every producer sends: ``{"data", "group_key"}`` plus ``action`` and ``id``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Action | None = None
    group_key: GroupKey
    data: Any = Field(...)
    id: CommandId | None = None

    @classmethod
    def parse(cls, body: Any, *, action: str | None = None) -> CommandEnvelope:
        """Validate the envelope; ``action`` comes from a message attribute or ``detail-type``.

        Raises:
            ValidationFailedError: naming every failing field.
        """
        try:
            if isinstance(body, str | bytes):
                body = loads(body)
            else:  # parsed elsewhere (the Lambda runtime parses an EventBridge event): same bounds
                check_bounds(body)
        except JsonLimitError as exc:
            raise ValidationFailedError(f"body {exc}", details=[FieldProblem("body", str(exc))]) from None
        except ValueError:
            raise ValidationFailedError(
                "body is not valid JSON", details=[FieldProblem("body", "is not valid JSON")]
            ) from None
        if not isinstance(body, dict):
            raise ValidationFailedError(
                "body must be a JSON object", details=[FieldProblem("body", "must be a JSON object")]
            )
        if action is not None and body.get("action") is None:
            body = {**body, "action": action}
        try:
            envelope = cls.model_validate(body)
        except ValidationError as exc:
            raise ValidationFailedError("invalid command", details=problems_from(exc)) from None
        if envelope.action is None:
            raise ValidationFailedError(
                "invalid command",
                details=[FieldProblem("action", "is required (in the body or as the 'action' attribute)")],
            )
        return envelope

    @property
    def known_action(self) -> Action:
        """The action: ``parse`` refuses an envelope without one."""
        assert self.action is not None
        return self.action

    def to_command(
        self,
        *,
        field_map: dict[str, str] | None = None,
        sent_at_ms: int | None = None,
        default_location: str | None = None,
    ) -> Command:
        """``build_command`` for this envelope: ``data`` validated once, after the field map.

        Raises:
            UnmappedFieldError: contact or event ``data`` holds fields nothing takes.
            ValidationFailedError: naming every failing field.
        """
        return build_command(
            self.known_action,
            self.group_key,
            self.data,
            given_id=self.id,
            field_map=field_map,
            sent_at_ms=sent_at_ms,
            default_location=default_location,
        )


def build_command(
    action: Action,
    group_key: str,
    data: Any,
    *,
    given_id: str | None = None,
    field_map: dict[str, str] | None = None,
    sent_at_ms: int | None = None,
    default_location: str | None = None,
    describe: Describe = problems_from,
    refusal: str | None = None,
) -> Command:
    """Route ``data`` through the group's field map, then validate it against the action's model.

    Args:
        action, group_key, given_id: from a validated envelope (or the API's request).
        data: the producer's ``data`` as parsed, never modified.
        field_map: the group's routes for ``action``.
        sent_at_ms: an event's date when it has none (when the message was sent).
        default_location: an event's location when it has none (the group's).
        describe: how pydantic's errors become failing fields; refusal: the message then
            (default ``invalid <action> data``).

    Raises:
        UnmappedFieldError: object ``data`` holds fields nothing takes.
        ValidationFailedError: naming every failing field.
    """
    field_map = field_map or {}
    ignored: list[str] = []
    warnings: tuple[str, ...] = ()
    dated_by_default = False
    try:
        if action in ITEM_LISTS:
            validated: Any = _items(action, group_key, data, field_map, ignored, describe, refusal)
            warnings = trim_warnings(validated)
        else:
            routed = _routed_object(action, group_key, data, field_map)
            if action is Action.EVENT_CREATE:
                routed, dated_by_default = _event_defaults(routed, sent_at_ms, default_location)
            validated = cast(ObjectData, DATA_MODELS[action].model_validate(routed))
            if action is Action.EVENT_CREATE:
                warnings = location_warnings(validated.location, default_location)
    except ValidationError as exc:
        raise ValidationFailedError(
            refusal or f"invalid {action} data", details=describe(exc, ("data",)), group_key=group_key
        ) from None
    return Command(action, group_key, validated, tuple(ignored), given_id, warnings, dated_by_default)


def _routed_object(action: Action, group_key: str, data: Any, field_map: dict[str, str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailedError(
            "invalid command", details=[FieldProblem("data", "must be a JSON object")], group_key=group_key
        )
    routed, unmapped = route_fields(data, action, field_map, "data")
    if unmapped:
        raise UnmappedFieldError(
            f"{len(unmapped)} field(s) not in the {action} contract nor in the group's field map",
            details=[
                FieldProblem(name, "unknown field; add it to the group's field_map") for name in unmapped
            ],
            group_key=group_key,
        )
    return routed


def _event_defaults(
    routed: dict[str, Any], sent_at_ms: int | None, default_location: str | None
) -> tuple[dict[str, Any], bool]:
    """The event with its date (when it was sent, so a redelivery keeps its id) and the group's
    location where it has none; and whether the date is that default."""
    defaults: dict[str, Any] = {}
    if routed.get("date") is None:
        defaults["date"] = sent_at_ms or int(datetime.now(UTC).timestamp() * 1000)
    # Only an absent location takes the group's: one of the wrong type is named by validation.
    if default_location and routed.get("location") in (None, ""):
        defaults["location"] = default_location
    if not defaults:
        return routed, False
    return {**routed, **defaults}, "date" in defaults  # a copy: ``routed`` may be the producer's own


def _items(
    action: Action,
    group_key: str,
    data: Any,
    field_map: dict[str, str],
    ignored: list[str],
    describe: Describe,
    refusal: str | None,
) -> tuple[Any, ...]:
    if not isinstance(data, list) or not data:
        raise ValidationFailedError(
            "invalid command",
            details=[FieldProblem("data", "must be a non-empty list of products")],
            group_key=group_key,
        )
    model = DATA_MODELS[action]
    items: list[Any] = []
    problems: list[FieldProblem] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append(FieldProblem(f"data[{index}]", "must be a JSON object"))
            continue
        routed, unmapped = route_fields(item, action, field_map, f"data[{index}]")
        ignored.extend(unmapped)
        try:
            items.append(model.model_validate(routed))
        except ValidationError as exc:
            problems.extend(describe(exc, ("data", index)))
    if problems:
        raise ValidationFailedError(
            refusal or f"invalid {action} data", details=problems, group_key=group_key
        )
    return tuple(items)


def _derive_id(action: Action, group_key: str, data: Any) -> str:
    """A stable id from the content, so a replay of the same command carries the same key."""
    if isinstance(data, tuple):
        payload: Any = [p.model_dump(mode="json", exclude_none=True) for p in data]
    else:
        payload = data.model_dump(mode="json", exclude_none=True)
        payload["email"] = str(payload["email"]).lower()
    canonical = json.dumps([str(action), group_key, payload], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]
