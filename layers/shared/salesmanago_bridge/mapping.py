"""Our payload fields → SALESmanago request bodies (salesmanago-api.md §2-§4), and back for reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from salesmanago_bridge.commands import (
    SALESMANAGO_TEXT_LIMIT,
    ConsentDetail,
    ContactDeleteData,
    ContactUpsertData,
    EventCreateData,
    ProductData,
)

CONTACT_FIELDS = ("email", "name", "phone", "fax", "company", "externalId", "state")
ADDRESS_FIELDS = ("streetAddress", "zipCode", "city", "country")
UPSERT_TOP_LEVEL_FIELDS = (
    "newEmail", "tags", "removeTags", "properties", "birthday", "province", "lang",
    "forceOptIn", "forceOptOut", "forcePhoneOptIn", "forcePhoneOptOut", "consentDetails",
)  # fmt: skip
EVENT_FIELDS = (
    "contactExtEventType", "date", "description", "products", "location", "value", "externalId", "shopDomain",
    *(f"detail{n}" for n in range(1, 21)),
)  # fmt: skip
PRODUCT_SYSTEM_DETAILS = {"brand": "brand", "sex": "gender", "color": "color", "season": "season"}
PRODUCT_DETAILS = tuple(f"detail{n}" for n in range(1, 6))
CONSENT_FIELDS = ("consentName", "consentAccept", "agreementDate", "ip", "optOut")


# SALESmanago gets no empty values: None and empty strings are left out (as its own library does).
EMPTY = (None, "")


def _cut(value: str | None) -> str | None:
    """What SALESmanago keeps of a text it limits to 255 (its own library trims, it does not fail)."""
    return None if value is None else value[:SALESMANAGO_TEXT_LIMIT]


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


# The items below read the validated models' attributes directly: dumping a model and compacting
# the result costs three times the CPU, and these run for every contact, event and product sent.
# ``tests/unit/test_mapping_reference.py`` holds them equal to the model's JSON dump, arranged,
# empties dropped.
def contact_upsert_item(data: ContactUpsertData) -> dict[str, Any]:
    """One upsert without auth and owner: the body of ``contact/upsert`` and an item of ``batchupsert``."""
    contact = {name: value for name in CONTACT_FIELDS if (value := getattr(data, name)) not in EMPTY}
    address = {name: value for name in ADDRESS_FIELDS if (value := getattr(data, name)) not in EMPTY}
    if address:
        contact["address"] = address
    item: dict[str, Any] = {"contact": contact}
    for name in UPSERT_TOP_LEVEL_FIELDS:
        value = getattr(data, name)
        if value is None:
            continue
        if name == "birthday":
            value = value.strftime("%Y%m%d")
        elif name == "properties":
            value = {key: text for key, text in value.items() if text != ""}
        elif name == "consentDetails":
            value = [_consent(consent) for consent in value]
        elif name in ("tags", "removeTags"):
            value = list(value)
        if value != "" and value != [] and value != {}:
            item[name] = value
    return item


def _consent(consent: ConsentDetail) -> dict[str, Any]:
    return {name: value for name in CONSENT_FIELDS if (value := getattr(consent, name)) not in EMPTY}


def contact_delete_body(data: ContactDeleteData) -> dict[str, Any]:
    return {"email": str(data.email), "permanently": data.permanently}


def event_item(data: EventCreateData) -> dict[str, Any]:
    """``{"email", "contactEvent"}``: the body of ``addContactExtEvent`` and an item of the batch call."""
    event = {name: value for name in EVENT_FIELDS if (value := getattr(data, name)) not in EMPTY}
    if data.value is not None:
        event["value"] = float(data.value)
    return {"email": data.email, "contactEvent": event}


def product_item(product: ProductData) -> dict[str, Any]:
    """One product in the v3 Product Catalog shape (salesmanago-api.md §4 table)."""
    quantity = product.stock_available
    available = product.available
    if available is None and quantity is not None:
        available = quantity > 0
    item = {
        "productId": product.id,
        "name": product.name,
        "description": product.description,
        "mainCategory": product.category,
        "categories": [_cut(product.sub_category)] if product.sub_category else None,
        "productUrl": product.url,
        "mainImageUrl": product.image_url,
        "imageUrls": [product.image2_url] if product.image2_url else None,
        "price": _number(product.price),
        "discountPrice": _number(product.special_price),
        "quantity": quantity,
        "available": available,
        "active": product.active,
    }
    item = {name: value for name, value in item.items() if value not in EMPTY}
    details = {
        name: _cut(value) for name in PRODUCT_DETAILS if (value := getattr(product, name)) not in EMPTY
    }
    if details:
        item["customDetails"] = details
    system = {
        target: value
        for source, target in PRODUCT_SYSTEM_DETAILS.items()
        if (value := getattr(product, source)) not in EMPTY
    }
    if "brand" in system:
        system["brand"] = _cut(system["brand"])
    if system:
        item["systemDetails"] = system
    # An upsert keeps what it omits: clear what SALESmanago's own library clears, nothing wider
    # (a field another integration wrote must survive). Sent even when empty, as the library does.
    cleared = [] if "discountPrice" in item else ["discountPrice"]
    item["setAsNull"] = cleared + [name for name in PRODUCT_DETAILS if name not in details]
    return item


class ContactView(BaseModel):
    """A contact as our API returns it: our field names, not SALESmanago's raw reply."""

    model_config = ConfigDict(extra="ignore")

    sm_id: str
    email: str
    name: str | None = None
    phone: str | None = None
    fax: str | None = None
    company: str | None = None
    externalId: str | None = None
    state: str | None = None
    streetAddress: str | None = None
    zipCode: str | None = None
    city: str | None = None
    country: str | None = None
    birthday: str | None = None
    tags: list[str] = []
    properties: dict[str, str] = {}
    optedOut: bool | None = None
    optedOutPhone: bool | None = None
    score: int | None = None
    createdOn: int | None = None
    modifiedOn: int | None = None


def _tag_names(items: list[Any]) -> list[str]:
    """Tag names in SALESmanago's order: ``contactTags`` items are ``{tag, tagName, score, ...}``
    (a real reply); a plain list of names is tolerated too."""
    names = []
    for item in items:
        name = (item.get("tag") or item.get("tagName")) if isinstance(item, dict) else item
        if name:
            names.append(str(name))
    return names


def contact_view(raw: dict[str, Any]) -> ContactView:
    """Map a ``contact/basic`` or ``contact/list`` item to a ``ContactView``."""
    address = raw.get("address") or {}
    birthday = None
    if raw.get("birthdayYear") and raw.get("birthdayMonth") and raw.get("birthdayDay"):
        birthday = (
            f"{int(raw['birthdayYear']):04d}-{int(raw['birthdayMonth']):02d}-{int(raw['birthdayDay']):02d}"
        )
    tags = _tag_names(raw.get("contactTags") or raw.get("tags") or [])
    properties_raw = raw.get("properties") or []
    if isinstance(properties_raw, dict):
        properties = {str(k): str(v) for k, v in properties_raw.items()}
    else:
        properties = {str(p.get("name")): str(p.get("value")) for p in properties_raw if isinstance(p, dict)}
    return ContactView.model_validate(
        {
            **raw,
            "sm_id": raw.get("contactId") or raw.get("id"),
            **{name: address.get(name) for name in ADDRESS_FIELDS},
            "birthday": birthday,
            "tags": tags,
            "properties": properties,
        }
    )
