"""The sandbox's v3 product API: products and catalogs."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from local.sandbox.checks import _has_at_most_2_decimals, _is_int, _is_number, _product_problems
from local.sandbox.model import (
    _CATALOG_KEYS,
    _CATALOG_LOCATION_RE,
    _CURRENCY_RE,
    _CUSTOM_DETAIL_KEYS,
    _PRICE_UPDATE_KEYS,
    _PRODUCT_TEXT_LIMITS,
    _QUANTITY_UPDATE_KEYS,
    MAX_CATALOGS,
    MAX_PRODUCTS,
    REASON_API_KEY,
    REASON_LIMIT,
    REASON_MISSING,
    REASON_NULL,
    REASON_PATTERN,
    REASON_TOO_LONG,
    REASON_TRIMMED,
    REASON_TYPE,
    REASON_UNKNOWN_ID,
    V3Handler,
    _AccountState,
    _json_reply,
    _Reply,
)

_PRODUCT_ID_LIMIT = _PRODUCT_TEXT_LIMITS["productId"]


class _V3Api:
    """v3 handlers; mixed into Sandbox, whose state they read."""

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

    def _catalog_products(
        self, state: _AccountState, body: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[Any] | None] | _Reply:
        """The envelope every v3 products write shares, ``{"catalogId", "products": [...]}``: its
        problems, and the products when their list is usable (a reply when the catalog is unknown)."""
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
            return problems, None
        if len(products) > MAX_PRODUCTS:
            problems.append(
                {"reasonCode": REASON_TOO_LONG, "message": f"products|At most {MAX_PRODUCTS} products"}
            )
            return problems, None
        return problems, products

    def _v3_product_upsert(self, state: _AccountState, body: dict[str, Any]) -> _Reply:
        envelope = self._catalog_products(state, body)
        if isinstance(envelope, _Reply):
            return envelope
        problems, products = envelope
        for n, product in enumerate(products or []):
            problems.extend(_product_problems(product, f"products[{n}]"))
        if problems or products is None:
            # All-or-nothing (our choice, L): applying the valid part would hide which products are stored.
            return self._problems_reply(problems)
        store = self._products.setdefault(body["catalogId"], {})
        for product in products:
            self._store_product(store, product)
        reply: dict[str, Any] = {
            "requestId": str(uuid.uuid4()),
            "productIds": [p["productId"] for p in products],
        }
        if self.warn_trim:
            reply["problems"] = [{"reasonCode": REASON_TRIMMED, "message": "description|Data trimmed"}]
        return _json_reply(reply)

    # ---- stock and price alone ----------------------------------------------------------------
    # Bodies as the official library builds them (ProductsModel::getProductsForUpdateQuantities and
    # getProductsForUpdatePrices): {"catalogId", "products": [...]}, each product holding only its id
    # and the values set. Like the upsert, all or nothing (our choice, L). An id the catalog does
    # not hold is refused with reason 16 unless ``unknown_products`` is "ignore": the library's own
    # feature test expects SALESmanago to answer such ids with no problems (docs/salesmanago.md).
    def _v3_update_quantity(self, state: _AccountState, body: dict[str, Any]) -> _Reply:
        return self._v3_update(state, body, _QUANTITY_UPDATE_KEYS, _quantity_problems)

    def _v3_update_price(self, state: _AccountState, body: dict[str, Any]) -> _Reply:
        return self._v3_update(state, body, _PRICE_UPDATE_KEYS, _price_problems)

    def _v3_update(
        self,
        state: _AccountState,
        body: dict[str, Any],
        keys: frozenset[str],
        check: Callable[[dict[str, Any], str], list[dict[str, Any]]],
    ) -> _Reply:
        envelope = self._catalog_products(state, body)
        if isinstance(envelope, _Reply):
            return envelope
        problems, products = envelope
        if products is None:
            return self._problems_reply(problems)
        for n, product in enumerate(products):
            where = f"products[{n}]"
            if not isinstance(product, dict):
                problems.append({"reasonCode": REASON_TYPE, "message": f"{where}|An object expected"})
                continue
            problems += [
                {"reasonCode": REASON_TYPE, "message": f"{where}.{key}|Unknown field"}
                for key in product
                if key not in keys
            ]
            problems += _product_id_problems(product, where) + check(product, where)
        if problems:
            return self._problems_reply(problems)
        store = self._products.setdefault(body["catalogId"], {})
        unknown = [n for n, product in enumerate(products) if product["productId"] not in store]
        if unknown and self.unknown_products == "reject":
            return self._problems_reply(
                [
                    {"reasonCode": REASON_UNKNOWN_ID, "message": f"products[{n}].productId|Product not found"}
                    for n in unknown
                ]
            )
        for product in products:
            stored = store.get(product["productId"])
            if stored is not None:  # "ignore": an unknown id changes nothing, and is not reported
                stored.update({key: product[key] for key in product if key != "productId"})
                for key in [key for key, value in stored.items() if value is None]:
                    del stored[key]  # discountPrice: null clears the discount price
        return _json_reply({"requestId": str(uuid.uuid4())})

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


def _product_id_problems(product: dict[str, Any], where: str) -> list[dict[str, Any]]:
    product_id = product.get("productId")
    if product_id is None:
        code = REASON_MISSING if "productId" not in product else REASON_NULL
        return [{"reasonCode": code, "message": f"{where}.productId|Field is required"}]
    if not isinstance(product_id, str) or not product_id.strip():
        return [{"reasonCode": REASON_TYPE, "message": f"{where}.productId|A non-empty string expected"}]
    if len(product_id) > _PRODUCT_ID_LIMIT:
        return [
            {
                "reasonCode": REASON_TOO_LONG,
                "message": f"{where}.productId|Too long: {len(product_id)} > {_PRODUCT_ID_LIMIT}",
            }
        ]
    return []


def _quantity_problems(product: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The quantity: required, an integer (the library's ``int $productQty``; a float is a type error)."""
    if "quantity" not in product:
        return [{"reasonCode": REASON_MISSING, "message": f"{where}.quantity|Field is required"}]
    if product["quantity"] is None:
        return [{"reasonCode": REASON_NULL, "message": f"{where}.quantity|Required field set to null"}]
    if not _is_int(product["quantity"]):
        return [{"reasonCode": REASON_TYPE, "message": f"{where}.quantity|An integer expected"}]
    return []


def _price_problems(product: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """``price`` required, ``discountPrice`` optional or null (null clears it): decimal(19,2), ≥ 0."""
    problems = []
    if product.get("price") is None:
        code = REASON_MISSING if "price" not in product else REASON_NULL
        problems.append({"reasonCode": code, "message": f"{where}.price|Field is required"})
    for key in ("price", "discountPrice"):
        value = product.get(key)
        if value is not None and not (
            _is_number(value) and value >= 0 and abs(value) < 10**17 and _has_at_most_2_decimals(value)
        ):
            problems.append(
                {"reasonCode": REASON_TYPE, "message": f"{where}.{key}|A non-negative decimal(19,2) expected"}
            )
    return problems
