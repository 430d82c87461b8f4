"""The sandbox: a faithful fake of SALESmanago (API v2 and the v3 product API) served over real HTTP.

It is a second, independent implementation of the API contract (salesmanago-api.md §1-§6), so it never
imports the bridge's own code: a misreading of the contract in the client must not be mirrored here. It is
strict where SALESmanago is strict, records every request so tests can assert on the wire format, and
can be told to misbehave (`Fault`, `Sandbox.reject_email`, `Sandbox.latency_ms`).

    with Sandbox(accounts=[Account(client_id="c", api_secret="s", owners=["o@x.example"])]) as sandbox:
        ...point the client at sandbox.url...
        assert sandbox.contact("a@x.example")["tags"] == ["VIP"]

Standalone: ``python -m local.sandbox --port 8090 [--groups-file local/groups.sample.json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

_log = logging.getLogger("local.sandbox")

EVENT_TYPES = frozenset(
    {
        "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION",
        "MEETING", "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION", "CANCELLATION", "RETURN", "SURVEY",
        "APP_STATUS", "APP_TYPE_WEB", "APP_TYPE_MANUAL", "APP_TYPE_RETENTION", "APP_TYPE_UPSALE",
        "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN", "REPEATED_LOAN",
    }
)  # fmt: skip
CONTACT_STATES = frozenset({"CUSTOMER", "PROSPECT", "PARTNER", "OTHER", "UNKNOWN"})
MS_EPOCH_THRESHOLD = 10**12  # epoch seconds stay below this until the year 33658, so above it means ms
MAX_BATCH_UPSERT = 1000
MAX_BATCH_EVENTS = 1000
MAX_LIST_IDS = 50
MAX_PRODUCTS = 100
MAX_CATALOGS = 5
MAX_URL_LENGTH = 2048
MAX_CATEGORIES = 5
MAX_IMAGE_URLS = 5
DEFAULT_CURRENCY = "PLN"
IDLE_CONNECTION_TIMEOUT_S = 60
FAULT_KINDS = frozenset({"status", "slow", "drop", "success_false", "non_json"})
REJECT_MODES = frozenset({"item", "request"})
ELIDED_HEADERS = frozenset({"api-key", "authorization"})
UNAVAILABLE_HTML = b"<html>Service temporarily unavailable</html>"

# v3 reason codes (salesmanago-api.md §1).
REASON_API_KEY = 10
REASON_TOO_LONG = 11
REASON_TRIMMED = 12
REASON_MISSING = 13
REASON_TYPE = 14
REASON_UNKNOWN_ID = 16
REASON_NULL = 17
REASON_PATTERN = 18
REASON_LIMIT = 19

_AUTH_KEYS = frozenset({"clientId", "apiKey", "sha", "requestTime", "owner"})
_CONTACT_TEXT_KEYS = ("name", "phone", "fax", "company", "externalId")
_CONTACT_KEYS = frozenset({"email", "state", "address", *_CONTACT_TEXT_KEYS})
_ADDRESS_KEYS = ("streetAddress", "zipCode", "city", "country")
_UPSERT_FLAGS = ("forceOptIn", "forceOptOut", "forcePhoneOptIn", "forcePhoneOptOut", "async")
_UPSERT_KEYS = frozenset(
    {"contact", "newEmail", "tags", "removeTags", "properties", "birthday", "province", "lang"}
    | {"consentDetails", *_UPSERT_FLAGS}
)
_EVENT_TEXT_LIMITS = {
    "description": 2048,
    "products": 512,
    "location": 255,  # SALESmanago's library trims here; any text (salesmanago-api.md §3)
    "externalId": 255,
    "shopDomain": 255,
    **{f"detail{n}": 255 for n in range(1, 21)},
}
_EVENT_KEYS = frozenset({"date", "contactExtEventType", "value", *_EVENT_TEXT_LIMITS})
_EVENT_ITEM_KEYS = frozenset({"email", "contactId", "contactEvent"})

_PRODUCT_TEXT_LIMITS = {
    "productId": 255,
    "name": 255,
    "mainCategory": 255,
    "categoryExternalId": 255,
    "description": 16384,
}
_PRODUCT_REQUIRED = ("productId", "name")
_PRODUCT_URL_KEYS = ("productUrl", "mainImageUrl")
_PRODUCT_BOOL_KEYS = ("available", "active")
_PRODUCT_PRICE_KEYS = ("price", "discountPrice")
_PRODUCT_KEYS = frozenset(
    {*_PRODUCT_TEXT_LIMITS, *_PRODUCT_URL_KEYS, *_PRODUCT_BOOL_KEYS, *_PRODUCT_PRICE_KEYS}
    | {"categories", "imageUrls", "quantity", "customDetails", "systemDetails", "setAsNull"}
)
_CUSTOM_DETAIL_KEYS = frozenset(f"detail{n}" for n in range(1, 6))
_TEXT_LIMIT = 255  # brand, each category, each custom detail (the official library's limits)
# What the official library clears with setAsNull (ProductEntity::buildSetAsNull); nothing else is
# accepted here (L: whether SALESmanago takes other names is unknown).
_SET_AS_NULL_NAMES = frozenset({"discountPrice", *_CUSTOM_DETAIL_KEYS})
_SYSTEM_TEXT_KEYS = ("brand", "manufacturer", "season", "color")
_SYSTEM_BOOL_KEYS = ("bestseller", "newProduct")
_SYSTEM_DETAIL_KEYS = frozenset({*_SYSTEM_TEXT_KEYS, *_SYSTEM_BOOL_KEYS, "popularity", "gender"})
_GENDERS = frozenset({-1, 0, 1, 2, 4})
# The official library sends `catalogName`; salesmanago-api.md says `name`: both are taken (L).
_CATALOG_KEYS = frozenset({"catalogId", "catalogName", "name", "currency", "location", "setAsDefault"})

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HTTP_STATUS_CODES = frozenset(status.value for status in HTTPStatus)
_CATALOG_LOCATION_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{2,254}$")  # the official plugin's rule
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_BIRTHDAY_RE = re.compile(r"^\d{8}$")


# --------------------------------------------------------------------------- public data types


@dataclass
class Account:
    """One SALESmanago account: what the v2 `sha`, the `owner` and the v3 `API-KEY` are checked against."""

    client_id: str
    api_secret: str
    owners: list[str] = field(default_factory=list)
    products_api_key: str | None = None
    catalogs: dict[str, str] = field(default_factory=dict)  # catalog_id -> location

    @classmethod
    def from_group_config(cls, cfg: dict[str, Any]) -> Account:
        """Build the account a group config points at (its other keys are the bridge's business)."""
        missing = [key for key in ("client_id", "api_secret") if not cfg.get(key)]
        if missing:
            raise ValueError(f"group config lacks {', '.join(missing)}")
        owner, catalog_id = cfg.get("owner"), cfg.get("catalog_id")
        return cls(
            client_id=str(cfg["client_id"]),
            api_secret=str(cfg["api_secret"]),
            owners=[str(owner)] if owner else [],
            products_api_key=str(cfg["products_api_key"]) if cfg.get("products_api_key") else None,
            catalogs={str(catalog_id): str(cfg.get("location") or "")} if catalog_id else {},
        )


DEMO_ACCOUNT = Account(
    client_id="demo-client",
    api_secret="demo-secret",  # noqa: S106 - a public demo value for the local sandbox only
    owners=["owner@demo.example"],
    products_api_key="demo-products-key",
    catalogs={"00000000-0000-4000-8000-000000000001": "demo_shop"},
)


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, used up after `times` matching requests (see salesmanago-api.md §6.5).

    `apply` says whether a `slow`, `drop` or `status` fault lets the call change state before it
    misbehaves, so tests can cover "the client gave up, yet SALESmanago did the work".
    """

    kind: str
    path: str | None = None
    times: int = 1
    status: int | None = None
    retry_after: int | float | str | None = None
    delay_s: float = 0.0
    message: str | None = None
    apply: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.kind == "status" and self.status is None:
            raise ValueError("a 'status' fault needs status=...")
        if self.times < 1:
            raise ValueError("times must be at least 1")


@dataclass
class RecordedRequest:
    """One request as the sandbox received it; secrets in headers are elided, body auth fields kept."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int | None = None
    fault: str | None = None
    request_time_ms: bool | None = None  # v2: True if requestTime was in ms, False if in seconds
    received_at: float = 0.0


# --------------------------------------------------------------------------- internals


class _RequestRefusedError(Exception):
    """Raised when a v2 call must answer `success:false`; the text is the reply's message."""


def _refuse(message: str) -> NoReturn:
    raise _RequestRefusedError(message)


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> _Reply:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _Reply(status=status, body=body, headers=headers or {})


def _v2_failure(message: str, status: int = 200) -> _Reply:
    return _json_reply({"success": False, "message": [message]}, status)


@dataclass
class _PendingFault:
    fault: Fault
    remaining: int


@dataclass
class _AccountState:
    account: Account
    owners: frozenset[str]
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased e-mail -> contact
    catalogs: dict[str, dict[str, Any]] = field(default_factory=dict)  # catalog_id -> catalog

    def contact_by_id(self, contact_id: str) -> dict[str, Any] | None:
        return next((c for c in self.contacts.values() if c["id"] == contact_id), None)


class _Journal:
    """Remembers the contacts a call touches, so a refused call can be undone (upserts are all-or-nothing)."""

    def __init__(self, contacts: dict[str, dict[str, Any]]) -> None:
        self._contacts = contacts
        self._saved: dict[str, dict[str, Any] | None] = {}

    def save(self, key: str) -> None:
        if key not in self._saved:
            self._saved[key] = copy.deepcopy(self._contacts.get(key))

    def rollback(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                self._contacts.pop(key, None)
            else:
                self._contacts[key] = value


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _sha(api_key: str, client_id: str, api_secret: str) -> str:
    # SHA-1 is SALESmanago's choice for this signature, not ours.
    return hashlib.sha1((api_key + client_id + api_secret).encode(), usedforsecurity=False).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if _is_int(value):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _has_at_most_2_decimals(value: int | float) -> bool:
    exponent = Decimal(str(value)).as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -2


def _is_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 254 and _EMAIL_RE.match(value) is not None


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _field(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check_keys(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = [key for key in obj if key not in allowed]
    if unknown:
        _refuse(f"Unknown field: {_field(where, unknown[0])}")


def _check_optional(obj: dict[str, Any], key: str, where: str, kind: type, what: str) -> None:
    value = obj.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        _refuse(f"Invalid type of {_field(where, key)}: {what} expected")


def _check_str_list(obj: dict[str, Any], key: str, where: str) -> None:
    value = obj.get(key)
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        _refuse(f"Invalid type of {_field(where, key)}: a list of strings expected")


def _required_str_list(body: dict[str, Any], key: str, limit: int | None = None) -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _refuse(f"{key} is required and must be a list of strings")
    if limit is not None and len(value) > limit:
        _refuse(f"Too many values in {key}: {len(value)} > {limit}")
    return value


def _check_upsert_item(item: Any, where: str, allowed: frozenset[str]) -> None:
    """Validate one upsert body (or `upsertDetails` item) as strictly as SALESmanago types it."""
    if not isinstance(item, dict):
        _refuse(f"Invalid type of {where or 'body'}: an object expected")
    _check_keys(item, allowed, where)
    contact, contact_where = item.get("contact"), _field(where, "contact")
    if not isinstance(contact, dict):
        _refuse(f"{contact_where} is required and must be an object")
    _check_keys(contact, _CONTACT_KEYS, contact_where)
    if not _is_email(contact.get("email")):
        _refuse(f"Invalid e-mail address in {contact_where}.email: {contact.get('email')!r}")
    for key in _CONTACT_TEXT_KEYS:
        _check_optional(contact, key, contact_where, str, "a string")
    if contact.get("state") is not None and contact["state"] not in CONTACT_STATES:
        _refuse(f"Invalid value of {contact_where}.state: {contact['state']!r}")
    address = contact.get("address")
    if address is not None:
        address_where = f"{contact_where}.address"
        _check_optional(contact, "address", contact_where, dict, "an object")
        _check_keys(address, frozenset(_ADDRESS_KEYS), address_where)
        for key in _ADDRESS_KEYS:
            _check_optional(address, key, address_where, str, "a string")
    if item.get("newEmail") is not None and not _is_email(item["newEmail"]):
        _refuse(f"Invalid e-mail address in {_field(where, 'newEmail')}: {item['newEmail']!r}")
    for key in ("tags", "removeTags"):
        _check_str_list(item, key, where)
    properties = item.get("properties")
    if properties is not None and (
        not isinstance(properties, dict) or not all(isinstance(v, str) for v in properties.values())
    ):
        _refuse(f"Invalid type of {_field(where, 'properties')}: a map of strings expected")
    birthday = item.get("birthday")
    if birthday is not None:
        if not isinstance(birthday, str) or not _BIRTHDAY_RE.match(birthday):
            _refuse(f"Invalid value of {_field(where, 'birthday')}: yyyyMMdd expected, got {birthday!r}")
        try:
            datetime.strptime(birthday, "%Y%m%d")
        except ValueError:
            _refuse(f"Invalid value of {_field(where, 'birthday')}: no such date {birthday!r}")
    for key in ("province", "lang"):
        _check_optional(item, key, where, str, "a string")
    for key in _UPSERT_FLAGS:
        _check_optional(item, key, where, bool, "a boolean")
    consents = item.get("consentDetails")
    if consents is not None and (
        not isinstance(consents, list) or not all(isinstance(c, dict) for c in consents)
    ):
        _refuse(f"Invalid type of {_field(where, 'consentDetails')}: a list of objects expected")


def _check_event(event: Any, where: str) -> None:
    """Validate a `contactEvent` against the documented types and limits (salesmanago-api.md §3)."""
    if not isinstance(event, dict):
        _refuse(f"{where} is required and must be an object")
    _check_keys(event, _EVENT_KEYS, where)
    date = event.get("date")
    if date is None:
        _refuse(f"{where}.date is required")
    if not _is_int(date):
        _refuse(f"Invalid type of {where}.date: an integer epoch in milliseconds expected")
    if date < MS_EPOCH_THRESHOLD:
        _refuse(f"Invalid value of {where}.date: {date} looks like seconds, milliseconds expected")
    if event.get("contactExtEventType") not in EVENT_TYPES:
        _refuse(f"Invalid value of {where}.contactExtEventType: {event.get('contactExtEventType')!r}")
    for key, limit in _EVENT_TEXT_LIMITS.items():
        value = event.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            _refuse(f"Invalid type of {where}.{key}: a string expected")
        if len(value) > limit:
            _refuse(f"Value of {where}.{key} is too long: {len(value)} > {limit}")
    value = event.get("value")
    if value is not None:
        if not _is_number(value):
            _refuse(f"Invalid type of {where}.value: a number expected")
        if abs(value) >= 10**19 or not _has_at_most_2_decimals(value):
            _refuse(f"Invalid value of {where}.value: at most 19 digits and 2 decimals")


def _product_problems(product: Any, where: str) -> list[dict[str, Any]]:
    """All problems of one v3 product, in SALESmanago's `field|text` message format."""
    problems: list[dict[str, Any]] = []

    def add(code: int, key: str, text: str) -> None:
        problems.append({"reasonCode": code, "message": f"{where}.{key}|{text}"})

    if not isinstance(product, dict):
        return [{"reasonCode": REASON_TYPE, "message": f"{where}|An object expected"}]
    for key in product:
        if key not in _PRODUCT_KEYS:
            add(REASON_TYPE, key, "Unknown field")
    for key in _PRODUCT_REQUIRED:
        if key not in product:
            add(REASON_MISSING, key, "Field is required")
        elif product[key] is None:
            add(REASON_NULL, key, "Required field set to null")
    for key, limit in _PRODUCT_TEXT_LIMITS.items():
        value = product.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            add(REASON_TYPE, key, "A string expected")
        elif len(value) > limit:
            add(REASON_TOO_LONG, key, f"Too long: {len(value)} > {limit}")
        elif key in _PRODUCT_REQUIRED and not value.strip():
            add(REASON_MISSING, key, "Field is required")
    for key in _PRODUCT_URL_KEYS:
        _url_problem(product.get(key), key, add)
    for key in _PRODUCT_BOOL_KEYS:
        if product.get(key) is not None and not isinstance(product[key], bool):
            add(REASON_TYPE, key, "A boolean expected")
    if product.get("quantity") is not None and not _is_int(product["quantity"]):
        add(REASON_TYPE, "quantity", "An integer expected")
    for key in _PRODUCT_PRICE_KEYS:
        value = product.get(key)
        if value is not None and not (
            _is_number(value) and value >= 0 and abs(value) < 10**17 and _has_at_most_2_decimals(value)
        ):
            add(REASON_TYPE, key, "A non-negative decimal(19,2) expected")
    categories = product.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            add(REASON_TYPE, "categories", "A list of strings expected")
        elif len(categories) > MAX_CATEGORIES:
            add(REASON_TOO_LONG, "categories", f"At most {MAX_CATEGORIES} categories")
        else:
            for n, category in enumerate(categories):
                if len(category) > _TEXT_LIMIT:
                    add(REASON_TOO_LONG, f"categories[{n}]", f"Too long: {len(category)} > {_TEXT_LIMIT}")
    images = product.get("imageUrls")
    if images is not None:
        if not isinstance(images, list):
            add(REASON_TYPE, "imageUrls", "A list of URLs expected")
        elif len(images) > MAX_IMAGE_URLS:
            add(REASON_TOO_LONG, "imageUrls", f"At most {MAX_IMAGE_URLS} URLs")
        else:
            for n, url in enumerate(images):
                _url_problem(url, f"imageUrls[{n}]", add)
    problems.extend(_details_problems(product, where))
    set_as_null = product.get("setAsNull")
    if set_as_null is not None:
        if not isinstance(set_as_null, list) or not all(isinstance(n, str) for n in set_as_null):
            add(REASON_TYPE, "setAsNull", "A list of field names expected")
        else:
            for name in set_as_null:
                if name in _PRODUCT_REQUIRED:
                    add(REASON_NULL, "setAsNull", f"Required field {name} cannot be set to null")
                elif name not in _SET_AS_NULL_NAMES:
                    add(REASON_TYPE, "setAsNull", f"Unknown field {name}")
    return problems


def _url_problem(value: Any, key: str, add: Callable[[int, str, str], None]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        add(REASON_TYPE, key, "A string expected")
    elif len(value) > MAX_URL_LENGTH:
        add(REASON_TOO_LONG, key, f"Too long: {len(value)} > {MAX_URL_LENGTH}")
    elif not _is_url(value):
        # The pattern reason code (18) is L confidence; the contract only says "URLs".
        add(REASON_PATTERN, key, "An http:// or https:// URL expected")


def _details_problems(product: dict[str, Any], where: str) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []

    def add(key: str, text: str) -> None:
        problems.append({"reasonCode": REASON_TYPE, "message": f"{where}.{key}|{text}"})

    custom = product.get("customDetails")
    if custom is not None:
        if not isinstance(custom, dict):
            add("customDetails", "An object expected")
        else:
            for key, value in custom.items():
                if key not in _CUSTOM_DETAIL_KEYS:
                    add(f"customDetails.{key}", "Unknown field; detail1..detail5 allowed")
                elif value is not None and not isinstance(value, str):
                    add(f"customDetails.{key}", "A string expected")
                elif value is not None and len(value) > _TEXT_LIMIT:
                    problems.append(_too_long(where, f"customDetails.{key}", len(value)))
    system = product.get("systemDetails")
    if system is None:
        return problems
    if not isinstance(system, dict):
        add("systemDetails", "An object expected")
        return problems
    for key, value in system.items():
        name = f"systemDetails.{key}"
        if key not in _SYSTEM_DETAIL_KEYS:
            add(name, "Unknown field")
        elif value is None:
            continue
        elif key in _SYSTEM_TEXT_KEYS and not isinstance(value, str):
            add(name, "A string expected")
        elif key == "brand" and len(value) > _TEXT_LIMIT:
            problems.append(_too_long(where, name, len(value)))
        elif key in _SYSTEM_BOOL_KEYS and not isinstance(value, bool):
            add(name, "A boolean expected")
        elif key == "popularity" and not _is_int(value):
            add(name, "An integer expected")
        elif key == "gender" and not (_is_int(value) and value in _GENDERS):
            add(name, f"One of {sorted(_GENDERS)} expected")
    return problems


def _too_long(where: str, key: str, length: int) -> dict[str, Any]:
    return {"reasonCode": REASON_TOO_LONG, "message": f"{where}.{key}|Too long: {length} > {_TEXT_LIMIT}"}


def _merge_accounts(accounts: Iterable[Account]) -> dict[str, Account]:
    """One account per client id, merging owners and catalogs; conflicting credentials are a config bug."""
    merged: dict[str, Account] = {}
    catalog_owner: dict[str, str] = {}
    for account in accounts:
        have = merged.get(account.client_id)
        if have is None:
            have = merged[account.client_id] = Account(account.client_id, account.api_secret)
        elif have.api_secret != account.api_secret:
            raise ValueError(f"client {account.client_id}: two different api secrets configured")
        if account.products_api_key:
            if have.products_api_key not in (None, account.products_api_key):
                raise ValueError(f"client {account.client_id}: two different products API keys configured")
            have.products_api_key = account.products_api_key
        have.owners.extend(o for o in account.owners if o not in have.owners)
        for catalog_id, location in account.catalogs.items():
            if catalog_owner.setdefault(catalog_id, account.client_id) != account.client_id:
                raise ValueError(f"catalog {catalog_id} configured for two clients")
            if have.catalogs.get(catalog_id, location) != location:
                raise ValueError(f"catalog {catalog_id}: two different locations configured")
            have.catalogs[catalog_id] = location
    keys = [a.products_api_key for a in merged.values() if a.products_api_key]
    if len(keys) != len(set(keys)):
        raise ValueError("one products API key configured for two clients")
    return merged


def _new_contact(email: str, client_id: str, now: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "client_id": client_id,
        "email": email,
        **dict.fromkeys(_CONTACT_TEXT_KEYS),
        "state": None,
        "address": {},
        "tags": [],
        "tagCreatedOn": {},  # tag -> when it was first added (contactTags' createdOn)
        "properties": {},
        "birthday": None,
        "province": None,
        "lang": None,
        "optedOut": False,
        "optedOutPhone": False,
        "deleted": False,
        "invalid": False,
        "score": 0,
        "consentDetails": [],
        "createdOn": now,
        "modifiedOn": now,
        "lastVisit": None,
    }


def _basic_view(contact: dict[str, Any], id_key: str) -> dict[str, Any]:
    birthday = contact["birthday"]
    year, month, day = (int(birthday[:4]), int(birthday[4:6]), int(birthday[6:])) if birthday else (None,) * 3
    return {
        id_key: contact["id"],
        "name": contact["name"],
        "email": contact["email"],
        "phone": contact["phone"],
        "fax": contact["fax"],
        "score": contact["score"],
        "state": contact["state"],
        "company": contact["company"],
        "externalId": contact["externalId"],
        "optedOut": contact["optedOut"],
        "optedOutPhone": contact["optedOutPhone"],
        "deleted": contact["deleted"],
        "invalid": contact["invalid"],
        "birthdayYear": year,
        "birthdayMonth": month,
        "birthdayDay": day,
        "address": {key: contact["address"].get(key) for key in _ADDRESS_KEYS},
        "createdOn": contact["createdOn"],
        "modifiedOn": contact["modifiedOn"],
        "lastVisit": contact["lastVisit"],
    }


def _strings_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)


# --------------------------------------------------------------------------- the sandbox


V2Handler = Callable[[_AccountState, dict[str, Any]], dict[str, Any]]
V3Handler = Callable[[_AccountState, Any], _Reply]


class Sandbox:
    """A fake SALESmanago on a local port: strict validation, inspectable state, injectable faults."""

    def __init__(self, accounts: Iterable[Account] | None = None, latency_ms: float = 0) -> None:
        self._accounts = _merge_accounts([DEMO_ACCOUNT] if accounts is None else accounts)
        self.latency_ms = latency_ms
        self.warn_trim = False
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._v2_routes: dict[str, V2Handler] = {
            "contact/upsert": self._v2_upsert,
            "contact/batchupsert": self._v2_batch_upsert,
            "contact/delete": self._v2_delete,
            "contact/basic": self._v2_basic,
            "contact/basicById": self._v2_basic_by_id,
            "contact/list": self._v2_list,
            "contact/listById": self._v2_list_by_id,
            "contact/hasContact": self._v2_has_contact,
            "v2/contact/addContactExtEvent": self._v2_event,
            "contact/addContactExtEvent": self._v2_event,
            "v2/contact/addBatchContactExtEvent": self._v2_batch_events,
        }
        self._v3_routes: dict[str, tuple[str, V3Handler]] = {
            "product/upsert": ("POST", self._v3_product_upsert),
            "product/catalogList": ("GET", self._v3_catalog_list),
            "product/catalogUpsert": ("POST", self._v3_catalog_upsert),
        }
        self.reset()

    @classmethod
    def from_groups_file(cls, path: str | Path, latency_ms: float = 0) -> Sandbox:
        """A sandbox serving the accounts of a groups file: a JSON object {group_key: group_config}."""
        groups = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(groups, dict) or not all(isinstance(cfg, dict) for cfg in groups.values()):
            raise ValueError(f"{path}: expected a JSON object of group configs")
        return cls(
            accounts=[Account.from_group_config(cfg) for cfg in groups.values()], latency_ms=latency_ms
        )

    # ----------------------------------------------------------------- lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        """Serve in a background thread; port 0 picks a free port (see `url`)."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        server = _Server((host, port), _Handler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections, so no old connection keeps getting answers."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        host, port = self._server.server_address[:2]
        if host in ("", "0.0.0.0"):  # noqa: S104 - only naming the address, not binding to it
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- state for tests

    def reset(self) -> None:
        """Forget contacts, events, products, requests, faults and rejections; keep accounts and latency."""
        with self._lock:
            self._states = {
                client_id: _AccountState(
                    account=account,
                    owners=frozenset(o.lower() for o in account.owners),
                    catalogs={
                        catalog_id: {
                            "catalogId": catalog_id,
                            "name": location or catalog_id,
                            "location": location,
                            "currency": DEFAULT_CURRENCY,
                        }
                        for catalog_id, location in account.catalogs.items()
                    },
                )
                for client_id, account in self._accounts.items()
            }
            self._by_products_key = {
                a.products_api_key: a.client_id for a in self._accounts.values() if a.products_api_key
            }
            self._events: list[dict[str, Any]] = []
            self._products: dict[str, dict[str, dict[str, Any]]] = {}
            self._requests: list[RecordedRequest] = []
            self._faults: list[_PendingFault] = []
            self._rejected: dict[str, str] = {}
            self.warn_trim = False

    @property
    def accounts(self) -> list[Account]:
        return copy.deepcopy(list(self._accounts.values()))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return copy.deepcopy(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path contains `path`."""
        return [r for r in self.requests if path in r.path]

    def contact(self, email: str, client_id: str | None = None) -> dict[str, Any] | None:
        """The stored contact (soft-deleted ones included, flagged `deleted`), or None."""
        with self._lock:
            for state in self._states_for(client_id):
                found = state.contacts.get(email.lower())
                if found is not None:
                    return copy.deepcopy(found)
        return None

    def contacts(self, client_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(c) for state in self._states_for(client_id) for c in state.contacts.values()
            ]

    def events(self, email: str | None = None, client_id: str | None = None) -> list[dict[str, Any]]:
        """Every accepted event, duplicates included, in arrival order; `email` is the one it was sent for."""
        with self._lock:
            return [
                copy.deepcopy(e)
                for e in self._events
                if (email is None or e["email"].lower() == email.lower())
                and (client_id is None or e["client_id"] == client_id)
            ]

    def products(self, catalog_id: str | None = None) -> dict[str, dict[str, Any]]:
        """productId -> stored product; without `catalog_id`, all catalogs in one map."""
        with self._lock:
            catalogs = [catalog_id] if catalog_id is not None else list(self._products)
            return {
                pid: copy.deepcopy(product)
                for cid in catalogs
                for pid, product in self._products.get(cid, {}).items()
            }

    def catalogs(self, client_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(c) for state in self._states_for(client_id) for c in state.catalogs.values()
            ]

    def _states_for(self, client_id: str | None) -> list[_AccountState]:
        if client_id is None:
            return list(self._states.values())
        return [self._states[client_id]] if client_id in self._states else []

    # ----------------------------------------------------------------- misbehaviour

    def inject(self, fault: Fault) -> None:
        """Queue a fault; among the faults matching a request, the oldest one applies."""
        with self._lock:
            self._faults.append(_PendingFault(fault, fault.times))

    def faults_pending(self) -> int:
        """How many more requests the queued faults will affect (the sum of their remaining `times`)."""
        with self._lock:
            return sum(p.remaining for p in self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reject_email(self, email: str, mode: str = "item") -> None:
        """Make an e-mail poison: mode "item" fails just its item where the API can say so, "request"
        fails any v2 request that mentions it."""
        if mode not in REJECT_MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(REJECT_MODES)}")
        with self._lock:
            self._rejected[email.lower()] = mode

    def accept_email(self, email: str) -> None:
        with self._lock:
            self._rejected.pop(email.lower(), None)

    def _take_fault(self, path: str) -> Fault | None:
        for pending in self._faults:
            if pending.fault.path is None or pending.fault.path in path:
                pending.remaining -= 1
                if pending.remaining <= 0:
                    self._faults.remove(pending)
                return pending.fault
        return None

    def _refuse_if_rejected(self, *emails: str | None) -> None:
        if any(e is not None and e.lower() in self._rejected for e in emails):
            _refuse("Invalid contact data")

    # ----------------------------------------------------------------- request processing

    def _process(self, method: str, target: str, headers: list[tuple[str, str]], raw: bytes) -> _Reply | None:
        """Answer one request (None = drop the connection); runs on the connection's thread."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        try:
            body, is_json = (json.loads(raw), True) if raw else (None, False)
        except ValueError:
            body, is_json = raw.decode("utf-8", errors="replace"), False
        record = RecordedRequest(
            method=method,
            path=path,
            query=dict(parse_qsl(split.query)),
            headers={k: "***" if k.lower() in ELIDED_HEADERS else v for k, v in headers},
            body=body,
            received_at=time.time(),
        )
        if path.startswith("/api/") and isinstance(body, dict) and _is_number(body.get("requestTime")):
            record.request_time_ms = body["requestTime"] > MS_EPOCH_THRESHOLD
        with self._lock:
            self._requests.append(record)
            fault = self._take_fault(path)
            record.fault = fault.kind if fault else None
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)

        def call() -> _Reply:
            return self._route(method, path, {k.lower(): v for k, v in headers}, body, is_json)

        reply = self._misbehave(fault, call) if fault else call()
        with self._lock:
            record.status = reply.status if reply else None
        return reply

    @staticmethod
    def _misbehave(fault: Fault, call: Callable[[], _Reply]) -> _Reply | None:
        match fault.kind:
            case "status":
                if fault.apply:
                    call()
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                phrase = HTTPStatus(fault.status).phrase if fault.status in _HTTP_STATUS_CODES else "Error"
                return _json_reply(
                    {"status": fault.status, "message": fault.message or phrase}, fault.status or 500, headers
                )
            case "slow":
                reply = call() if fault.apply else None
                time.sleep(fault.delay_s)
                return reply if reply is not None else call()
            case "drop":
                if fault.apply:
                    call()
                return None
            case "success_false":
                return _v2_failure(fault.message or "Internal error")
            case _:  # "non_json"
                return _Reply(200, UNAVAILABLE_HTML, "text/html; charset=utf-8")

    def _route(self, method: str, path: str, headers: dict[str, str], body: Any, is_json: bool) -> _Reply:
        if path.startswith("/api/") and path[len("/api/") :] in self._v2_routes:
            if method != "POST":
                return _v2_failure("Method not allowed", 405)
            return self._v2(self._v2_routes[path[len("/api/") :]], body, is_json)
        if path.startswith("/v3/") and path[len("/v3/") :] in self._v3_routes:
            expected, handler = self._v3_routes[path[len("/v3/") :]]
            if method != expected:
                return _json_reply({"messages": ["Method not allowed"]}, 405)
            return self._v3(handler, headers, body, is_json, needs_body=expected == "POST")
        return _v2_failure("Unknown method", 404)

    # ----------------------------------------------------------------- API v2

    def _v2(self, handler: V2Handler, body: Any, is_json: bool) -> _Reply:
        try:
            if not is_json or not isinstance(body, dict):
                _refuse("Invalid request: a JSON object body expected")
            with self._lock:
                state = self._authenticate(body)
                # mode "request" poisons any request mentioning the e-mail; "item" is checked per method
                mentioned = _strings_in({k: v for k, v in body.items() if k != "owner"})
                if any(self._rejected.get(s.lower()) == "request" for s in mentioned):
                    _refuse("Invalid contact data")
                payload = handler(state, body)
        except _RequestRefusedError as exc:
            return _v2_failure(str(exc))
        return _json_reply({"success": True, "message": [], **payload})

    def _authenticate(self, body: dict[str, Any]) -> _AccountState:
        client_id, api_key, sha = body.get("clientId"), body.get("apiKey"), body.get("sha")
        state = self._states.get(client_id) if isinstance(client_id, str) else None
        if (
            state is None
            or not isinstance(api_key, str)
            or not api_key
            or not _is_number(body.get("requestTime"))
            or sha != _sha(api_key, state.account.client_id, state.account.api_secret)
        ):
            _refuse("Not authenticated")
        owner = body.get("owner")
        if not isinstance(owner, str) or owner.lower() not in state.owners:
            _refuse("Owner not found")
        return state

    def _v2_upsert(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_upsert_item(body, "", _AUTH_KEYS | _UPSERT_KEYS)
        self._refuse_if_rejected(body["contact"]["email"], body.get("newEmail"))
        return {"contactId": self._apply_upserts(state, [body])[0]}

    def _v2_batch_upsert(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"upsertDetails"}, "")
        details = body.get("upsertDetails")
        if not isinstance(details, list):
            _refuse("upsertDetails is required and must be a list")
        if not details:
            _refuse("upsertDetails must not be empty")
        if len(details) > MAX_BATCH_UPSERT:
            _refuse(f"Too many contacts in upsertDetails: {len(details)} > {MAX_BATCH_UPSERT}")
        for n, item in enumerate(details):
            _check_upsert_item(item, f"upsertDetails[{n}]", _UPSERT_KEYS)
        # SALESmanago does not report batchupsert failures per item, so neither do we: the client must
        # split the batch to find the culprit.
        for item in details:
            self._refuse_if_rejected(item["contact"]["email"], item.get("newEmail"))
        ids = self._apply_upserts(state, details)
        return {"contactIds": {item["contact"]["email"]: cid for item, cid in zip(details, ids, strict=True)}}

    def _apply_upserts(self, state: _AccountState, items: list[dict[str, Any]]) -> list[str]:
        journal, now = _Journal(state.contacts), _now_ms()
        try:
            return [self._apply_upsert(state, item, journal, now) for item in items]
        except _RequestRefusedError:
            journal.rollback()
            raise

    @staticmethod
    def _apply_upsert(state: _AccountState, item: dict[str, Any], journal: _Journal, now: int) -> str:
        given = item["contact"]
        key = given["email"].lower()
        new_email = item.get("newEmail")
        target = new_email.lower() if new_email else key
        journal.save(key)
        journal.save(target)
        stored = state.contacts.get(key)
        if target != key:
            taken = state.contacts.get(target)
            if taken is not None and not taken["deleted"]:
                _refuse(f"Contact with e-mail {new_email} already exists")
            if stored is None:
                stored = taken  # nothing to move: revive (or create) the contact at the new address
            else:
                del state.contacts[key]
        if stored is None:
            stored = _new_contact(given["email"], state.account.client_id, now)
        stored["email"] = new_email or given["email"]
        for name in (*_CONTACT_TEXT_KEYS, "state"):
            if given.get(name) is not None:
                stored[name] = given[name]
        stored["address"].update({k: v for k, v in (given.get("address") or {}).items() if v is not None})
        known_tags = {t.lower() for t in stored["tags"]}
        for tag in item.get("tags") or []:
            if tag.lower() not in known_tags:
                stored["tags"].append(tag)
                stored["tagCreatedOn"][tag] = now
                known_tags.add(tag.lower())
        removed = {t.lower() for t in item.get("removeTags") or []}
        stored["tags"] = [t for t in stored["tags"] if t.lower() not in removed]
        stored["properties"].update(item.get("properties") or {})
        for name in ("birthday", "province", "lang"):
            if item.get(name) is not None:
                stored[name] = item[name]
        if item.get("forceOptIn"):
            stored["optedOut"] = False
        if item.get("forceOptOut"):
            stored["optedOut"] = True
        if item.get("forcePhoneOptIn"):
            stored["optedOutPhone"] = False
        if item.get("forcePhoneOptOut"):
            stored["optedOutPhone"] = True
        stored["consentDetails"].extend(copy.deepcopy(item.get("consentDetails") or []))
        stored["deleted"] = False  # an upsert revives a soft-deleted contact
        stored["modifiedOn"] = now
        state.contacts[target] = stored
        return stored["id"]

    def _v2_delete(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"email", "permanently"}, "")
        email = body.get("email")
        if not isinstance(email, str):
            _refuse("email is required")
        _check_optional(body, "permanently", "", bool, "a boolean")
        stored = state.contacts.get(email.lower())
        if stored is None:
            _refuse("Contact not found")
        if body.get("permanently"):
            del state.contacts[email.lower()]
        else:
            # L: without `permanently` the delete is assumed soft; reads then skip the contact.
            stored["deleted"] = True
            stored["modifiedOn"] = _now_ms()
        return {}

    @staticmethod
    def _live_by_email(state: _AccountState, emails: list[str]) -> list[dict[str, Any]]:
        found = (state.contacts.get(e.lower()) for e in dict.fromkeys(e.lower() for e in emails))
        return [c for c in found if c is not None and not c["deleted"]]

    @staticmethod
    def _live_by_id(state: _AccountState, ids: list[str]) -> list[dict[str, Any]]:
        by_id = {c["id"]: c for c in state.contacts.values() if not c["deleted"]}
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    def _v2_basic(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"email"}, "")
        found = self._live_by_email(state, _required_str_list(body, "email"))
        return {"contacts": [_basic_view(c, "contactId") for c in found]}

    def _v2_basic_by_id(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"id"}, "")
        found = self._live_by_id(state, _required_str_list(body, "id"))
        return {"contacts": [_basic_view(c, "contactId") for c in found]}

    def _v2_list(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"email"}, "")
        found = self._live_by_email(state, _required_str_list(body, "email", MAX_LIST_IDS))
        return {"contacts": [self._full_view(c) for c in found]}

    def _v2_list_by_id(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"contactId"}, "")
        found = self._live_by_id(state, _required_str_list(body, "contactId", MAX_LIST_IDS))
        return {"contacts": [self._full_view(c) for c in found]}

    def _full_view(self, contact: dict[str, Any]) -> dict[str, Any]:
        return {
            **_basic_view(contact, "id"),
            # As a real contact/list reply carries tags (salesmanago-api.md §2): no `tags` key.
            "contactTags": [
                {
                    "tag": tag,
                    "tagName": tag,
                    "score": 1,
                    "createdOn": contact["tagCreatedOn"].get(tag, contact["createdOn"]),
                    "tagWithScore": f"{tag} (1)",
                }
                for tag in contact["tags"]
            ],
            "properties": [{"name": k, "value": v} for k, v in contact["properties"].items()],
            "contactExtEvents": [
                {"id": e["eventId"], "eventId": e["eventId"], **copy.deepcopy(e["contactEvent"])}
                for e in self._events
                if e["contactId"] == contact["id"]
            ],
        }

    def _v2_has_contact(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"email"}, "")
        email = body.get("email")
        if not isinstance(email, str):
            _refuse("email is required")
        found = self._live_by_email(state, [email])
        return {"contactId": found[0]["id"] if found else None, "result": bool(found)}

    def _v2_event(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | _EVENT_ITEM_KEYS | {"forceOptIn"}, "")
        return {"eventId": self._add_event(state, body, "")}

    def _v2_batch_events(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"events"}, "")
        events = body.get("events")
        if not isinstance(events, list):
            _refuse("events is required and must be a list")
        if not 1 <= len(events) <= MAX_BATCH_EVENTS:
            _refuse(f"events must hold 1 to {MAX_BATCH_EVENTS} items, got {len(events)}")
        created, failed = 0, []
        for n, item in enumerate(events):
            try:
                if not isinstance(item, dict):
                    _refuse(f"Invalid type of events[{n}]: an object expected")
                _check_keys(item, _EVENT_ITEM_KEYS, f"events[{n}]")
                self._add_event(state, item, f"events[{n}].")
                created += 1
            except _RequestRefusedError as exc:
                _log.debug("batch event refused: %s", exc)
                failed.append(item.get("email", item.get("contactId")) if isinstance(item, dict) else None)
        return {"createdAmount": created, "failedAmount": len(failed), "failedContacts": failed}

    def _add_event(self, state: _AccountState, item: dict[str, Any], prefix: str) -> str:
        """Validate and store one event; refuses (and changes nothing) when anything is wrong."""
        _check_event(item.get("contactEvent"), f"{prefix}contactEvent")
        _check_optional(item, "forceOptIn", prefix.rstrip("."), bool, "a boolean")
        contact_id, email = item.get("contactId"), item.get("email")
        if contact_id is not None:
            if not isinstance(contact_id, str):
                _refuse(f"Invalid type of {prefix}contactId: a string expected")
            contact = state.contact_by_id(contact_id)
            if contact is None or contact["deleted"]:
                _refuse(f"Contact not found: {contact_id}")
            email = contact["email"]
        elif not _is_email(email):
            _refuse(f"Invalid e-mail address in {prefix}email: {email!r}")
        self._refuse_if_rejected(email)
        now = _now_ms()
        contact = state.contacts.get(email.lower())
        if contact is None:
            # L confidence: SALESmanago is assumed to create a contact for an event sent to an unknown
            # e-mail (and, by the same reasoning, to revive a soft-deleted one).
            contact = state.contacts[email.lower()] = _new_contact(email, state.account.client_id, now)
        elif contact["deleted"]:
            contact["deleted"], contact["modifiedOn"] = False, now
        if item.get("forceOptIn"):
            contact["optedOut"] = False
        event_id = str(uuid.uuid4())
        self._events.append(
            {
                "eventId": event_id,
                "client_id": state.account.client_id,
                "email": email,
                "contactId": contact["id"],
                "contactEvent": copy.deepcopy(item["contactEvent"]),
                "received_at": now,
            }
        )
        return event_id

    # ----------------------------------------------------------------- API v3

    def _v3(
        self, handler: V3Handler, headers: dict[str, str], body: Any, is_json: bool, needs_body: bool
    ) -> _Reply:
        with self._lock:
            client_id = self._by_products_key.get(headers.get("api-key", ""))
            if client_id is None:
                return _json_reply({"messages": ["Invalid API key"], "reasonCode": REASON_API_KEY}, 400)
            if needs_body and (not is_json or not isinstance(body, dict)):
                return _json_reply({"messages": ["Invalid request body: a JSON object expected"]}, 400)
            return handler(self._states[client_id], body)

    @staticmethod
    def _problems_reply(problems: list[dict[str, Any]]) -> _Reply:
        return _json_reply({"problems": problems}, 400)

    def _v3_product_upsert(self, state: _AccountState, body: dict[str, Any]) -> _Reply:
        problems = [
            {"reasonCode": REASON_TYPE, "message": f"{key}|Unknown field"}
            for key in body
            if key not in ("catalogId", "products")
        ]
        catalog_id = body.get("catalogId")
        if catalog_id is None:
            problems.append({"reasonCode": REASON_MISSING, "message": "catalogId|Field is required"})
        elif not isinstance(catalog_id, str):
            problems.append({"reasonCode": REASON_TYPE, "message": "catalogId|A string expected"})
        elif catalog_id not in state.catalogs:
            return self._problems_reply(
                [{"reasonCode": REASON_UNKNOWN_ID, "message": "catalogId|Catalog not found"}]
            )
        products = body.get("products")
        if not isinstance(products, list) or not products:
            code = REASON_MISSING if not products else REASON_TYPE
            problems.append({"reasonCode": code, "message": "products|A non-empty list expected"})
        elif len(products) > MAX_PRODUCTS:
            problems.append(
                {"reasonCode": REASON_TOO_LONG, "message": f"products|At most {MAX_PRODUCTS} products"}
            )
        else:
            for n, product in enumerate(products):
                problems.extend(_product_problems(product, f"products[{n}]"))
        if problems:
            # All-or-nothing (our choice, L): applying the valid part would hide which products are stored.
            return self._problems_reply(problems)
        store = self._products.setdefault(catalog_id, {})
        for product in products:
            self._store_product(store, product)
        reply: dict[str, Any] = {
            "requestId": str(uuid.uuid4()),
            "productIds": [p["productId"] for p in products],
        }
        if self.warn_trim:
            reply["problems"] = [{"reasonCode": REASON_TRIMMED, "message": "description|Data trimmed"}]
        return _json_reply(reply)

    @staticmethod
    def _store_product(store: dict[str, dict[str, Any]], product: dict[str, Any]) -> None:
        merged = store.get(product["productId"], {})
        for key, value in product.items():
            if key == "setAsNull" or value is None:
                continue
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key].update(copy.deepcopy(value))
            else:
                merged[key] = copy.deepcopy(value)
        for key in product.get("setAsNull") or []:
            if key in _CUSTOM_DETAIL_KEYS:
                merged.get("customDetails", {}).pop(key, None)
            else:
                merged.pop(key, None)
        store[product["productId"]] = merged

    def _v3_catalog_list(self, state: _AccountState, _body: Any) -> _Reply:
        return _json_reply(
            {"catalogs": [dict(c) for c in state.catalogs.values()], "limits": {"max": MAX_CATALOGS}}
        )

    def _v3_catalog_upsert(self, state: _AccountState, body: dict[str, Any]) -> _Reply:
        problems = [
            {"reasonCode": REASON_TYPE, "message": f"{key}|Unknown field"}
            for key in body
            if key not in _CATALOG_KEYS
        ]
        catalog_id = body.get("catalogId")
        if catalog_id is not None and catalog_id not in state.catalogs:
            return self._problems_reply(
                [{"reasonCode": REASON_UNKNOWN_ID, "message": "catalogId|Catalog not found"}]
            )
        creating = catalog_id is None
        name = body.get("catalogName", body.get("name"))
        currency, location = body.get("currency"), body.get("location")
        if creating and name is None:
            problems.append({"reasonCode": REASON_MISSING, "message": "name|Field is required"})
        elif name is not None and (not isinstance(name, str) or len(name) > 255):
            problems.append({"reasonCode": REASON_TYPE, "message": "name|A string of at most 255 expected"})
        if creating and currency is None:
            problems.append({"reasonCode": REASON_MISSING, "message": "currency|Field is required"})
        elif currency is not None and not (isinstance(currency, str) and _CURRENCY_RE.match(currency)):
            problems.append({"reasonCode": REASON_PATTERN, "message": "currency|An ISO 4217 code expected"})
        if location is not None and not (isinstance(location, str) and _CATALOG_LOCATION_RE.match(location)):
            problems.append(
                {"reasonCode": REASON_PATTERN, "message": "location|^[a-zA-Z_][a-zA-Z0-9_]{2,254}$ expected"}
            )
        if body.get("setAsDefault") is not None and not isinstance(body["setAsDefault"], bool):
            problems.append({"reasonCode": REASON_TYPE, "message": "setAsDefault|A boolean expected"})
        if creating and len(state.catalogs) >= MAX_CATALOGS:
            problems.append({"reasonCode": REASON_LIMIT, "message": f"catalogs|At most {MAX_CATALOGS}"})
        if problems:
            return self._problems_reply(problems)
        if creating:
            catalog_id = str(uuid.uuid4())
            state.catalogs[catalog_id] = {
                "catalogId": catalog_id,
                "name": name,
                "location": location or "",
                "currency": currency,
            }
        catalog = state.catalogs[catalog_id]
        changes = {"name": name, "currency": currency, "location": location}
        catalog.update({k: v for k, v in changes.items() if v is not None})
        return _json_reply({"requestId": str(uuid.uuid4()), "catalogId": catalog_id})

    # ----------------------------------------------------------------- connection bookkeeping

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow fault must not hold up stop()
    sandbox: Sandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients with a session expect
    server_version = "SALESmanagoSandbox/1.0"
    # Without TCP_NODELAY each reply's body waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.sandbox._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sandbox._track(self.connection, False)

    def _serve(self) -> None:
        raw = self._read_body()
        reply = self.server.sandbox._process(self.command, self.path, list(self.headers.items()), raw)
        if reply is None:  # injected "drop": no status line, no body, just a closed socket
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client gave up (e.g. timed out during a slow fault)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """Serve the sandbox until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m local.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--groups-file", type=Path, help="JSON {group_key: group_config}; default: demo account"
    )
    parser.add_argument("--latency-ms", type=float, default=0, help="fixed latency added to every answer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.groups_file:
        sandbox = Sandbox.from_groups_file(args.groups_file, latency_ms=args.latency_ms)
    else:
        sandbox = Sandbox(latency_ms=args.latency_ms)
    sandbox.start(host=args.host, port=args.port)
    try:  # before the line that announces the URL: a caller may stop us as soon as it reads it
        clients = ", ".join(a.client_id for a in sandbox.accounts)
        _log.info("SALESmanago sandbox on %s (clients: %s); Ctrl-C to stop", sandbox.url, clients)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
