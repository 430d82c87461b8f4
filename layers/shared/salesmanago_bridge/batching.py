"""Planning an invocation's commands: rounds that keep order per contact, chunks for the bulk calls.

Pure functions, no I/O: the dispatcher executes the plan, ``senders`` talk to SALESmanago.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from salesmanago_bridge.commands import Action, Command, ProductData
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.settings import Settings
from salesmanago_bridge.sources import Inbound, is_fifo


@dataclass(eq=False)
class Work:
    """One validated command of the invocation, with what orders it against the others."""

    position: int  # arrival order in the invocation
    inbound: Inbound
    command: Command
    group: GroupConfig
    keys: frozenset[str] = field(default_factory=frozenset)


def ordering_keys(command: Command, inbound: Inbound) -> frozenset[str]:
    """Commands sharing a key run in arrival order, never in the same chunk."""
    keys: set[str] = set()
    data: Any = command.data
    if isinstance(data, tuple):
        keys |= {f"product:{command.group_key}:{p.id}" for p in data}
    else:
        keys.add(f"contact:{command.group_key}:{data.email.lower()}")
        if getattr(data, "newEmail", None):
            keys.add(f"contact:{command.group_key}:{data.newEmail.lower()}")
    if inbound.message_group_id and is_fifo(inbound.source_arn):
        keys.add(f"fifo:{inbound.message_group_id}")
    return frozenset(keys)


def held_back_keys(inbound: Inbound) -> frozenset[str]:
    """The ordering keys of a message handed back before it became a command (its group config
    could not be read, its dead letter could not be sent): its FIFO group, and the contact or
    products its body names, as far as the raw body tells. Later messages sharing one must wait."""
    keys: set[str] = set()
    if inbound.message_group_id and is_fifo(inbound.source_arn):
        keys.add(f"fifo:{inbound.message_group_id}")
    body = inbound.body
    group = body.get("group_key") if isinstance(body, dict) else None
    if not isinstance(group, str):
        return frozenset(keys)
    data = body.get("data")
    for item in data if isinstance(data, list) else [data]:
        if not isinstance(item, dict):
            continue
        if isinstance(email := item.get("email"), str):
            keys.add(f"contact:{group}:{email.strip().lower()}")
        if isinstance(data, list) and isinstance(product_id := item.get("id"), str):
            keys.add(f"product:{group}:{product_id}")
    return frozenset(keys)


def plan_rounds(works: list[Work]) -> list[list[Work]]:
    """Round n+1 holds the commands that must wait for one in round n (same contact, product, FIFO group)."""
    last_round: dict[str, int] = {}
    rounds: list[list[Work]] = []
    for work in sorted(works, key=lambda w: w.position):
        number = 1 + max((last_round[k] for k in work.keys if k in last_round), default=-1)
        for key in work.keys:
            last_round[key] = number
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(work)
    return rounds


@dataclass(frozen=True)
class ProductItem:
    """One product of one command: products of many commands share a request."""

    work: Work
    index: int  # position in the command's own list
    product: ProductData


@dataclass
class Chunk:
    """One SALESmanago request's worth of commands of one group and action."""

    action: Action
    group: GroupConfig
    works: list[Work]
    products: list[ProductItem] = field(default_factory=list)


def plan_chunks(works: list[Work], settings: Settings) -> list[Chunk]:
    """Group a round's commands by (group, action) and cut them to the bulk limits."""
    by_key: dict[tuple[str, Action], list[Work]] = {}
    for work in works:
        by_key.setdefault((work.command.group_key, work.command.action), []).append(work)
    chunks: list[Chunk] = []
    for (_, action), members in by_key.items():
        group = members[0].group
        if action is Action.CONTACT_DELETE:  # no reliable bulk endpoint: one request each
            chunks.extend(Chunk(action, group, [work]) for work in members)
        elif action is Action.PRODUCTS_UPSERT:
            chunks.extend(_pack_products(members, group, settings.product_batch_size))
        else:
            size = (
                settings.contact_batch_size if action is Action.CONTACT_UPSERT else settings.event_batch_size
            )
            chunks.extend(Chunk(action, group, members[i : i + size]) for i in range(0, len(members), size))
    return chunks


def _pack_products(works: list[Work], group: GroupConfig, size: int) -> list[Chunk]:
    items = [
        ProductItem(work, index, product) for work in works for index, product in enumerate(work.command.data)
    ]  # type: ignore[arg-type]
    chunks = []
    for start in range(0, len(items), size):
        part = items[start : start + size]
        members = list({id(item.work): item.work for item in part}.values())
        chunks.append(Chunk(Action.PRODUCTS_UPSERT, group, members, part))
    return chunks
