"""The sandbox's validation of request bodies: what SALESmanago refuses, with its own texts and
reason codes, checked independently of the bridge's code.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from local.sandbox.model import (
    _ADDRESS_KEYS,
    _BIRTHDAY_RE,
    _CONTACT_KEYS,
    _CONTACT_TEXT_KEYS,
    _CUSTOM_DETAIL_KEYS,
    _EMAIL_RE,
    _EVENT_KEYS,
    _EVENT_TEXT_LIMITS,
    _GENDERS,
    _PRODUCT_BOOL_KEYS,
    _PRODUCT_KEYS,
    _PRODUCT_PRICE_KEYS,
    _PRODUCT_REQUIRED,
    _PRODUCT_TEXT_LIMITS,
    _PRODUCT_URL_KEYS,
    _SET_AS_NULL_NAMES,
    _SYSTEM_BOOL_KEYS,
    _SYSTEM_DETAIL_KEYS,
    _SYSTEM_TEXT_KEYS,
    _TEXT_LIMIT,
    _UPSERT_FLAGS,
    CONTACT_STATES,
    EVENT_TYPES,
    MAX_CATEGORIES,
    MAX_IMAGE_URLS,
    MAX_URL_LENGTH,
    MS_EPOCH_THRESHOLD,
    REASON_MISSING,
    REASON_NULL,
    REASON_PATTERN,
    REASON_TOO_LONG,
    REASON_TYPE,
    Account,
    _refuse,
)


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
