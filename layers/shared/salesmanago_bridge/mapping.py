"""Our payload fields → SALESmanago request bodies (salesmanago-api.md §2-§4), and back for reads."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from salesmanago_bridge.commands import ContactDeleteData, ContactUpsertData, EventCreateData, ProductData

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


def compact(value: Any) -> Any:
    """Drop None, empty strings and empty containers recursively (as SALESmanago's own library does).

    One inlined pass for dicts and lists alike: this runs on every field of every item we send.
    """
    kind = type(value)
    if kind is not dict and kind is not list:
        return value
    kept: dict[Any, Any] = {}
    for key, item in value.items() if kind is dict else enumerate(value):
        item_kind = type(item)
        if item_kind is dict or item_kind is list:
            item = compact(item)
            if not item:
                continue
        elif item is None or (item_kind is str and not item):
            continue
        kept[key] = item
    return kept if kind is dict else list(kept.values())


def contact_upsert_item(data: ContactUpsertData) -> dict[str, Any]:
    """One upsert without auth and owner: the body of ``contact/upsert`` and an item of ``batchupsert``."""
    fields = data.model_dump(mode="json", exclude_none=True)
    item: dict[str, Any] = {
        "contact": {
            **{name: fields[name] for name in CONTACT_FIELDS if name in fields},
            "address": {name: fields[name] for name in ADDRESS_FIELDS if name in fields},
        },
        **{name: fields[name] for name in UPSERT_TOP_LEVEL_FIELDS if name in fields},
    }
    return compact(item)


def contact_delete_body(data: ContactDeleteData) -> dict[str, Any]:
    return {"email": str(data.email), "permanently": data.permanently}


def event_item(data: EventCreateData) -> dict[str, Any]:
    """``{"email", "contactEvent"}``: the body of ``addContactExtEvent`` and an item of the batch call."""
    fields = data.model_dump(mode="json", exclude_none=True)
    return compact(
        {"email": fields["email"], "contactEvent": {name: fields.get(name) for name in EVENT_FIELDS}}
    )


def product_item(product: ProductData) -> dict[str, Any]:
    """One product in the v3 Product Catalog shape (salesmanago-api.md §4 table)."""
    fields = product.model_dump(mode="json", exclude_none=True)
    quantity = fields.get("stock_available")
    available = fields.get("available")
    if available is None and quantity is not None:
        available = quantity > 0
    item = {
        "productId": fields["id"],
        "name": fields["name"],
        "description": fields["description"],
        "mainCategory": fields["category"],
        "categories": [fields["sub_category"]] if fields.get("sub_category") else None,
        "productUrl": fields["url"],
        "mainImageUrl": fields["image_url"],
        "imageUrls": [fields["image2_url"]] if fields.get("image2_url") else None,
        "price": fields.get("price"),
        "discountPrice": fields.get("special_price"),
        "quantity": quantity,
        "available": available,
        "active": fields.get("active"),
        "customDetails": {f"detail{n}": fields.get(f"detail{n}") for n in range(1, 6)},
        "systemDetails": {target: fields.get(source) for source, target in PRODUCT_SYSTEM_DETAILS.items()},
    }
    return compact(item)


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


def contact_view(raw: dict[str, Any]) -> ContactView:
    """Map a ``contact/basic`` or ``contact/list`` item to a ``ContactView``."""
    address = raw.get("address") or {}
    birthday = None
    if raw.get("birthdayYear") and raw.get("birthdayMonth") and raw.get("birthdayDay"):
        birthday = (
            f"{int(raw['birthdayYear']):04d}-{int(raw['birthdayMonth']):02d}-{int(raw['birthdayDay']):02d}"
        )
    tags = [t["tag"] if isinstance(t, dict) else str(t) for t in raw.get("tags") or []]
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
