"""bridge keys: API keys with a lifecycle (create, rotate, revoke, expire, list).

Each command acts on the API Gateway key, its tenant's usage plan and the groups' api_key_ids
(and the api-keys index derived from them) together. A key's value is printed once, by the
create or rotate that made it, and never again.

The steps are ordered so that a command cut short never leaves a key working where it should
not: a new key is made disabled, put in the usage plan and bound to its groups (index synced),
and only then enabled; a key taken out of use is disabled first (API Gateway refuses it from
then on), then unbound, removed from the index and from its usage plans.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from bridge_cli.aws import AwsContext, add_aws_options
from bridge_cli.dlq import parse_duration
from bridge_cli.errors import EXIT_OK, CliError, UsageError, error_code, explain_aws_error
from bridge_cli.groups import get_group_parameter, store_group
from bridge_cli.key_index import current_index, expected_index, sync_index
from bridge_cli.parsers import show_help, subcommand
from salesmanago_bridge.commands import GROUP_KEY_PATTERN
from salesmanago_bridge.settings import Settings

STAGE_TAG = "salesmanago-bridge:stage"
# Written into a rotated key's description: when `bridge keys expire` may retire it.
ROTATED = re.compile(r"rotated: replaced by (?P<successor>\S+), retire after (?P<until>\S+)")
KEY_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")


def utcnow() -> datetime:
    """The commands' clock (tests and the demo move it to show an overlap ending)."""
    return datetime.now(UTC)


CREATE_EXAMPLES = """\
example:
  bridge keys create --group shop-pl --usage-plan shop-pl-plan --name shop-pl-erp --stage prod

Prints the key's value once: hand it to the tenant now, it is never shown again.
"""
ROTATE_EXAMPLES = """\
examples:
  bridge keys rotate a1b2c3d4e5 --overlap 24h --stage prod   # the old key works 24 more hours
  bridge keys rotate a1b2c3d4e5 --overlap 0 --stage prod     # the old key stops now

After the overlap, `bridge keys expire` disables and unbinds the old key (run it on a schedule).
"""
REVOKE_EXAMPLES = "example:\n  bridge keys revoke a1b2c3d4e5 --stage prod --yes\n"
EXPIRE_EXAMPLES = "example (hourly from CI or cron):\n  bridge keys expire --stage prod\n"
LIST_EXAMPLES = "example:\n  bridge keys list --stage prod\n"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="create, rotate, revoke and list the API's keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=LIST_EXAMPLES,
    )
    parser.set_defaults(handler=lambda args: show_help(parser))
    commands = parser.add_subparsers(dest="keys_command", metavar="{create,rotate,revoke,expire,list}")
    create = _subparser(commands, "create", "a new key, in a usage plan, bound to groups", CREATE_EXAMPLES)
    create.add_argument("--group", action="append", required=True, help="a group_key it may use (repeatable)")
    create.add_argument("--usage-plan", required=True, help="the tenant's usage plan (id or name)")
    create.add_argument("--name", required=True, help="a label for the key (tenant and integration)")
    create.set_defaults(handler=run_create)
    rotate = _subparser(
        commands, "rotate", "a successor key; the old one works for an overlap", ROTATE_EXAMPLES
    )
    rotate.add_argument("key_id", help="the API key id to replace")
    rotate.add_argument(
        "--overlap", required=True, help="how long the old key keeps working: 0, 30m, 24h, 7d"
    )
    rotate.set_defaults(handler=run_rotate)
    revoke = _subparser(commands, "revoke", "disable a key now and unbind it", REVOKE_EXAMPLES)
    revoke.add_argument("key_id", help="the API key id")
    revoke.add_argument(
        "--yes", action="store_true", help="confirm: the key's callers are refused from now on"
    )
    revoke.set_defaults(handler=run_revoke)
    expire = _subparser(
        commands, "expire", "retire the rotated keys whose overlap has ended", EXPIRE_EXAMPLES
    )
    expire.set_defaults(handler=run_expire)
    listing = _subparser(
        commands, "list", "the stage's keys: groups, state, age (never values)", LIST_EXAMPLES
    )
    listing.set_defaults(handler=run_list)


def _subparser(commands: Any, name: str, summary: str, examples: str) -> argparse.ArgumentParser:
    parser = subcommand(commands, "keys", name, summary, examples)
    add_aws_options(parser)
    return parser


