"""The mapping reads model attributes for speed; it must equal the plain definition of each body:
the model's JSON dump, arranged in SALESmanago's shape, with None, empty strings and empty
containers dropped at any depth. Hypothesis feeds both with valid payloads of every shape.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from salesmanago_bridge.commands import ContactUpsertData, EventCreateData, ProductData
from salesmanago_bridge.mapping import (
    ADDRESS_FIELDS,
    CONTACT_FIELDS,
    EVENT_FIELDS,
    PRODUCT_SYSTEM_DETAILS,
    UPSERT_TOP_LEVEL_FIELDS,
    contact_upsert_item,
    event_item,
    product_item,
)


def compact(value: Any) -> Any:
    """Drop None, empty strings and containers left empty, recursively."""
    if isinstance(value, dict):
        kept = {key: compact(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (None, "", [], {})}
    if isinstance(value, list):
        kept_items = [compact(item) for item in value]
        return [item for item in kept_items if item not in (None, "", [], {})]
    return value


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def reference_contact(data: ContactUpsertData) -> dict[str, Any]:
    fields = dump(data)
    return compact(
        {
            "contact": {
                **{name: fields.get(name) for name in CONTACT_FIELDS},
                "address": {name: fields.get(name) for name in ADDRESS_FIELDS},
            },
            **{name: fields.get(name) for name in UPSERT_TOP_LEVEL_FIELDS},
        }
    )


def reference_event(data: EventCreateData) -> dict[str, Any]:
    fields = dump(data)
    return compact(
        {"email": fields["email"], "contactEvent": {name: fields.get(name) for name in EVENT_FIELDS}}
    )


def reference_product(product: ProductData) -> dict[str, Any]:
    fields = dump(product)
    for name in ("brand", "sub_category", *(f"detail{n}" for n in range(1, 6))):
        if isinstance(fields.get(name), str):
            fields[name] = fields[name][:255]  # what SALESmanago keeps
    quantity, available = fields.get("stock_available"), fields.get("available")
    item = compact(
        {
            "productId": fields["id"],
            "name": fields["name"],
            "description": fields["description"],
            "mainCategory": fields["category"],
            "categories": [fields.get("sub_category")],
            "productUrl": fields["url"],
            "mainImageUrl": fields["image_url"],
            "imageUrls": [fields.get("image2_url")],
            "price": fields.get("price"),
            "discountPrice": fields.get("special_price"),
            "quantity": quantity,
            "available": quantity > 0 if available is None and quantity is not None else available,
            "active": fields.get("active"),
            "customDetails": {f"detail{n}": fields.get(f"detail{n}") for n in range(1, 6)},
            "systemDetails": {
                target: fields.get(source) for source, target in PRODUCT_SYSTEM_DETAILS.items()
            },
        }
    )
    # What SALESmanago's own library clears: the discount price and each custom detail not sent.
    details = item.get("customDetails", {})
    item["setAsNull"] = ["discountPrice"] * ("discountPrice" not in item) + [
        f"detail{n}" for n in range(1, 6) if f"detail{n}" not in details
    ]
    return item


# Values that may come out empty after validation (blank, whitespace only) are drawn on purpose.
texts = st.one_of(st.none(), st.sampled_from(["", "  ", "x", " Gdańsk "]), st.text(max_size=12))
flags = st.one_of(st.none(), st.booleans())
money = st.one_of(
    st.none(),
    st.integers(0, 10**8).map(lambda cents: cents / 100),  # what a JSON price is: a float
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.integers(0, 10**6),
)
tags = st.one_of(st.none(), st.lists(st.text(string.ascii_uppercase, min_size=1, max_size=8), max_size=3))
property_values = st.one_of(
    st.sampled_from(["", " ", "v"]), st.integers(), st.booleans(), st.text(max_size=8)
)


def optional_fields(**strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict holding any subset of the fields, each drawn from its strategy."""
    return st.fixed_dictionaries({}, optional=strategies)


def validated(model: type[BaseModel], raw: dict[str, Any]) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError:
        assume(False)


