"""SALESmanago v3 product catalogs: list them and create one, for onboarding a tenant.

The request and reply shapes are pinned in ``tests/conformance/corpus/catalog_*.json``; the
gateway holds them (paths, bodies, how a listed catalog is read). This module holds what a caller
may ask for: the validated ``NewCatalog``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from salesmanago_bridge.client import SalesmanagoClient
from salesmanago_bridge.errors import ValidationFailedError
from salesmanago_bridge.fields import LOCATION_PATTERN, problems_from
from salesmanago_bridge.gateway import Catalog, CatalogList, SalesmanagoGateway, read_catalog
from salesmanago_bridge.groups import GroupConfig

__all__ = ["Catalog", "CatalogList", "NewCatalog", "create_catalog", "list_catalogs", "read_catalog"]

LIST_ACTION = "catalogs.list"  # the metric dimension of these requests
CREATE_ACTION = "catalogs.create"
CURRENCY_PATTERN = r"^[A-Z]{3}$"  # ISO 4217
CATALOG_NAME_MAX_LENGTH = 255  # not published (L): the sandbox holds the same limit


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


def list_catalogs(client: SalesmanagoClient, group: GroupConfig) -> CatalogList:
    """The account's catalogs (v3 ``catalogList``).

    Raises:
        AuthError, TransientError, SalesmanagoRejectedError: as the client raises them.
    """
    return SalesmanagoGateway(client).list_catalogs(group, action=LIST_ACTION)


def create_catalog(client: SalesmanagoClient, group: GroupConfig, catalog: NewCatalog) -> str:
    """Create ``catalog`` (v3 ``catalogUpsert`` without an id); return its new id.

    Raises:
        SalesmanagoRejectedError: SALESmanago refused a field (its problems are listed).
        UnavailableError: the reply carried no catalogId.
    """
    return SalesmanagoGateway(client).create_catalog(group, catalog, action=CREATE_ACTION)