# ---------------------------------------------------------------- AWS steps


class Keys:
    """The API Gateway and SSM steps of one command, for one stage."""

    def __init__(self, aws: AwsContext, out: TextIO) -> None:
        self.aws = aws
        self.settings = Settings.model_validate({"STAGE": aws.stage})
        self.out = out

    @staticmethod
    def now() -> datetime:
        return utcnow()

    @property
    def api(self) -> Any:
        return self.aws.client("apigateway")

    @property
    def ssm(self) -> Any:
        return self.aws.client("ssm")

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.api, method)(**kwargs)
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                raise UsageError(f"{what} does not exist in {self.aws.region_name}") from None
            raise explain_aws_error(exc, what) from None
        except BotoCoreError as exc:
            raise explain_aws_error(exc, what) from None

    def key(self, key_id: str) -> dict[str, Any]:
        if not KEY_ID.fullmatch(key_id):
            raise UsageError(
                f"'{key_id[:64]}' is not an API key id (letters and digits, as API Gateway shows it)"
            )
        return dict(self._call(f"API key {key_id}", "get_api_key", apiKey=key_id, includeValue=False))

    def all_keys(self) -> list[dict[str, Any]]:
        pages = self.api.get_paginator("get_api_keys").paginate(includeValues=False)
        try:
            return [item for page in pages for item in page.get("items") or []]
        except (ClientError, BotoCoreError) as exc:
            raise explain_aws_error(exc, "the account's API keys") from None

    def stage_keys(self, bound: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
        """This stage's keys: tagged with it by `create`, or listed by one of its groups."""
        return [
            key
            for key in self.all_keys()
            if (key.get("tags") or {}).get(STAGE_TAG) == self.aws.stage or key["id"] in bound
        ]

    def plans_of(self, key_id: str) -> list[dict[str, Any]]:
        reply = self._call(f"usage plans of key {key_id}", "get_usage_plans", keyId=key_id, limit=500)
        return list(reply.get("items") or [])

    def plan(self, ref: str) -> dict[str, Any]:
        """A usage plan by id or by name (a name must be unique)."""
        plans = self._call("usage plans", "get_usage_plans", limit=500).get("items") or []
        found = [p for p in plans if ref in (p.get("id"), p.get("name"))]
        if len(found) != 1:
            known = ", ".join(sorted(str(p.get("name")) for p in plans)) or "none"
            problem = "no" if not found else "more than one"
            raise UsageError(
                f"--usage-plan '{ref}': {problem} usage plan has that id or name (plans: {known})"
            )
        return dict(found[0])

    def groups_of(self, key_id: str) -> tuple[str, ...]:
        """The groups whose api_key_ids list the key: the source of truth, not the index."""
        return expected_index(self.ssm, self.settings).get(key_id, ())

    def bind(self, key_id: str, groups: Iterable[str], *, bound: bool) -> None:
        """Add the key to (or take it out of) each group's api_key_ids, keeping the group's KMS key."""
        for group in groups:
            name, parameter = get_group_parameter(self.aws, group)
            try:
                raw = json.loads(parameter.get("Value") or "")
            except ValueError:
                raise CliError(
                    f"{name}: the stored value is not JSON; fix it with `bridge groups put`"
                ) from None
            ids = [k for k in raw.get("api_key_ids") or [] if k != key_id]
            raw["api_key_ids"] = [*ids, key_id] if bound else ids
            store_group(self.aws, group, raw, overwrite=True, kms_key_id=self._kms_key(name))

    def _kms_key(self, name: str) -> str | None:
        try:
            reply = self.ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])
        except (ClientError, BotoCoreError) as exc:
            raise explain_aws_error(exc, f"parameter {name}") from None
        found = reply.get("Parameters") or []
        return found[0].get("KeyId") if found else None

    def set_enabled(self, key_id: str, enabled: bool, description: str | None = None) -> None:
        operations = [{"op": "replace", "path": "/enabled", "value": str(enabled).lower()}]
        if description is not None:
            operations.append({"op": "replace", "path": "/description", "value": description[:125]})
        self._call(f"API key {key_id}", "update_api_key", apiKey=key_id, patchOperations=operations)

    def issue(
        self, name: str, plans: list[dict[str, Any]], groups: tuple[str, ...], note: str
    ) -> dict[str, Any]:
        """A new key: made disabled, put in the plans, bound to the groups, then enabled."""
        key = self._call(
            "a new API key",
            "create_api_key",
            name=name,
            description=note[:125],
            enabled=False,
            tags={STAGE_TAG: self.aws.stage},
        )
        try:
            for plan in plans:
                self._call(
                    f"usage plan {plan['id']}",
                    "create_usage_plan_key",
                    usagePlanId=plan["id"],
                    keyId=key["id"],
                    keyType="API_KEY",
                )
            self.bind(key["id"], groups, bound=True)
            sync_index(self.ssm, self.settings, {key["id"]})
            self.set_enabled(key["id"], True)
        except CliError as exc:
            raise CliError(
                f"{exc}; the new key {key['id']} stays disabled (`bridge keys revoke {key['id']} --yes` "
                "removes what was done)",
                exit_code=exc.exit_code,
            ) from None
        return dict(key)

    def retire(self, key_id: str, note: str) -> tuple[tuple[str, ...], list[str]]:
        """Disable first, then unbind, sync the index and leave the usage plans; (groups, plans)."""
        self.set_enabled(key_id, False, note)
        groups = self.groups_of(key_id)
        self.bind(key_id, groups, bound=False)
        sync_index(self.ssm, self.settings, {key_id})
        plans = self.plans_of(key_id)
        for plan in plans:
            self._call(
                f"usage plan {plan['id']}", "delete_usage_plan_key", usagePlanId=plan["id"], keyId=key_id
            )
        return groups, [str(p.get("name") or p["id"]) for p in plans]


