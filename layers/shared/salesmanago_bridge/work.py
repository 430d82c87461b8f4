"""The units of an invocation's plan: ``Work`` (one command), ``Chunk`` (one request's worth of
commands) and ``Result`` (what sending one command gave). Planners make them, senders fill results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from salesmanago_bridge.commands import Action, Command
from salesmanago_bridge.errors import BridgeError
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.sources import Inbound

# What sending gave one command: its reply fields, or why it failed; by Work.position.
Result = dict[str, Any] | BridgeError
Results = dict[int, Result]


@dataclass(eq=False)
class Work:
    """One validated command of the invocation, with what orders it against the others."""

    position: int  # arrival order in the invocation
    inbound: Inbound
    command: Command
    group: GroupConfig
    keys: frozenset[str] = field(default_factory=frozenset)


class CatalogItem(Protocol):
    """One item of a products command's list: a whole product, or its stock or its price."""

    @property
    def id(self) -> str: ...


@dataclass(frozen=True)
class ProductItem:
    """One product of one command: products of many commands share a request."""

    work: Work
    index: int  # position in the command's own list
    product: CatalogItem


@dataclass
class Chunk:
    """One SALESmanago request's worth of commands of one group and action."""

    action: Action
    group: GroupConfig
    works: list[Work]
    products: list[ProductItem] = field(default_factory=list)