contacts = optional_fields(
    **{name: texts for name in ("name", "phone", "fax", "company", "externalId", "province", "lang")},
    **{name: texts for name in ADDRESS_FIELDS},
    state=st.one_of(st.none(), st.sampled_from(["CUSTOMER", "PROSPECT"])),
    newEmail=st.one_of(st.none(), st.just("new.address@Example.com")),
    tags=tags,
    removeTags=tags,
    properties=st.one_of(
        st.none(), st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=6), property_values)
    ),
    birthday=st.one_of(st.none(), st.sampled_from(["19880417", "1988-04-17"])),
    forceOptIn=flags,
    forceOptOut=st.one_of(st.none(), st.just(False)),
    forcePhoneOptIn=flags,
    forcePhoneOptOut=st.one_of(st.none(), st.just(False)),
    consentDetails=st.one_of(
        st.none(),
        st.lists(
            st.fixed_dictionaries(
                {"consentName": st.sampled_from(["MARKETING", " SMS "]), "consentAccept": st.booleans()},
                optional={
                    "agreementDate": st.one_of(st.none(), st.integers(1_600_000_000_000, 1_900_000_000_000)),
                    "ip": texts,
                    "optOut": flags,
                },
            ),
            max_size=2,
        ),
    ),
)
events = optional_fields(
    description=texts,
    products=st.one_of(st.none(), st.lists(st.sampled_from(["SKU-1", "SKU-2"]), max_size=2), st.just("")),
    location=st.one_of(st.none(), st.just("demo_shop")),
    value=st.one_of(st.none(), st.decimals(min_value=-(10**6), max_value=10**6, places=2)),
    externalId=texts,
    shopDomain=texts,
    date=st.one_of(st.none(), st.integers(1_600_000_000_000, 1_900_000_000_000)),
    **{f"detail{n}": texts for n in (1, 2, 5, 20)},
)
products = optional_fields(
    sub_category=texts,
    sex=st.one_of(st.none(), st.sampled_from([-1, 0, 1, 2, 4])),
    price=money,
    special_price=money,
    image2_url=st.one_of(st.none(), st.just("https://s.example.com/2.jpg")),
    stock_available=st.one_of(st.none(), st.integers(0, 50)),
    color=texts,
    season=texts,
    active=flags,
    available=flags,
    **{f"detail{n}": texts for n in range(1, 6)},
)


@settings(max_examples=400, deadline=None)
@given(contacts)
def test_contact_upsert_item_is_the_compacted_dump(raw: dict[str, Any]) -> None:
    data = validated(ContactUpsertData, {"email": "Zofia@Example.com", **raw})
    assert contact_upsert_item(data) == reference_contact(data)


@settings(max_examples=400, deadline=None)
@given(events, st.sampled_from(["PURCHASE", "CART"]))
def test_event_item_is_the_compacted_dump(raw: dict[str, Any], event_type: str) -> None:
    data = validated(
        EventCreateData, {"email": "zofia@example.com", "contactExtEventType": event_type, **raw}
    )
    item = event_item(data)
    assert item == reference_event(data)
    assert all(type(v) is float for k, v in item["contactEvent"].items() if k == "value")


@settings(max_examples=400, deadline=None)
@given(products, st.sampled_from(["Nordlys", " B "]))
def test_product_item_is_the_compacted_dump(raw: dict[str, Any], brand: str) -> None:
    base = {
        "id": "sku-1",
        "name": "N",
        "description": "D",
        "category": "C",
        "brand": brand,
        "url": "https://s.example.com/p",
        "image_url": "https://s.example.com/i",
    }
    product = validated(ProductData, {**base, **raw})
    item = product_item(product)
    assert item == reference_product(product)
    # == takes 5 for 5.0: the amounts must be sent as floats, whatever the producer sent
    assert all(type(item[name]) is float for name in ("price", "discountPrice") if name in item)


def test_reference_compact_drops_empties_at_any_depth_and_keeps_false_and_zero() -> None:
    nested = {"a": {"b": {"c": None}}, "d": [{"e": ""}, [], None, "x"], "f": [[{"g": {}}]], "h": {"i": [0]}}
    assert compact(nested) == {"d": ["x"], "h": {"i": [0]}}
    assert compact({"a": None, "b": "", "e": False, "f": 0}) == {"e": False, "f": 0}