def _check_groups(keys: Keys, groups: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(groups))
    for group in chosen:
        if not re.fullmatch(GROUP_KEY_PATTERN, group):
            raise UsageError(f"--group '{group[:64]}' is not a group_key (1-128 letters, digits, _ and -)")
        get_group_parameter(keys.aws, group)  # UsageError when the stage has no such group
    return chosen


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _show_value(out: TextIO, key: dict[str, Any]) -> None:
    out.write(f"  value {key['value']}\n")
    out.write("  (shown this once: give it to the tenant now; `bridge keys list` never shows it)\n")


# ---------------------------------------------------------------- commands


def run_create(args: argparse.Namespace) -> int:
    keys = Keys(AwsContext.from_args(args), sys.stdout)
    groups = _check_groups(keys, args.group)
    plan = keys.plan(args.usage_plan)
    key = keys.issue(args.name, [plan], groups, f"salesmanago-bridge key, created {_stamp(keys.now())}")
    out = keys.out
    out.write(f"created API key {key['id']} ({args.name}), enabled\n")
    out.write(f"  usage plan {plan.get('name')} ({plan['id']}); groups {', '.join(groups)}\n")
    _show_value(out, key)
    return EXIT_OK


def run_rotate(args: argparse.Namespace) -> int:
    overlap = parse_duration(args.overlap)
    if overlap is None:
        raise UsageError(f"--overlap '{args.overlap}': use 0, 30m, 12h, 7d or 2w")
    keys = Keys(AwsContext.from_args(args), sys.stdout)
    old = keys.key(args.key_id)
    if not old.get("enabled"):
        raise UsageError(f"API key {old['id']} is disabled (revoked or retired): create a new key instead")
    if ROTATED.search(old.get("description") or ""):
        raise UsageError(f"API key {old['id']} was already rotated: rotate its successor instead")
    groups, plans = keys.groups_of(old["id"]), keys.plans_of(old["id"])
    if not groups or not plans:
        missing = "no group lists it" if not groups else "it is in no usage plan"
        raise UsageError(f"API key {old['id']}: {missing}; create a new key with `bridge keys create`")
    now = keys.now()
    new = keys.issue(
        str(old.get("name") or old["id"]), plans, groups, f"salesmanago-bridge key, replaces {old['id']}"
    )
    out = keys.out
    out.write(f"created API key {new['id']} to replace {old['id']}, enabled\n")
    out.write(f"  usage plans {', '.join(str(p.get('name')) for p in plans)}; groups {', '.join(groups)}\n")
    _show_value(out, new)
    until = now + overlap
    if overlap <= timedelta(0):
        keys.retire(old["id"], f"retired {_stamp(now)}: replaced by {new['id']}")
        out.write(
            f"old key {old['id']}: disabled, unbound from {', '.join(groups)} and out of its usage plans\n"
        )
        return EXIT_OK
    keys.set_enabled(old["id"], True, f"rotated: replaced by {new['id']}, retire after {_stamp(until)}")
    out.write(
        f"old key {old['id']}: keeps working until {_stamp(until)}; then `bridge keys expire` disables and "
        "unbinds it (run it on a schedule, or by hand after that time)\n"
    )
    return EXIT_OK


