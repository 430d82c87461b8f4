"""Shared pieces of the tests of the public contract (commands.py): the leak marker, payload
builders and assertions on refusals.

Each rejection is checked for the exact field path, a problem text that says what is wrong, and the
absence of the input value from every rendering of the error (payloads carry personal data).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from salesmanago_bridge.commands import (
    Command,
    CommandEnvelope,
)
from salesmanago_bridge.errors import (
    BridgeError,
    ValidationFailedError,
)
from tests.conftest import PRODUCT_BASE

GROUP = "shop-1"
# Every value a test expects to stay out of error texts carries this marker (lower case, so it survives
# e-mail normalization); a rendering of an error that contains it has leaked the input.
MARKER = "qx7leak"
EMAIL = f"zofia.{MARKER}.kowalska@example.com"
MAY_1_2024_10_00_UTC_MS = 1_714_557_600_000

# salesmanago-api.md §3, written out by hand so the test does not trust the module's own list.
ALL_EVENT_TYPES = (
    "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION",
    "MEETING", "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION", "CANCELLATION", "RETURN", "SURVEY",
    "APP_STATUS", "APP_TYPE_WEB", "APP_TYPE_MANUAL", "APP_TYPE_RETENTION", "APP_TYPE_UPSALE",
    "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN", "REPEATED_LOAN",
)  # fmt: skip
OLDER_EVENT_TYPES = (
    "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION",
    "MEETING", "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION",
)  # fmt: skip
EMAIL_ACTIONS = ("contact.upsert", "contact.delete", "event.create")


# --- helpers ---


def leaky(length: int) -> str:
    """A string of exactly ``length`` characters that starts with the marker."""
    return (MARKER + "x" * length)[:length]


def email_of_length(length: int) -> str:
    """A syntactically valid e-mail of exactly ``length`` characters (local part 64, labels ≤ 63)."""
    local = leaky(64)
    last_label = length - len(local) - 1 - len("b" * 63 + "." + "c" * 63 + ".") - len(".com")
    address = f"{local}@{'b' * 63}.{'c' * 63}.{'d' * last_label}.com"
    assert len(address) == length
    return address


def url_of_length(length: int) -> str:
    prefix = f"https://shop.example.com/{MARKER}/"
    return prefix + "p" * (length - len(prefix))


def product(**fields: Any) -> dict[str, Any]:
    return {"id": "sku-1", **PRODUCT_BASE, **fields}


def base_data(action: str) -> Any:
    if action in ("contact.upsert", "contact.delete"):
        return {"email": EMAIL}
    if action == "event.create":
        return {"email": EMAIL, "contactExtEventType": "PURCHASE", "date": MAY_1_2024_10_00_UTC_MS}
    return [product()]


def body(action: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {"action": action, "group_key": GROUP, "data": data, **extra}


def to_command(action: str, data: Any, **kwargs: Any) -> Command:
    return CommandEnvelope.parse(body(action, data)).to_command(**kwargs)


def with_fields(action: str, **fields: Any) -> Any:
    data = base_data(action)
    return {**data, **fields}


def rejected(
    action: str, data: Any, error_type: type[BridgeError] = ValidationFailedError, **kwargs: Any
) -> BridgeError:
    with pytest.raises(error_type) as info:
        to_command(action, data, **kwargs)
    return info.value


def problem_for(error: BridgeError, field: str) -> str:
    """The problem text of the detail naming exactly ``field`` (fails listing what was named instead)."""
    matches = [d.problem for d in error.details if d.field == field]
    assert matches, f"no detail for {field!r}; details name {[d.field for d in error.details]}"
    return matches[0]


def renderings(error: BridgeError) -> list[str]:
    return [str(error), error.describe(), json.dumps(error.as_reason()), repr(error)]


def assert_hidden(error: BridgeError, *values: str) -> None:
    for text in renderings(error):
        assert MARKER not in text.lower()
        for value in values:
            assert value not in text
