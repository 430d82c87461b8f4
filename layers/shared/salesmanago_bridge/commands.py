"""The public contract: what producers send, and the normalized command the bridge executes.

Producers send ``{"data": ..., "group_key": "..."}`` (plus ``action`` and an optional ``id`` on the
async sources). Field names in ``data`` are the ones our users have always sent, so the models
keep them as they are (camelCase for contacts and events, snake_case for products).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)

from salesmanago_bridge.codec import JsonLimitError, check_bounds, loads
from salesmanago_bridge.errors import FieldProblem, UnmappedFieldError, ValidationFailedError
from salesmanago_bridge.privacy import scrub


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
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
ContactState = Literal["CUSTOMER", "PROSPECT", "PARTNER", "OTHER", "UNKNOWN"]

GROUP_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
# A product catalog's location, as SALESmanago's official plugin validates it (salesmanago-api.md §3).
# An event links to a catalog's products only when its own location equals the catalog's.
LOCATION_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]{2,254}$"
EVENT_LOCATION_MAX_LENGTH = 255  # SALESmanago's library trims an event's location here
LOCATION_MISMATCH = "location_mismatch"
# Our contract accepts more than SALESmanago keeps for these product fields; SALESmanago's own
# library trims them at 255 (salesmanago-api.md §4), so the mapping does too, and says so.
SALESMANAGO_TEXT_LIMIT = 255
TRIMMED_PRODUCT_FIELDS = ("brand", "sub_category", *(f"detail{n}" for n in range(1, 6)))
TRIMMED_TO = f"{SALESMANAGO_TEXT_LIMIT} characters (SALESmanago's limit)"
EMAIL_MAX_LENGTH = 254
MAX_PATH_PART = 64  # characters of one name in a reported field path
# Below this an epoch value is surely seconds, not milliseconds (it would be before March 1973).
MIN_EPOCH_MS = 100_000_000_000
MAX_EPOCH_MS = 32_503_680_000_000  # year 3000


# Plain ASCII addresses (nearly all of them) are checked by this pattern, a strict subset of what
# email-validator accepts, with the same normalization (domain lower-cased). Anything else, and
# every rejection, goes to email-validator itself: it costs ~10x more CPU per address.
_PLAIN_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?P<tld>[A-Za-z]{2,63}))"
)
_WHITESPACE = re.compile(r"\s")
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def _validate_email(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > EMAIL_MAX_LENGTH:
        raise ValueError(f"must be at most {EMAIL_MAX_LENGTH} characters")
    plain = _PLAIN_EMAIL.fullmatch(value)
    if (
        plain is not None
        and len(plain["local"]) <= 64
        and len(plain["domain"]) <= 253
        and plain["tld"].lower() not in _SPECIAL_USE_TLDS
    ):
        ascii_form = f"{plain['local']}@{plain['domain'].lower()}"
        if "--" not in plain["domain"]:
            return ascii_form
        # IDNA reserves "--" in a label's 3rd and 4th place: email-validator judges the domain,
        # but the address keeps its ASCII form (an xn-- domain is not turned into Unicode), so
        # its contact, and the ids derived from it, stay what they always were.
        _email_validator_normalized(value)
        return ascii_form
    return _email_validator_normalized(value)


def _email_validator_normalized(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None


def _to_epoch_ms(value: Any) -> int:
    """Epoch milliseconds from an integer, a digit string or an ISO 8601 date-time."""
    if isinstance(value, bool):
        raise ValueError("must be epoch milliseconds or an ISO 8601 date-time")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int | float):
        millis = int(value)
        if millis < MIN_EPOCH_MS:
            raise ValueError("must be epoch milliseconds (the number looks like seconds)")
        if millis > MAX_EPOCH_MS:
            raise ValueError("is too far in the future")
        return millis
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be epoch milliseconds or an ISO 8601 date-time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    raise ValueError("must be epoch milliseconds or an ISO 8601 date-time")


def _to_date(value: Any) -> Any:
    """Accept ``yyyyMMdd`` (SALESmanago's own form) besides ISO dates."""
    if isinstance(value, str) and re.fullmatch(r"\d{8}", value.strip()):
        text = value.strip()
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise ValueError("is not a valid date") from None
    return value


# What nearly every product URL looks like; anything else goes through urlsplit (4x the CPU).
_PLAIN_URL = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s\[\]]+(?:[/?#]\S*)?")


def _check_url(value: str) -> str:
    # Only ASCII takes the fast path: urlsplit refuses hosts whose NFKC form adds a delimiter
    # (U+2100 becomes "a/c"), which a character class cannot see.
    if value.isascii() and _PLAIN_URL.fullmatch(value):
        return value
    try:
        parts = urlsplit(value)
    except ValueError:  # its message quotes the host
        raise ValueError("must be an absolute http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.netloc or _WHITESPACE.search(value):
        raise ValueError("must be an absolute http(s) URL")
    return value


def _join_ids(value: Any) -> Any:
    if isinstance(value, list):
        if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in value):
            raise ValueError("must be a string or a list of product ids")
        return ",".join(str(item).strip() for item in value)
    return value


def _at_most(limit: int) -> Any:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return value

    return check


def _scalar_to_str(value: Any) -> Any:
    # Custom details are strings in SALESmanago; numbers and booleans are sent as their text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return value


def _text(max_length: int, min_length: int = 0) -> Any:
    return Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)
    ]


