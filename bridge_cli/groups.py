"""bridge groups: tenant configs as SecureStrings at /salesmanago/{stage}/groups/{group_key}.

Secrets are never printed: show and list mask them, put and check do not echo them. put and
delete keep the API key index (/salesmanago/{stage}/api-keys/{apiKeyId}) in step with the
groups' api_key_ids; check without a group reports where the two differ.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge_cli.aws import AwsContext, add_aws_options
from bridge_cli.errors import EXIT_FAILED_ITEMS, EXIT_OK, CliError, UsageError, error_code, explain_aws_error
from bridge_cli.key_index import Drift, drift, sync_index
from bridge_cli.parsers import show_help, subcommand
from salesmanago_bridge.catalogs import CatalogList, list_catalogs
from salesmanago_bridge.commands import GROUP_KEY_PATTERN
from salesmanago_bridge.errors import BridgeError, GroupConfigError
from salesmanago_bridge.groups import FileGroupStore, GroupConfig, parse_group_config
from salesmanago_bridge.settings import Settings

SECRET_FIELDS = frozenset({"api_secret", "products_api_key"})
SECRET_HINTS = ("secret", "password", "token")
MASK = "********"
STANDARD_TIER_BYTES = 4096
CHECK_ACTION = "groups.check"  # the metric dimension of the check's requests (never flushed)
# A check should answer quickly: one retry, short timeouts.
CHECK_ENV = {
    "SALESMANAGO_MAX_RETRIES": 1,
    "SALESMANAGO_READ_TIMEOUT_S": 10,
    "SALESMANAGO_MAX_RETRY_AFTER_S": 2,
}

PUT_EXAMPLES = """\
example:
  bridge groups put shop-pl --file shop-pl.json --stage prod
  bridge groups put shop-pl --file shop-pl.json --stage prod --overwrite   # rotate credentials
"""
LIST_EXAMPLES = "example:\n  bridge groups list --stage prod\n"
SHOW_EXAMPLES = "example:\n  bridge groups show shop-pl --stage prod\n"
DELETE_EXAMPLES = "example:\n  bridge groups delete shop-pl --stage prod --yes\n"
CHECK_EXAMPLES = """\
examples:
  bridge groups check shop-pl --stage prod
  bridge groups check --stage prod                 # the API key index against every group
  bridge groups check --stage prod --repair        # ... and rewrite the entries that differ
  bridge groups check demo-shop --groups-file local/groups.sample.json   # a local file, against make sandbox

Calls SALESmanago with the group's credentials: a harmless read on API v2 (contact/hasContact),
the catalog list on API v3, and looks for the group's catalog_id in it. Exit 1 if any fails.
Without a group: compares each /api-keys/{apiKeyId} entry with the groups' api_key_ids, stage-wide.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "groups",
        help="store, list, show and check tenant (group) configs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  bridge groups list --stage prod\n",
    )
    parser.set_defaults(handler=lambda args: show_help(parser))
    commands = parser.add_subparsers(dest="groups_command", metavar="{put,delete,list,show,check}")
    put = _subparser(commands, "put", "validate a config file and store it as a SecureString", PUT_EXAMPLES)
    put.add_argument("group", help="the group_key")
    put.add_argument("--file", type=Path, required=True, help="the config, a JSON object")
    put.add_argument("--overwrite", action="store_true", help="replace an existing config")
    put.add_argument("--kms-key-id", help="KMS key for the SecureString (default: aws/ssm)")
    put.set_defaults(handler=run_put)
    delete = _subparser(commands, "delete", "remove a group and its API keys' bindings", DELETE_EXAMPLES)
    delete.add_argument("group", help="the group_key")
    delete.add_argument("--yes", action="store_true", help="confirm: the group's commands will dead-letter")
    delete.set_defaults(handler=run_delete)
    listing = _subparser(commands, "list", "the stage's groups (no secrets)", LIST_EXAMPLES)
    listing.set_defaults(handler=run_list)
    show = _subparser(commands, "show", "one group's config, secrets masked", SHOW_EXAMPLES)
    show.add_argument("group", help="the group_key")
    show.set_defaults(handler=run_show)
    check = _subparser(commands, "check", "call SALESmanago with the group's credentials", CHECK_EXAMPLES)
    check.add_argument("group", nargs="?", help="the group_key (none: check the API key index)")
    check.add_argument("--groups-file", type=Path, help="read the config from this file instead of SSM")
    check.add_argument("--repair", action="store_true", help="without a group: rewrite drifted entries")
    check.set_defaults(handler=run_check)


