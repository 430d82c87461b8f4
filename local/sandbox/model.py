"""The sandbox's data: limits and reason codes, the public types (Account, Fault, RecordedRequest) and
the account state a request works on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NoReturn

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
FAULT_KINDS = frozenset({"status", "slow", "slow_body", "drop", "success_false", "non_json"})
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
# Stock and price updates (the official library's ProductsModel: toSpecialArray of these keys).
_QUANTITY_UPDATE_KEYS = frozenset({"productId", "quantity"})
_PRICE_UPDATE_KEYS = frozenset({"productId", "price", "discountPrice"})
UNKNOWN_PRODUCT_MODES = frozenset({"reject", "ignore"})
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
    misbehaves, so tests can cover "the client gave up, yet SALESmanago did the work". A `slow_body`
    fault always applies the call: its reply's head goes out at once, its body `delay_s` later.
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
    body_delay_s: float = 0.0  # a `slow_body` fault: the body follows the head this much later


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


V2Handler = Callable[[_AccountState, dict[str, Any]], dict[str, Any]]
V3Handler = Callable[[_AccountState, Any], _Reply]
