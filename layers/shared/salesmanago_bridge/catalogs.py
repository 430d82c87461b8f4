"""SALESmanago v3 product catalogs: list them and create one, for onboarding a tenant.

The request and reply shapes are pinned in ``tests/conformance/corpus/catalog_*.json``. Where the
real shape is not known for sure (the name of a listed catalog), both plausible keys are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.commands import LOCATION_PATTERN, problems_from
from salesmanago_bridge.errors import UnavailableError, ValidationFailedError
from salesmanago_bridge.groups import GroupConfig

CATALOG_LIST_PATH = "product/catalogList"
CATALOG_UPSERT_PATH = "product/catalogUpsert"
LIST_ACTION = "catalogs.list"  # the metric dimension of these requests
CREATE_ACTION = "catalogs.create"
CURRENCY_PATTERN = r"^[A-Z]{3}$"  # ISO 4217
CATALOG_NAME_MAX_LENGTH = 255  # not published (L): the sandbox holds the same limit


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


class NewCatalog(BaseModel):
    """A catalog to create; validated before SALESmanago sees it, so errors name our fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=CATALOG_NAME_MAX_LENGTH)]
    currency: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)] = Field(
        description="ISO 4217, e.g. PLN"
    )
    location: Annotated[str, StringConstraints(pattern=LOCATION_PATTERN)]
    set_as_default: bool = False

    @classmethod
    def parse(cls, **fields: Any) -> NewCatalog:
        """Raises: ValidationFailedError naming each bad field."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise ValidationFailedError("invalid catalog", details=problems_from(exc)) from None

    def body(self) -> dict[str, Any]:
        # The official library sends catalogName (CatalogEntity::jsonSerialize), not name.
        return {
            "catalogName": self.name,
            "currency": self.currency,
            "location": self.location,
            "setAsDefault": self.set_as_default,
        }


def read_catalog(raw: dict[str, Any]) -> Catalog | None:
    """A listed catalog, its name under ``name`` or ``catalogName``; None without an id."""
    catalog_id = raw.get("catalogId") or raw.get("id")
    if not catalog_id:
        return None

    def text(*keys: str) -> str | None:
        value = next((raw[k] for k in keys if raw.get(k) not in (None, "")), None)
        return None if value is None else str(value)

    return Catalog(str(catalog_id), text("name", "catalogName"), text("currency"), text("location"))


def list_catalogs(client: SalesmanagoClient, group: GroupConfig) -> CatalogList:
    """The account's catalogs (v3 ``catalogList``).

    Raises:
        AuthError, TransientError, SalesmanagoRejectedError: as the client raises them.
    """
    reply, _ = client.call_v3(group, "GET", CATALOG_LIST_PATH, action=LIST_ACTION)
    items = reply.get("catalogs") or []
    catalogs = [c for raw in items if isinstance(raw, dict) and (c := read_catalog(raw)) is not None]
    limits = reply.get("limits") if isinstance(reply.get("limits"), dict) else {}
    limit = limits.get("max")
    return CatalogList(catalogs, limit if isinstance(limit, int) and not isinstance(limit, bool) else None)


def create_catalog(client: SalesmanagoClient, group: GroupConfig, catalog: NewCatalog) -> str:
    """Create ``catalog`` (v3 ``catalogUpsert`` without an id); return its new id.

    Raises:
        SalesmanagoRejectedError: SALESmanago refused a field (its problems are listed).
        UnavailableError: the reply carried no catalogId.
    """
    reply, _ = client.call_v3(group, "POST", CATALOG_UPSERT_PATH, catalog.body(), action=CREATE_ACTION)
    catalog_id = reply.get("catalogId")
    if not catalog_id:
        raise UnavailableError("SALESmanago answered catalogUpsert without a catalogId")
    return str(catalog_id)