def _subparser(commands: Any, name: str, summary: str, examples: str) -> argparse.ArgumentParser:
    parser = subcommand(commands, "groups", name, summary, examples)
    add_aws_options(parser)
    return parser


def _settings(stage: str) -> Settings:
    return Settings.model_validate({"STAGE": stage})


def _check_key(group: str) -> str:
    if not re.fullmatch(GROUP_KEY_PATTERN, group):
        raise UsageError(f"'{group[:64]}' is not a group_key (1-128 letters, digits, _ and -)")
    return group


def mask_secrets(raw: Any) -> Any:
    """A copy of a stored config with every secret replaced (also in configs that fail validation)."""
    if not isinstance(raw, dict):
        return MASK
    masked = {}
    for key, value in raw.items():
        secret = key in SECRET_FIELDS or any(hint in key.lower() for hint in SECRET_HINTS)
        masked[key] = (MASK if value else value) if secret else value
    return masked


def _problems(out: Any, error: GroupConfigError) -> None:
    for detail in error.details:
        out.write(f"  {detail.field}: {detail.problem}\n")


def _outline(config: GroupConfig) -> str:
    mapped = ", ".join(f"{action} ({len(routes)})" for action, routes in config.field_map.items() if routes)
    return (
        f"client {config.client_id}, endpoint {config.endpoint}, "
        f"catalog {config.catalog_id or '-'}, field map: {mapped or '-'}"
    )


# ---------------------------------------------------------------- put