Email = Annotated[
    str,
    BeforeValidator(_validate_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": EMAIL_MAX_LENGTH}),
]
EpochMs = Annotated[int, BeforeValidator(_to_epoch_ms)]
Birthday = Annotated[date, BeforeValidator(_to_date), PlainSerializer(lambda d: d.strftime("%Y%m%d"))]


def _amount(exact: TypeAdapter[Decimal], minimum: float | None) -> Any:
    """An amount with at most 2 decimal places, as the float SALESmanago is sent.

    A plain number is checked as a float (``round(x, 2) == x`` holds exactly when its shortest
    repr has at most 2 decimals); anything else (strings, huge or odd numbers) goes through the
    exact Decimal rules, which cost ~5x the CPU. Both give the same float.
    """

    def check(value: Any) -> float:
        kind = type(value)
        if (
            (kind is float or kind is int)
            and -MAX_FAST_AMOUNT < value < MAX_FAST_AMOUNT
            and (minimum is None or value >= minimum)
            and round(value, 2) == value
        ):
            return float(value)
        try:
            return float(exact.validate_python(value))
        except ValidationError as exc:
            raise ValueError(exc.errors(include_url=False)[0]["msg"]) from None

    return check


MAX_FAST_AMOUNT = 1e15  # well inside 21 digits, 2 of them decimals, and exact in a float
_EXACT_MONEY = TypeAdapter(Annotated[Decimal, Field(ge=0, max_digits=21, decimal_places=2)])
_EXACT_EVENT_VALUE = TypeAdapter(Annotated[Decimal, Field(max_digits=21, decimal_places=2)])
Money = Annotated[
    float,
    BeforeValidator(_amount(_EXACT_MONEY, 0)),
    WithJsonSchema(_EXACT_MONEY.json_schema()),
]
EventValue = Annotated[
    float,
    BeforeValidator(_amount(_EXACT_EVENT_VALUE, None)),
    WithJsonSchema(_EXACT_EVENT_VALUE.json_schema()),
]
# The length check comes first in the annotation so pydantic-core runs it, not a Python wrapper.
PropertyValue = Annotated[str, StringConstraints(max_length=255), BeforeValidator(_scalar_to_str)]
Tag = _text(255, 1)
Text = _text(255)
GroupKey = Annotated[str, StringConstraints(pattern=GROUP_KEY_PATTERN)]
CommandId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


def _url(max_length: int) -> Any:
    return Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=max_length), AfterValidator(_check_url)
    ]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class ConsentDetail(_Model):
    consentName: _text(255, 1)  # type: ignore[valid-type]
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
    properties: dict[_text(255, 1), PropertyValue] | None = None  # type: ignore[valid-type]
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


_EventDetails = create_model(  # detail1 ... detail20, each at most 255 characters
    "_EventDetails",
    __base__=_Model,
    **{f"detail{n}": (Text | None, None) for n in range(1, 21)},  # type: ignore[call-overload]
)