def run_revoke(args: argparse.Namespace) -> int:
    if not args.yes:
        raise UsageError(f"revoking {args.key_id} refuses its callers from now on: pass --yes to confirm")
    keys = Keys(AwsContext.from_args(args), sys.stdout)
    key = keys.key(args.key_id)
    groups, plans = keys.retire(key["id"], f"revoked {_stamp(keys.now())}")
    out = keys.out
    out.write(f"revoked API key {key['id']}: disabled in API Gateway (its requests get 403 from now on)\n")
    out.write(f"  unbound from {', '.join(groups) or 'no group'}; index entry removed\n")
    out.write(f"  removed from usage plans {', '.join(plans) or '(none)'}\n")
    return EXIT_OK


def rotation(key: dict[str, Any]) -> tuple[str, datetime] | None:
    """(successor, end of the overlap) of a key `rotate` left working, from its description."""
    found = ROTATED.search(key.get("description") or "") if key.get("enabled") else None
    if found is None:
        return None
    try:
        until = datetime.fromisoformat(found["until"].replace("Z", "+00:00"))
    except ValueError:
        return None  # a description edited by hand: not ours to act on
    return found["successor"], until if until.tzinfo else until.replace(tzinfo=UTC)


def run_expire(args: argparse.Namespace) -> int:
    keys = Keys(AwsContext.from_args(args), sys.stdout)
    now, retired = keys.now(), 0
    for key in keys.stage_keys(expected_index(keys.ssm, keys.settings)):
        rotated = rotation(key)
        if rotated is None or rotated[1] > now:
            continue
        successor, until = rotated
        groups, _ = keys.retire(key["id"], f"retired {_stamp(now)}: replaced by {successor}")
        keys.out.write(
            f"retired API key {key['id']} (overlap ended {_stamp(until)}): unbound from {', '.join(groups)}\n"
        )
        retired += 1
    keys.out.write(
        f"retired {retired} rotated key(s)\n" if retired else "no rotated key is past its overlap\n"
    )
    return EXIT_OK


def _state(key: dict[str, Any], now: datetime) -> str:
    if not key.get("enabled"):
        return "disabled"
    rotated = rotation(key)
    if rotated is None:
        return "enabled"
    successor, until = rotated
    if until <= now:
        return f"overlap ended {_stamp(until)}: run `bridge keys expire`"
    return f"rotating, until {_stamp(until)} (successor {successor})"


def run_list(args: argparse.Namespace) -> int:
    keys = Keys(AwsContext.from_args(args), sys.stdout)
    bound = expected_index(keys.ssm, keys.settings)
    indexed = current_index(keys.ssm, keys.settings)
    stage_keys = keys.stage_keys(bound)
    out, now = keys.out, keys.now()
    if not stage_keys:
        out.write(f"no API keys for stage {keys.aws.stage}\n")
        return EXIT_OK
    out.write(f"{len(stage_keys)} API keys of stage {keys.aws.stage} (values are never shown)\n")
    for key in sorted(stage_keys, key=lambda k: k.get("createdDate") or now):
        created = key.get("createdDate")
        age = f"{(now - created).days}d" if isinstance(created, datetime) else "?"
        groups = bound.get(key["id"], ())
        index = (
            "index ok"
            if indexed.get(key["id"], ()) == groups
            else "INDEX DRIFT: `bridge groups check --repair`"
        )
        out.write(
            f"  {key['id']:<12} {str(key.get('name'))[:28]:<28} age {age:<5} {_state(key, now)}\n"
            f"  {'':<12} groups {', '.join(groups) or '-'}; {index}\n"
        )
    return EXIT_OK