def run_put(args: argparse.Namespace) -> int:
    group = _check_key(args.group)
    try:
        raw = json.loads(args.file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{args.file}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{args.file}: not a readable JSON file ({type(exc).__name__})") from None
    out = sys.stdout
    try:
        config = parse_group_config(group, raw)
    except GroupConfigError as exc:
        out.write(f"{args.file.name}: not a valid group config, nothing stored:\n")
        _problems(out, exc)
        return EXIT_FAILED_ITEMS
    aws = AwsContext.from_args(args)
    settings = _settings(aws.stage)
    name = settings.group_parameter_name(group)
    previous_keys = _stored_key_ids(aws, group) if args.overwrite else ()
    version = store_group(aws, group, raw, overwrite=args.overwrite, kms_key_id=args.kms_key_id)
    out.write(f"stored group {group} at {name} (SecureString, version {version})\n")
    out.write(f"  {_outline(config)}\n")
    _report_index(out, sync_index(aws.client("ssm"), settings, {*previous_keys, *config.api_key_ids}))
    out.write("  the functions read it within POWERTOOLS_PARAMETERS_MAX_AGE (300 s by default)\n")
    return EXIT_OK


def store_group(
    aws: AwsContext, group: str, raw: Any, *, overwrite: bool, kms_key_id: str | None = None
) -> int | None:
    """Write a group's config as its SecureString; the new version.

    Raises:
        UsageError: the group exists and ``overwrite`` is false.
    """
    name = _settings(aws.stage).group_parameter_name(group)
    value = json.dumps(raw, separators=(",", ":"))
    request: dict[str, Any] = {
        "Name": name,
        "Value": value,
        "Type": "SecureString",
        "Overwrite": overwrite,
        "Tier": "Standard" if len(value.encode()) <= STANDARD_TIER_BYTES else "Advanced",
        "Description": f"salesmanago-bridge group config ({group})",
    }
    if kms_key_id:
        request["KeyId"] = kms_key_id
    try:
        reply = aws.client("ssm").put_parameter(**request)
    except ClientError as exc:
        if error_code(exc) == "ParameterAlreadyExists":
            raise UsageError(
                f"group {group} already exists at {name}: pass --overwrite to replace it"
            ) from None
        raise explain_aws_error(exc, f"parameter {name}") from None
    except BotoCoreError as exc:
        raise explain_aws_error(exc, f"parameter {name}") from None
    return reply.get("Version")


def _stored_key_ids(aws: AwsContext, group: str) -> tuple[str, ...]:
    """The key ids the stored config lists now (they lose their binding if the new one drops them)."""
    try:
        _, parameter = get_group_parameter(aws, group)
        raw = json.loads(parameter.get("Value") or "")
    except (UsageError, ValueError):
        return ()
    key_ids = raw.get("api_key_ids") if isinstance(raw, dict) else None
    return tuple(k for k in key_ids if isinstance(k, str)) if isinstance(key_ids, list) else ()


def _report_index(out: Any, fixed: list[Drift]) -> None:
    for item in fixed:
        groups = ", ".join(item.expected) or "no group (entry removed)"
        out.write(f"  API key {item.api_key_id}: now bound to {groups}\n")


# ---------------------------------------------------------------- delete


def run_delete(args: argparse.Namespace) -> int:
    group = _check_key(args.group)
    if not args.yes:
        raise UsageError(f"deleting {group} dead-letters its commands from then on: pass --yes to confirm")
    aws = AwsContext.from_args(args)
    settings = _settings(aws.stage)
    key_ids = _stored_key_ids(aws, group)
    name = settings.group_parameter_name(group)
    try:
        aws.client("ssm").delete_parameter(Name=name)
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            raise UsageError(f"no group {group} in stage {aws.stage} ({name})") from None
        raise explain_aws_error(exc, f"parameter {name}") from None
    except BotoCoreError as exc:
        raise explain_aws_error(exc, f"parameter {name}") from None
    out = sys.stdout
    out.write(f"deleted group {group} ({name})\n")
    _report_index(out, sync_index(aws.client("ssm"), settings, key_ids))
    out.write("  the functions stop using it within POWERTOOLS_PARAMETERS_MAX_AGE (300 s by default)\n")
    return EXIT_OK


# ---------------------------------------------------------------- list and show


def get_group_parameter(aws: AwsContext, group: str) -> tuple[str, dict[str, Any]]:
    name = _settings(aws.stage).group_parameter_name(group)
    try:
        reply = aws.client("ssm").get_parameter(Name=name, WithDecryption=True)
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            raise UsageError(
                f"no group {group} in stage {aws.stage} ({name}); `bridge groups list` shows them"
            ) from None
        raise explain_aws_error(exc, f"parameter {name}") from None
    except BotoCoreError as exc:
        raise explain_aws_error(exc, f"parameter {name}") from None
    return name, reply["Parameter"]


def run_list(args: argparse.Namespace) -> int:
    aws = AwsContext.from_args(args)
    prefix = f"{_settings(aws.stage).parameter_prefix}/groups/"
    rows: list[dict[str, Any]] = []
    try:
        pages = aws.client("ssm").get_paginator("get_parameters_by_path")
        for page in pages.paginate(Path=prefix, Recursive=True, WithDecryption=True):
            rows.extend(page.get("Parameters") or [])
    except (ClientError, BotoCoreError) as exc:
        raise explain_aws_error(exc, f"parameters under {prefix}") from None
    out = sys.stdout
    if not rows:
        out.write(f"no groups in stage {aws.stage} ({prefix})\n")
        return EXIT_OK
    out.write(f"{len(rows)} groups in stage {aws.stage} ({prefix})\n")
    for parameter in sorted(rows, key=lambda p: p["Name"]):
        group = parameter["Name"].removeprefix(prefix)
        modified = parameter.get("LastModifiedDate")
        when = f"{modified:%Y-%m-%d %H:%M}" if modified else "?"
        try:
            outline = _outline(parse_group_config(group, json.loads(parameter.get("Value") or "")))
        except ValueError:
            outline = "INVALID: not JSON"
        except GroupConfigError as exc:
            outline = f"INVALID: {', '.join(d.field for d in exc.details) or exc.message}"
        out.write(f"  {group:<24} v{parameter.get('Version', '?'):<4} {when}  {outline}\n")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    group = _check_key(args.group)
    aws = AwsContext.from_args(args)
    name, parameter = get_group_parameter(aws, group)
    out = sys.stdout
    modified = parameter.get("LastModifiedDate")
    out.write(f"{name} (version {parameter.get('Version')}, {parameter.get('Type')}")
    out.write(f", modified {modified:%Y-%m-%d %H:%M:%S %Z})\n" if modified else ")\n")
    try:
        raw = json.loads(parameter.get("Value") or "")
    except ValueError:
        out.write("the stored value is not JSON (not shown: it may hold secrets)\n")
        return EXIT_FAILED_ITEMS
    out.write(json.dumps(mask_secrets(raw), indent=2, ensure_ascii=False) + "\n")
    try:
        parse_group_config(group, raw)
    except GroupConfigError as exc:
        out.write("INVALID: the functions will dead-letter this group's commands:\n")
        _problems(out, exc)
        return EXIT_FAILED_ITEMS
    return EXIT_OK


# ---------------------------------------------------------------- check


def _load_for_check(args: argparse.Namespace, group: str) -> tuple[str, GroupConfig]:
    if args.groups_file:
        try:
            return str(args.groups_file), FileGroupStore(args.groups_file).get(group)
        except GroupConfigError as exc:
            if not exc.details or exc.details[0].field == "SALESMANAGO_GROUPS_FILE":
                raise UsageError(f"{args.groups_file}: {exc.message}") from None
            raise
        except BridgeError as exc:
            raise UsageError(f"{args.groups_file}: {exc.message}") from None
    aws = AwsContext.from_args(args)
    name, parameter = get_group_parameter(aws, group)
    try:
        raw = json.loads(parameter.get("Value") or "")
    except ValueError:
        raise CliError(f"{name}: the stored value is not JSON") from None
    return name, parse_group_config(group, raw)


def run_check(args: argparse.Namespace) -> int:
    from salesmanago_bridge.client import SalesmanagoClient
    from salesmanago_bridge.gateway import SalesmanagoGateway
    from salesmanago_bridge.observability import logger

    logger.setLevel(logging.WARNING)  # the client's retry lines would interleave with the report
    if args.group is None:
        return run_check_index(args)
    if args.repair:
        raise UsageError("--repair works on the API key index: leave out the group")
    group = _check_key(args.group)
    out = sys.stdout
    try:
        where, config = _load_for_check(args, group)
    except GroupConfigError as exc:
        out.write(f"group {group}: the config is invalid:\n")
        _problems(out, exc)
        return EXIT_FAILED_ITEMS
    out.write(f"group {group} ({where})\n")
    client = SalesmanagoClient(Settings.model_validate({"STAGE": args.stage, **CHECK_ENV}))
    failed = False

    def line(what: str, address: str, verdict: str, detail: str) -> None:
        out.write(f"  {what:<8} {address:<40} {verdict:<7} {detail}\n")

    try:
        SalesmanagoGateway(client).has_contact(config, str(config.owner), action=CHECK_ACTION)
        line("API v2", config.endpoint, "ok", "credentials and owner accepted (contact/hasContact)")
    except BridgeError as exc:
        failed = True
        line("API v2", config.endpoint, "FAILED", f"[{exc.error_type}] {exc.describe()}")

    listed: CatalogList | None = None
    if config.products_api_key is None:
        line(
            "API v3",
            config.products_endpoint,
            "skipped",
            "no products_api_key: no products action (upsert, stock, price) can work",
        )
    else:
        try:
            listed = list_catalogs(client, config)
            count = len(listed.catalogs)
            line("API v3", config.products_endpoint, "ok", f"API key accepted, {count} catalog(s)")
        except BridgeError as exc:
            failed = True
            line("API v3", config.products_endpoint, "FAILED", f"[{exc.error_type}] {exc.describe()}")

    if not config.catalog_id:
        line("catalog", "-", "skipped", "no catalog_id: no products action (upsert, stock, price) can work")
    elif listed is None:
        line("catalog", config.catalog_id, "skipped", "not checked: API v3 did not answer")
    else:
        found = listed.find(config.catalog_id)
        if found is None:
            failed = True
            known = ", ".join(c.catalog_id for c in listed.catalogs) or "none"
            line("catalog", config.catalog_id, "FAILED", f"not among the account's catalogs ({known})")
        else:
            detail = f"found: {found.name} (location {found.location})"
            if config.location and found.location and config.location != found.location:
                detail += (
                    f"; note: the group's event location '{config.location}' differs, events will not link"
                )
            line("catalog", config.catalog_id, "ok", detail)
    out.write("every check passed\n" if not failed else "some checks FAILED\n")
    return EXIT_FAILED_ITEMS if failed else EXIT_OK


def run_check_index(args: argparse.Namespace) -> int:
    """Stage-wide: every API key index entry against the groups' api_key_ids."""
    if args.groups_file:
        raise UsageError("--groups-file needs a group: the API key index lives in SSM")
    aws = AwsContext.from_args(args)
    settings = _settings(aws.stage)
    ssm = aws.client("ssm")
    out = sys.stdout
    found = drift(ssm, settings)
    out.write(f"API key index of stage {aws.stage} ({settings.parameter_prefix}/api-keys/)\n")
    if not found:
        out.write("  every entry matches the groups' api_key_ids\n")
        return EXIT_OK
    for item in found:
        out.write(f"  DRIFT {item.describe()}\n")
    if not args.repair:
        out.write(f"{len(found)} entries differ: `bridge groups check --repair` rewrites them\n")
        return EXIT_FAILED_ITEMS
    _report_index(out, sync_index(ssm, settings))
    out.write(f"repaired {len(found)} entries\n")
    return EXIT_OK