class EventCreateData(_EventDetails):  # type: ignore[misc, valid-type]
    email: Email
    contactExtEventType: EventType
    description: _text(2048) | None = None  # type: ignore[valid-type]
    products: Annotated[str, BeforeValidator(_join_ids), AfterValidator(_at_most(512))] | None = None
    location: _text(EVENT_LOCATION_MAX_LENGTH) | None = None  # type: ignore[valid-type]
    value: EventValue | None = None
    externalId: Text | None = None
    shopDomain: Text | None = None
    date: EpochMs | None = None


_ProductDetails = create_model(  # detail1 ... detail5, each at most 512 characters
    "_ProductDetails",
    __base__=_Model,
    **{f"detail{n}": (_text(512) | None, None) for n in range(1, 6)},  # type: ignore[call-overload]
)


class ProductData(_ProductDetails):  # type: ignore[misc, valid-type]
    id: _text(32, 1)  # type: ignore[valid-type]
    name: _text(100, 1)  # type: ignore[valid-type]
    description: _text(1024, 1)  # type: ignore[valid-type]
    category: _text(255, 1)  # type: ignore[valid-type]
    sub_category: _text(512) | None = None  # type: ignore[valid-type]
    brand: _text(512, 1)  # type: ignore[valid-type]
    sex: Literal[-1, 0, 1, 2, 4] | None = None
    price: Money | None = None
    special_price: Money | None = None
    url: _url(512)  # type: ignore[valid-type]
    image_url: _url(512)  # type: ignore[valid-type]
    image2_url: _url(128) | None = None  # type: ignore[valid-type]
    stock_available: Annotated[int, Field(ge=0)] | None = None
    color: _text(40) | None = None  # type: ignore[valid-type]
    season: _text(40) | None = None  # type: ignore[valid-type]
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


def field_path(loc: Iterable[Any]) -> str:
    """``data.products[3].url`` from a location; each name cut to MAX_PATH_PART characters, then scrubbed.

    A name can be a producer's key of any length: it is cut before anything (the e-mail
    scrubber, a log line, a reason) reads it. Each name is scrubbed on its own, so an e-mail in
    a key does not swallow the path before it (dots are e-mail characters).
    """
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        name = str(part)
        name = scrub(name[:MAX_PATH_PART]) + "…" if len(name) > MAX_PATH_PART else scrub(name)
        path += f".{name}" if path else name
    return path


def problems_from(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[FieldProblem]:
    """Every failing field with its path; the input value is never included."""
    problems = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = tuple(
            part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-"))
        )
        message = err["msg"].removeprefix("Value error, ")
        problems.append(FieldProblem(field_path(prefix + loc) or "body", message))
    return problems


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
        return DATA_MODELS[action].model_validate(routed)  # type: ignore[return-value]

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


_CATALOG_LOCATION = re.compile(LOCATION_PATTERN)


def location_warnings(location: str | None, catalog_location: str | None) -> tuple[str, ...]:
    """Why an event's location will not link it to the group's catalog, if it will not.

    SALESmanago accepts any location up to 255 characters, so the event is sent anyway; the warning
    names no value (a location is producer text).
    """
    if location is None:
        return ()
    if not _CATALOG_LOCATION.fullmatch(location):
        problem = "no product catalog can have this location (letters, digits, _; 3-255)"
    elif catalog_location is not None and location != catalog_location:
        problem = "differs from the group's catalog location"
    else:
        return ()
    return (f"{LOCATION_MISMATCH}: data.location {problem}; the event is not linked to catalog products",)


def trim_warnings(products: tuple[ProductData, ...]) -> tuple[str, ...]:
    """One warning per product value SALESmanago keeps only the first 255 characters of."""
    found = []
    for index, product in enumerate(products):
        values = product.__dict__  # a validated model's fields: a third of getattr's cost, per product
        for name in TRIMMED_PRODUCT_FIELDS:
            value = values[name]
            if value is not None and len(value) > SALESMANAGO_TEXT_LIMIT:
                found.append(f"trimmed: data[{index}].{name} cut to {TRIMMED_TO}")
    return tuple(found)


def _derive_id(action: Action, group_key: str, data: Any) -> str:
    """A stable id from the content, so a replay of the same command carries the same key."""
    if isinstance(data, tuple):
        payload: Any = [p.model_dump(mode="json", exclude_none=True) for p in data]
    else:
        payload = data.model_dump(mode="json", exclude_none=True)
        payload["email"] = str(payload["email"]).lower()
    canonical = json.dumps([str(action), group_key, payload], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]
