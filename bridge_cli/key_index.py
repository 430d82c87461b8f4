"""The API key → groups index at ``{prefix}/api-keys/{apiKeyId}``, derived from the groups.

The API reads one plain String per request key instead of every tenant's SecureString. The
groups' own ``api_key_ids`` are the source of truth; this module derives the index from them.

Concurrent writers (two `bridge groups put` at once) cannot lose an update, by one rule: a
writer stores its group first, then recomputes each affected entry from the groups as they are
now, writes it, and reads both back until they agree. SSM has no conditional put, but the last
writer to verify has seen every group stored before its verification, so the last word is
always complete; a writer that finds a later writer's entry already right stops there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge_cli.errors import CliError, error_code, explain_aws_error
from salesmanago_bridge.groups import ApiKeyIndexEntry
from salesmanago_bridge.settings import Settings

MAX_SYNC_ROUNDS = 5  # each round reads the groups and the index once; writers converge in two


@dataclass(frozen=True)
class Drift:
    """One key whose index entry differs from what the groups say."""

    api_key_id: str
    indexed: tuple[str, ...] | None  # None: no entry, or an unreadable one
    expected: tuple[str, ...]

    def describe(self) -> str:
        have = "no entry" if self.indexed is None else (", ".join(self.indexed) or "empty")
        want = ", ".join(self.expected) or "none (the entry should not exist)"
        return f"key {self.api_key_id}: index lists {have}; the groups say {want}"


def _pages(ssm: Any, path: str, *, decrypt: bool) -> list[dict[str, Any]]:
    try:
        pages = ssm.get_paginator("get_parameters_by_path")
        found: list[dict[str, Any]] = []
        for page in pages.paginate(Path=path, Recursive=True, WithDecryption=decrypt):
            found.extend(page.get("Parameters") or [])
        return found
    except (ClientError, BotoCoreError) as exc:
        raise explain_aws_error(exc, f"parameters under {path}") from None


def expected_index(ssm: Any, settings: Settings) -> dict[str, tuple[str, ...]]:
    """Every key id listed by a group, with the groups that list it (an operator-side full read)."""
    prefix = f"{settings.parameter_prefix}/groups/"
    bound: dict[str, set[str]] = {}
    for parameter in _pages(ssm, prefix, decrypt=True):
        group = parameter["Name"].removeprefix(prefix)
        try:
            raw = json.loads(parameter.get("Value") or "")
        except ValueError:
            continue  # `bridge groups list` reports it; an unreadable group binds no key
        key_ids = raw.get("api_key_ids") if isinstance(raw, dict) else None
        for key_id in key_ids if isinstance(key_ids, list) else []:
            if isinstance(key_id, str) and key_id:
                bound.setdefault(key_id, set()).add(group)
    return {key_id: tuple(sorted(groups)) for key_id, groups in bound.items()}


def current_index(ssm: Any, settings: Settings) -> dict[str, tuple[str, ...] | None]:
    """Every stored entry; None for one that does not parse (it counts as drift)."""
    prefix = f"{settings.parameter_prefix}/api-keys/"
    entries: dict[str, tuple[str, ...] | None] = {}
    for parameter in _pages(ssm, prefix, decrypt=False):
        try:
            entry = ApiKeyIndexEntry.model_validate_json(parameter.get("Value") or "")
            entries[parameter["Name"].removeprefix(prefix)] = entry.group_keys
        except ValueError:
            entries[parameter["Name"].removeprefix(prefix)] = None
    return entries


def drift(ssm: Any, settings: Settings, key_ids: Iterable[str] | None = None) -> list[Drift]:
    """Keys whose entry disagrees with the groups (all keys, or only ``key_ids``)."""
    expected, current = expected_index(ssm, settings), current_index(ssm, settings)
    keys = set(expected) | set(current) if key_ids is None else set(key_ids)
    found = []
    for key_id in sorted(keys):
        want = expected.get(key_id, ())
        stored = key_id in current
        have = current.get(key_id)
        # An entry must exist exactly when some group lists the key, and then list exactly those.
        if (stored and (have != want or not want)) or (not stored and want):
            found.append(Drift(key_id, have, want))
    return found


def _write(ssm: Any, settings: Settings, key_id: str, groups: tuple[str, ...]) -> None:
    name = settings.api_key_parameter_name(key_id)
    try:
        if groups:
            value = ApiKeyIndexEntry(group_keys=groups).model_dump_json()
            ssm.put_parameter(
                Name=name,
                Value=value,
                Type="String",
                Overwrite=True,
                Description="salesmanago-bridge: the groups this API key may use (derived; do not edit)",
            )
        else:
            ssm.delete_parameter(Name=name)
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return  # already gone
        raise explain_aws_error(exc, f"parameter {name}") from None
    except BotoCoreError as exc:
        raise explain_aws_error(exc, f"parameter {name}") from None


def sync_index(ssm: Any, settings: Settings, key_ids: Iterable[str] | None = None) -> list[Drift]:
    """Make the entries of ``key_ids`` (or of every key) agree with the groups; the fixes made.

    Raises:
        CliError: the entries still disagree after ``MAX_SYNC_ROUNDS`` (writers racing without end).
    """
    keys = None if key_ids is None else sorted(set(key_ids))
    fixed: list[Drift] = []
    for _ in range(MAX_SYNC_ROUNDS):
        pending = drift(ssm, settings, keys)
        if not pending:
            return fixed
        for item in pending:
            _write(ssm, settings, item.api_key_id, item.expected)
        fixed.extend(pending)
    raise CliError(
        f"the API key index did not settle after {MAX_SYNC_ROUNDS} rounds: run `bridge groups check` again"
    )
