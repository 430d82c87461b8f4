"""The public contract: what producers send, and the normalized command the bridge executes.

Producers send ``{"data": ..., "group_key": "..."}`` (plus ``action`` and an optional ``id`` on the
async sources). Field names in ``data`` are the ones our users have always sent, so the models
keep them as they are (camelCase for contacts and events, snake_case for products).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
    model_validator,
)

from salesmanago_bridge.codec import JsonLimitError, check_bounds, loads
from salesmanago_bridge.errors import FieldProblem, UnmappedFieldError, ValidationFailedError
from salesmanago_bridge.fields import (
    CHECK_URL,
    Birthday,
    Email,
    EpochMs,
    EventValue,
    Money,
    PropertyValue,
    Tag,
    Text,
    at_most,
    field_path,
    join_ids,
    location_warnings,
    problems_from,
    text,
    trim_warnings,
    url_text,
)


class Action(StrEnum):
    """The four write operations; also the EventBridge ``detail-type``."""

    CONTACT_UPSERT = "contact.upsert"
    CONTACT_DELETE = "contact.delete"
    EVENT_CREATE = "event.create"
    PRODUCTS_UPSERT = "products.upsert"


# salesmanago-api.md §3: the 13 types older integrations know, then the 12 added later.
LEGACY_EVENT_TYPES = (
    "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED",
    "ACTIVATION", "MEETING", "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION",
)  # fmt: skip
EVENT_TYPES = (
    *LEGACY_EVENT_TYPES,
    "CANCELLATION", "RETURN", "SURVEY", "APP_STATUS", "APP_TYPE_WEB", "APP_TYPE_MANUAL",
    "APP_TYPE_RETENTION", "APP_TYPE_UPSALE", "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN", "REPEATED_LOAN",
)  # fmt: skip
# mypy cannot read a Literal of a tuple built at runtime; pydantic can (one list, EVENT_TYPES)
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
ContactState = Literal["CUSTOMER", "PROSPECT", "PARTNER", "OTHER", "UNKNOWN"]

GROUP_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
EVENT_LOCATION_MAX_LENGTH = 255  # SALESmanago's library trims an event's location here


GroupKey = Annotated[str, StringConstraints(pattern=GROUP_KEY_PATTERN)]
CommandId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class ConsentDetail(_Model):
    consentName: Annotated[str, text(255, 1)]
    consentAccept: bool
    agreementDate: EpochMs | None = None
    ip: Text | None = None
    optOut: bool | None = None


class ContactUpsertData(_Model):
    email: Email
    name: Text | None = None
    phone: Text | None = None
    fax: Text | None = None
    company: Text | None = None
    streetAddress: Text | None = None
    zipCode: Text | None = None
    city: Text | None = None
    country: Text | None = None
    newEmail: Email | None = None
    externalId: Text | None = None
    state: ContactState | None = None
    tags: list[Tag] | None = None
    removeTags: list[Tag] | None = None
    properties: dict[Annotated[str, text(255, 1)], PropertyValue] | None = None
    birthday: Birthday | None = None
    province: Text | None = None
    lang: Text | None = None
    forceOptIn: bool | None = None
    forceOptOut: bool | None = None
    forcePhoneOptIn: bool | None = None
    forcePhoneOptOut: bool | None = None
    consentDetails: list[ConsentDetail] | None = None

    @model_validator(mode="after")
    def _opt_in_xor_out(self) -> ContactUpsertData:
        if self.forceOptIn and self.forceOptOut:
            raise ValueError("forceOptIn and forceOptOut cannot both be true")
        if self.forcePhoneOptIn and self.forcePhoneOptOut:
            raise ValueError("forcePhoneOptIn and forcePhoneOptOut cannot both be true")
        return self


class ContactDeleteData(_Model):
    email: Email
    permanently: bool = False


# create_model makes the 20 detail fields; mypy sees neither the call's keywords nor the class it
# returns as a base, hence the two ignores below and on EventCreateData (and ProductData likewise).
_EventDetails = create_model(  # detail1 ... detail20, each at most 255 characters
    "_EventDetails",
    __base__=_Model,
    **{f"detail{n}": (Text | None, None) for n in range(1, 21)},  # type: ignore[call-overload]
)


class EventCreateData(_EventDetails):  # type: ignore[misc, valid-type]
    email: Email
    contactExtEventType: EventType
    description: Annotated[str, text(2048)] | None = None
    products: Annotated[str, BeforeValidator(join_ids), AfterValidator(at_most(512))] | None = None
    location: Annotated[str, text(EVENT_LOCATION_MAX_LENGTH)] | None = None
    value: EventValue | None = None
    externalId: Text | None = None
    shopDomain: Text | None = None
    date: EpochMs | None = None


_ProductDetails = create_model(  # detail1 ... detail5, each at most 512 characters
    "_ProductDetails",
    __base__=_Model,
    **{f"detail{n}": (Annotated[str, text(512)] | None, None) for n in range(1, 6)},  # type: ignore[call-overload]
)


class ProductData(_ProductDetails):  # type: ignore[misc, valid-type]
    id: Annotated[str, text(32, 1)]
    name: Annotated[str, text(100, 1)]
    description: Annotated[str, text(1024, 1)]
    category: Annotated[str, text(255, 1)]
    sub_category: Annotated[str, text(512)] | None = None
    brand: Annotated[str, text(512, 1)]
    sex: Literal[-1, 0, 1, 2, 4] | None = None
    price: Money | None = None
    special_price: Money | None = None
    url: Annotated[str, url_text(512), CHECK_URL]
    image_url: Annotated[str, url_text(512), CHECK_URL]
    image2_url: Annotated[str, url_text(128), CHECK_URL] | None = None
    stock_available: Annotated[int, Field(ge=0)] | None = None
    color: Annotated[str, text(40)] | None = None
    season: Annotated[str, text(40)] | None = None
    active: bool | None = None
    available: bool | None = None


DATA_MODELS: dict[Action, type[BaseModel]] = {
    Action.CONTACT_UPSERT: ContactUpsertData,
    Action.CONTACT_DELETE: ContactDeleteData,
    Action.EVENT_CREATE: EventCreateData,
    Action.PRODUCTS_UPSERT: ProductData,
}
# Computed once: pydantic builds a fresh mapping on every ``model_fields`` access.
FIELD_NAMES: dict[Action, frozenset[str]] = {
    action: frozenset(model.model_fields) for action, model in DATA_MODELS.items()
}
# Field-map targets beyond the model's own fields: contact properties take any name.
PREFIXED_TARGETS: dict[Action, tuple[str, ...]] = {Action.CONTACT_UPSERT: ("properties.",)}

ContactData = ContactUpsertData | ContactDeleteData | EventCreateData


def is_valid_target(action: Action, target: str) -> bool:
    """Whether a field map may route a source field of ``action`` to ``target``."""
    if target in FIELD_NAMES[action]:
        return True
    return any(target.startswith(p) and len(target) > len(p) for p in PREFIXED_TARGETS.get(action, ()))


def allowed_targets(action: Action) -> list[str]:
    """The documented targets for ``action`` (``properties.<name>`` stands for any name)."""
    return sorted(DATA_MODELS[action].model_fields) + [f"{p}<name>" for p in PREFIXED_TARGETS.get(action, ())]


def _route_fields(
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


@dataclass(frozen=True, eq=False)
class Command:
    """A validated, normalized command: what the dispatcher executes and a dead letter carries.

    Built only by ``CommandEnvelope.to_command`` from parts pydantic has validated, so a plain
    dataclass: a model would cost a second validation (or ``model_construct``) per command.
    """

    action: Action
    group_key: str
    data: ContactUpsertData | ContactDeleteData | EventCreateData | tuple[ProductData, ...]
    ignored_fields: tuple[str, ...] = ()
    given_id: str | None = None  # the producer's own id
    # Sent anyway, but not quite as given: trimmed values, a location no catalog shares.
    warnings: tuple[str, ...] = ()

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
        """Validate ``data`` for the action after applying the group's field map.

        Raises:
            UnmappedFieldError: contact or event ``data`` holds fields nothing takes.
            ValidationFailedError: naming every failing field.
        """
        assert self.action is not None
        action = self.action
        field_map = field_map or {}
        ignored: list[str] = []
        warnings: tuple[str, ...] = ()
        try:
            if action is Action.PRODUCTS_UPSERT:
                data: Any = self._products(field_map, ignored)
                warnings = trim_warnings(data)
            else:
                data = self._contact_data(action, field_map, sent_at_ms, default_location)
                if action is Action.EVENT_CREATE:
                    warnings = location_warnings(data.location, default_location)
        except ValidationError as exc:
            raise ValidationFailedError(
                f"invalid {action} data", details=problems_from(exc, ("data",)), group_key=self.group_key
            ) from None
        return Command(action, self.group_key, data, tuple(ignored), self.id, warnings)

    def _contact_data(
        self, action: Action, field_map: dict[str, str], sent_at_ms: int | None, default_location: str | None
    ) -> ContactData:
        if not isinstance(self.data, dict):
            raise ValidationFailedError(
                "invalid command",
                details=[FieldProblem("data", "must be a JSON object")],
                group_key=self.group_key,
            )
        routed, unmapped = _route_fields(self.data, action, field_map, "data")
        if unmapped:
            raise UnmappedFieldError(
                f"{len(unmapped)} field(s) not in the {action} contract nor in the group's field map",
                details=[
                    FieldProblem(name, "unknown field; add it to the group's field_map") for name in unmapped
                ],
                group_key=self.group_key,
            )
        if action is Action.EVENT_CREATE:
            defaults: dict[str, Any] = {}
            if routed.get("date") is None:  # the time the message was sent, so a redelivery keeps its id
                defaults["date"] = sent_at_ms or int(datetime.now(UTC).timestamp() * 1000)
            # Only an absent location takes the group's: one of the wrong type is named by validation.
            if default_location and routed.get("location") in (None, ""):
                defaults["location"] = default_location
            if defaults:  # a copy: ``routed`` may be the producer's own data
                routed = {**routed, **defaults}
        return cast(ContactData, DATA_MODELS[action].model_validate(routed))

    def _products(self, field_map: dict[str, str], ignored: list[str]) -> tuple[ProductData, ...]:
        if not isinstance(self.data, list) or not self.data:
            raise ValidationFailedError(
                "invalid command",
                details=[FieldProblem("data", "must be a non-empty list of products")],
                group_key=self.group_key,
            )
        products: list[ProductData] = []
        problems: list[FieldProblem] = []
        for index, item in enumerate(self.data):
            if not isinstance(item, dict):
                problems.append(FieldProblem(f"data[{index}]", "must be a JSON object"))
                continue
            routed, unmapped = _route_fields(item, Action.PRODUCTS_UPSERT, field_map, f"data[{index}]")
            ignored.extend(unmapped)
            try:
                products.append(ProductData.model_validate(routed))
            except ValidationError as exc:
                problems.extend(problems_from(exc, ("data", index)))
        if problems:
            raise ValidationFailedError(
                "invalid products.upsert data", details=problems, group_key=self.group_key
            )
        return tuple(products)


def _derive_id(action: Action, group_key: str, data: Any) -> str:
    """A stable id from the content, so a replay of the same command carries the same key."""
    if isinstance(data, tuple):
        payload: Any = [p.model_dump(mode="json", exclude_none=True) for p in data]
    else:
        payload = data.model_dump(mode="json", exclude_none=True)
        payload["email"] = str(payload["email"]).lower()
    canonical = json.dumps([str(action), group_key, payload], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]
