"""Planning an invocation's commands: rounds that keep order per contact, chunks for the bulk calls.

Pure functions, no I/O: the dispatcher executes the plan, ``senders`` talk to SALESmanago. How an
action is cut into requests is its ``ActionSpec``'s ``chunking`` and ``batch_size_setting``.
"""

from __future__ import annotations

from typing import Any

from salesmanago_bridge.actions import Chunking, spec_for
from salesmanago_bridge.commands import Action, Command
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.settings import Settings
from salesmanago_bridge.sources import Inbound, is_fifo
from salesmanago_bridge.work import Chunk, ProductItem, Work

__all__ = ["Chunk", "ProductItem", "Work", "ordering_keys", "plan_chunks", "plan_rounds"]


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


def plan_chunks(works: list[Work], settings: Settings) -> list[Chunk]:
    """Group a round's commands by (group, action) and cut them to the bulk limits."""
    by_key: dict[tuple[str, Action], list[Work]] = {}
    for work in works:
        by_key.setdefault((work.command.group_key, work.command.action), []).append(work)
    chunks: list[Chunk] = []
    for (_, action), members in by_key.items():
        spec = spec_for(action)
        group = members[0].group
        if spec.chunking is Chunking.SINGLE or spec.batch_size_setting is None:
            chunks.extend(Chunk(action, group, [work]) for work in members)
            continue
        size = int(getattr(settings, spec.batch_size_setting))
        if spec.chunking is Chunking.ITEMS:
            chunks.extend(_pack_items(action, members, group, size))
        else:
            chunks.extend(Chunk(action, group, members[i : i + size]) for i in range(0, len(members), size))
    return chunks


def _pack_items(action: Action, works: list[Work], group: GroupConfig, size: int) -> list[Chunk]:
    """The items of many commands (products) share requests; a command may span several."""
    items = [
        ProductItem(work, index, product) for work in works for index, product in enumerate(work.command.data)
    ]
    chunks = []
    for start in range(0, len(items), size):
        part = items[start : start + size]
        members = list({id(item.work): item.work for item in part}.values())
        chunks.append(Chunk(action, group, members, part))
    return chunks
