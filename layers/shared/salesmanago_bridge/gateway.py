"""Every SALESmanago operation the bridge uses, one method each: path, body shape, reply rules.

``client/`` carries requests (signing, retries, timeouts, errors); what a path is called, how
its body is wrapped and how its reply is read, including the rules that read SALESmanago's
message text, lives here and nowhere else (salesmanago-api.md; docs/salesmanago.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from salesmanago_bridge.errors import AuthError, BridgeError, SalesmanagoRejectedError, UnavailableError
from salesmanago_bridge.groups import GroupConfig

if TYPE_CHECKING:
    from salesmanago_bridge.catalogs import NewCatalog


@dataclass(frozen=True)
class Operation:
    """One SALESmanago endpoint: its API (v2 body auth, v3 API-KEY), path, whether a repeat is safe."""

    api: str
    path: str
    idempotent: bool = True


CONTACT_UPSERT = Operation("v2", "contact/upsert")
CONTACT_BATCH_UPSERT = Operation("v2", "contact/batchupsert")
CONTACT_DELETE = Operation("v2", "contact/delete")
CONTACT_LIST = Operation("v2", "contact/list")
CONTACT_LIST_BY_ID = Operation("v2", "contact/listById")
CONTACT_HAS = Operation("v2", "contact/hasContact")
EVENT_ADD = Operation("v2", "v2/contact/addContactExtEvent", idempotent=False)
EVENT_BATCH_ADD = Operation("v2", "v2/contact/addBatchContactExtEvent", idempotent=False)
PRODUCT_UPSERT = Operation("v3", "product/upsert")
# Stock and price alone (the official library's ProductService::updateQuantities / updatePrices).
# Idempotent: each item carries the absolute value to set, never a change to apply, so a repeat
# leaves the same state (quantity 3 twice is 3; a delta of -1 would not be).
PRODUCT_UPDATE_QUANTITY = Operation("v3", "product/updateQuantity")
PRODUCT_UPDATE_PRICE = Operation("v3", "product/updatePrice")
CATALOG_LIST = Operation("v3", "product/catalogList")
CATALOG_UPSERT = Operation("v3", "product/catalogUpsert")
OPERATIONS = (
    CONTACT_UPSERT,
    CONTACT_BATCH_UPSERT,
    CONTACT_DELETE,
    CONTACT_LIST,
    CONTACT_LIST_BY_ID,
    CONTACT_HAS,
    EVENT_ADD,
    EVENT_BATCH_ADD,
    PRODUCT_UPSERT,
    PRODUCT_UPDATE_QUANTITY,
    PRODUCT_UPDATE_PRICE,
    CATALOG_LIST,
    CATALOG_UPSERT,
)
# Paths whose effect is not idempotent in SALESmanago (salesmanago-api.md §3): the client never
# repeats them after a request may have been applied.
AT_MOST_ONCE_PATHS = tuple(op.path.rsplit("/", 1)[-1] for op in OPERATIONS if not op.idempotent)

CONTACT_LIST_LIMIT = 50  # e-mails per contact/list request (salesmanago-api.md §5)
# Replies that concern the whole request, not a record in it: splitting cannot help.
REQUEST_LEVEL_MARKERS = ("owner", "not authenticated", "catalog")
# Replies of contact/delete that mean "there is no such contact" (wording: L confidence).
DELETE_ABSENT = ("not found", "not exist", "no such contact")
PRODUCT_PROBLEM_PATH = re.compile(r"^products\[(\d+)\]\.?(.*)$")


class Transport(Protocol):
    """What the gateway needs of ``SalesmanagoClient`` (tests plug in stand-ins)."""

    def call_v2(
        self, group: GroupConfig, path: str, body: dict[str, Any], *, action: str
    ) -> dict[str, Any]: ...

    def call_v3(
        self, group: GroupConfig, method: str, path: str, body: dict[str, Any] | None = None, *, action: str
    ) -> tuple[dict[str, Any], list[str]]: ...


# ---- reply rules -------------------------------------------------------------------------------
def is_request_level(error: BridgeError) -> bool:
    """Whether a refusal concerns the whole request (credentials, owner, catalog), not a record."""
    return isinstance(error, AuthError) or any(m in error.message.lower() for m in REQUEST_LEVEL_MARKERS)


def failed_contact_keys(items: Any) -> set[str]:
    """The lower-cased e-mails ``failedContacts`` names.

    What it holds is not documented (salesmanago-api.md §3, L): e-mails, or objects naming the
    contact. Both are read; an item naming no e-mail names nothing, and the batch's unattributed
    failures then make its other events outcome unknown (never re-sent).
    """
    keys = set()
    for item in items if isinstance(items, list) else []:
        email = item.get("email") if isinstance(item, dict) else item
        if isinstance(email, str) and email:
            keys.add(email.lower())
    return keys


@dataclass(frozen=True)
class ProductProblem:
    """A v3 problem naming one product of the request: its index there, the field, the problem."""

    index: int
    field: str  # SALESmanago's field name inside the product; "" for the whole product
    problem: str


def product_problems(error: SalesmanagoRejectedError) -> list[ProductProblem] | None:
    """The problems of a refused v3 products write naming a product, by its index in the request
    (``products[3].quantity|...``, the index the official plugin reads from upsert errors); None:
    the whole request is at fault. Problems naming no index leave the sender to split the request."""
    if any(problem.field.startswith("catalogId") for problem in error.details) or is_request_level(error):
        return None
    named = []
    for problem in error.details:
        match = PRODUCT_PROBLEM_PATH.match(problem.field)
        if match:
            named.append(ProductProblem(int(match.group(1)), match.group(2), problem.problem))
    return named


def readable_events(stored: Any) -> bool:
    """Whether a contact's ``contactExtEvents`` has the item shape ``find_event`` reads.

    That shape is not shown by any source we have (docs/salesmanago.md): a missing list, or items
    without a type and a date, make a lookup inconclusive rather than a proof of absence.
    """
    return isinstance(stored, list) and all(
        isinstance(item, dict) and "contactExtEventType" in item and "date" in item for item in stored
    )


@dataclass(frozen=True)
class EventBatchReply:
    """What ``addBatchContactExtEvent`` said: the e-mails it names as failed, and how many failed."""

    failed_emails: set[str]
    failed_amount: int


@dataclass(frozen=True)
class Catalog:
    """One catalog as the account lists it."""

    catalog_id: str
    name: str | None
    currency: str | None
    location: str | None


@dataclass(frozen=True)
class CatalogList:
    catalogs: list[Catalog]
    max_catalogs: int | None  # the account's limit, when SALESmanago states it

    def find(self, catalog_id: str | None) -> Catalog | None:
        return next((c for c in self.catalogs if c.catalog_id == catalog_id), None)


def read_catalog(raw: dict[str, Any]) -> Catalog | None:
    """A listed catalog, its name under ``name`` or ``catalogName``; None without an id."""
    catalog_id = raw.get("catalogId") or raw.get("id")
    if not catalog_id:
        return None

    def text(*keys: str) -> str | None:
        value = next((raw[k] for k in keys if raw.get(k) not in (None, "")), None)
        return None if value is None else str(value)

    return Catalog(str(catalog_id), text("name", "catalogName"), text("currency"), text("location"))


# ---- the operations ----------------------------------------------------------------------------
class SalesmanagoGateway:
    """SALESmanago as the bridge uses it. Raises what the client raises (``BridgeError``s)."""

    def __init__(self, client: Transport) -> None:
        self.client = client

    def _v2(self, group: GroupConfig, op: Operation, body: dict[str, Any], action: str) -> dict[str, Any]:
        return self.client.call_v2(group, op.path, body, action=action)

    # ---- contacts ---------------------------------------------------------------------------
    def upsert_contact(self, group: GroupConfig, item: dict[str, Any], *, action: str) -> str | None:
        """One contact (``contact/upsert``): its contactId."""
        return self._v2(group, CONTACT_UPSERT, item, action).get("contactId")

    def upsert_contacts(
        self, group: GroupConfig, items: list[dict[str, Any]], *, action: str
    ) -> dict[str, Any]:
        """Several contacts (``contact/batchupsert``): contactId by lower-cased e-mail, as far as named."""
        reply = self._v2(group, CONTACT_BATCH_UPSERT, {"upsertDetails": items}, action)
        return {
            str(email).lower(): contact_id for email, contact_id in (reply.get("contactIds") or {}).items()
        }

    def delete_contact(self, group: GroupConfig, body: dict[str, Any], *, action: str) -> bool:
        """Delete a contact: True when deleted, False when SALESmanago says there is no such contact.

        Deleting an absent contact reaches the goal state: a redelivered delete must not be dead-lettered.
        """
        try:
            self._v2(group, CONTACT_DELETE, body, action)
        except SalesmanagoRejectedError as error:
            if any(marker in error.message.lower() for marker in DELETE_ABSENT):
                return False
            raise
        return True

    def has_contact(self, group: GroupConfig, email: str, *, action: str) -> dict[str, Any]:
        """``contact/hasContact``: a cheap call that proves the credentials and the owner."""
        return self._v2(group, CONTACT_HAS, {"email": email}, action)

    def contacts_by_email(self, group: GroupConfig, emails: list[str], *, action: str) -> list[Any]:
        """The contacts with these e-mails (``contact/list``, at most CONTACT_LIST_LIMIT), as listed."""
        return list(self._v2(group, CONTACT_LIST, {"email": emails}, action).get("contacts") or [])

    def contacts_by_id(self, group: GroupConfig, contact_ids: list[str], *, action: str) -> list[Any]:
        """The contacts with these SALESmanago ids (``contact/listById``), as listed."""
        reply = self._v2(group, CONTACT_LIST_BY_ID, {"contactId": contact_ids}, action)
        return list(reply.get("contacts") or [])

    def contact_events(
        self, group: GroupConfig, emails: list[str], *, action: str
    ) -> dict[str, list[dict[str, Any]] | None]:
        """Each listed contact's stored events by lower-cased e-mail; None where they cannot be read."""
        events: dict[str, list[dict[str, Any]] | None] = {}
        for contact in self.contacts_by_email(group, emails, action=action):
            stored = contact.get("contactExtEvents")
            events[str(contact.get("email", "")).lower()] = list(stored) if readable_events(stored) else None
        return events

    # ---- events -----------------------------------------------------------------------------
    def add_event(self, group: GroupConfig, item: dict[str, Any], *, action: str) -> str | None:
        """One event (``addContactExtEvent``): its eventId. At most once: never repeated by the client."""
        return self._v2(group, EVENT_ADD, item, action).get("eventId")

    def add_events(self, group: GroupConfig, items: list[dict[str, Any]], *, action: str) -> EventBatchReply:
        """Several events (``addBatchContactExtEvent``): which failed. At most once."""
        reply = self._v2(group, EVENT_BATCH_ADD, {"events": items}, action)
        return EventBatchReply(
            failed_contact_keys(reply.get("failedContacts")), int(reply.get("failedAmount") or 0)
        )

    # ---- products (API v3) ------------------------------------------------------------------
    # The three writes share one envelope, {"catalogId", "products": [...]}, and one reply reading:
    # reason 12 problems are warnings (returned); any other problem refuses the request, whatever
    # the HTTP status (the library's RequestService, 3.3+), and ``product_problems`` maps it back
    # to the products by their index in ``items``.
    def _write_products(
        self, op: Operation, group: GroupConfig, catalog_id: str, items: list[dict[str, Any]], action: str
    ) -> list[str]:
        body = {"catalogId": catalog_id, "products": items}
        _, warnings = self.client.call_v3(group, "POST", op.path, body, action=action)
        return warnings

    def upsert_products(
        self, group: GroupConfig, catalog_id: str, items: list[dict[str, Any]], *, action: str
    ) -> list[str]:
        """Products into one catalog (v3 ``product/upsert``): SALESmanago's warnings.

        Raises:
            SalesmanagoRejectedError: read per product with ``product_problems``.
        """
        return self._write_products(PRODUCT_UPSERT, group, catalog_id, items, action)

    def update_quantities(
        self, group: GroupConfig, catalog_id: str, items: list[dict[str, Any]], *, action: str
    ) -> list[str]:
        """Quantities of a catalog's products (v3 ``product/updateQuantity``): SALESmanago's warnings.

        Each item is ``{"productId", "quantity"}`` and nothing else, as the library sends it: no
        ``available`` (it keeps what the last full upsert set). The library's own feature test
        expects no problems for ids SALESmanago does not hold (docs/salesmanago.md), so an unknown
        product may pass unreported; when a reply does name products, ``product_problems`` reads it.

        Raises:
            SalesmanagoRejectedError: read per product with ``product_problems``.
        """
        return self._write_products(PRODUCT_UPDATE_QUANTITY, group, catalog_id, items, action)

    def update_prices(
        self, group: GroupConfig, catalog_id: str, items: list[dict[str, Any]], *, action: str
    ) -> list[str]:
        """Prices of a catalog's products (v3 ``product/updatePrice``): SALESmanago's warnings.

        Each item is ``{"productId", "price", "discountPrice"}`` with all three keys, as the library
        sends it: ``discountPrice: null`` is how it says "no discount price".

        Raises:
            SalesmanagoRejectedError: read per product with ``product_problems``.
        """
        return self._write_products(PRODUCT_UPDATE_PRICE, group, catalog_id, items, action)

    def list_catalogs(self, group: GroupConfig, *, action: str) -> CatalogList:
        """The account's catalogs (v3 ``catalogList``)."""
        reply, _ = self.client.call_v3(group, "GET", CATALOG_LIST.path, action=action)
        items = reply.get("catalogs") or []
        catalogs = [c for raw in items if isinstance(raw, dict) and (c := read_catalog(raw)) is not None]
        limits = reply.get("limits")
        limit = limits.get("max") if isinstance(limits, dict) else None
        return CatalogList(
            catalogs, limit if isinstance(limit, int) and not isinstance(limit, bool) else None
        )

    def create_catalog(self, group: GroupConfig, catalog: NewCatalog, *, action: str) -> str:
        """Create a catalog (v3 ``catalogUpsert`` without an id): its new id.

        Raises:
            UnavailableError: the reply carried no catalogId.
        """
        # The official library sends catalogName (CatalogEntity::jsonSerialize), not name.
        body = {
            "catalogName": catalog.name,
            "currency": catalog.currency,
            "location": catalog.location,
            "setAsDefault": catalog.set_as_default,
        }
        reply, _ = self.client.call_v3(group, "POST", CATALOG_UPSERT.path, body, action=action)
        catalog_id = reply.get("catalogId")
        if not catalog_id:
            raise UnavailableError("SALESmanago answered catalogUpsert without a catalogId")
        return str(catalog_id)
