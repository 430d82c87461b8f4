"""The field types of the public contract: e-mails, dates, URLs, amounts, texts, each with its
limits and normalization, and the fast paths that settle the common values without the slow
validators (held equal to them by tests/unit/test_*_fast_path.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from salesmanago_bridge.errors import FieldProblem
from salesmanago_bridge.privacy import scrub

if TYPE_CHECKING:
    from salesmanago_bridge.commands import ProductData

# A product catalog's location, as SALESmanago's official plugin validates it (salesmanago-api.md §3).
# An event links to a catalog's products only when its own location equals the catalog's.
LOCATION_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]{2,254}$"
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


def join_ids(value: Any) -> Any:
    if isinstance(value, list):
        if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in value):
            raise ValueError("must be a string or a list of product ids")
        return ",".join(str(item).strip() for item in value)
    return value


def at_most(limit: int) -> Any:
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


def text(max_length: int, min_length: int = 0) -> StringConstraints:
    """A text field's constraints: stripped, within these lengths (``Annotated[str, text(40)]``)."""
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


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
_EXACT_MONEY: TypeAdapter[Decimal] = TypeAdapter(
    Annotated[Decimal, Field(ge=0, max_digits=21, decimal_places=2)]
)
_EXACT_EVENT_VALUE: TypeAdapter[Decimal] = TypeAdapter(
    Annotated[Decimal, Field(max_digits=21, decimal_places=2)]
)
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
Tag = Annotated[str, text(255, 1)]
Text = Annotated[str, text(255)]


def url_text(max_length: int) -> StringConstraints:
    """A URL field's length constraint (``Annotated[str, url_text(512), CHECK_URL]``)."""
    return StringConstraints(strip_whitespace=True, max_length=max_length)


CHECK_URL = AfterValidator(_check_url)


# ---- what validation says: problems that refuse, warnings that do not ---------------------------
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
    """One warning per product value SALESmanago keeps only the first 255 characters of (an item
    model without such a field has nothing to trim)."""
    found = []
    for index, product in enumerate(products):
        values = product.__dict__  # a validated model's fields: a third of getattr's cost, per product
        for name in TRIMMED_PRODUCT_FIELDS:
            value = values.get(name)
            if value is not None and len(value) > SALESMANAGO_TEXT_LIMIT:
                found.append(f"trimmed: data[{index}].{name} cut to {TRIMMED_TO}")
    return tuple(found)
