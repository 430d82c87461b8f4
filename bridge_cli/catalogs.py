"""bridge catalogs: find or create the product catalog a tenant's products go to (API v3).

A new tenant needs a catalog id and its location in its group config; `list` shows what the account
has, `create` makes one. Neither changes the group config: the output says what to put there.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from bridge_cli.aws import add_aws_options
from bridge_cli.errors import EXIT_FAILED_ITEMS, EXIT_OK, UsageError
from bridge_cli.groups import CHECK_ENV, _check_key, _load_for_check
from bridge_cli.parsers import show_help, subcommand
from salesmanago_bridge.errors import BridgeError, GroupConfigError, ValidationFailedError
from salesmanago_bridge.groups import GroupConfig
from salesmanago_bridge.settings import Settings

LIST_EXAMPLES = """\
examples:
  bridge catalogs list --group shop-pl --stage prod
  bridge catalogs list --group demo-shop --groups-file local/groups.sample.json   # against make sandbox
"""
CREATE_EXAMPLES = """\
example:
  bridge catalogs create --group shop-pl --name "Shop PL" --currency PLN --location shop_pl --stage prod

The location must match ^[a-zA-Z_][a-zA-Z0-9_]{2,254}$ (SALESmanago's rule for catalogs): events
link to the catalog's products only when their location equals it.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "catalogs",
        help="list or create a group's product catalogs (API v3)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda args: show_help(parser))
    commands = parser.add_subparsers(dest="catalogs_command", metavar="{list,create}")
    listing = _subparser(commands, "list", "the account's catalogs and its limit", LIST_EXAMPLES)
    listing.set_defaults(handler=run_list)
    create = _subparser(commands, "create", "create a catalog (v3 catalogUpsert)", CREATE_EXAMPLES)
    create.add_argument("--name", required=True, help="the catalog's name")
    create.add_argument("--currency", required=True, help="ISO 4217 code, e.g. PLN")
    create.add_argument("--location", required=True, help="the catalog's location (events must use it)")
    create.add_argument("--default", action="store_true", help="make it the account's default catalog")
    create.set_defaults(handler=run_create)


def _subparser(commands: Any, name: str, summary: str, examples: str) -> argparse.ArgumentParser:
    parser = subcommand(commands, "catalogs", name, summary, examples)
    parser.add_argument("--group", required=True, help="the group_key whose account to use")
    parser.add_argument("--groups-file", type=Path, help="read the config from this file instead of SSM")
    add_aws_options(parser)
    return parser


def _group(args: argparse.Namespace) -> GroupConfig | None:
    """The group's config, or None after printing why it is unusable."""
    group = _check_key(args.group)
    try:
        _, config = _load_for_check(args, group)
    except GroupConfigError as exc:
        sys.stdout.write(f"group {group}: the config is invalid:\n")
        for detail in exc.details:
            sys.stdout.write(f"  {detail.field}: {detail.problem}\n")
        return None
    if config.products_api_key is None:
        raise UsageError(f"group {group} has no products_api_key: API v3 cannot be called")
    return config


def _client(args: argparse.Namespace) -> Any:
    from salesmanago_bridge.client import SalesmanagoClient
    from salesmanago_bridge.observability import logger

    logger.setLevel(logging.WARNING)  # the client's retry lines would interleave with the report
    return SalesmanagoClient(Settings.model_validate({"STAGE": args.stage, **CHECK_ENV}))


def run_list(args: argparse.Namespace) -> int:
    from salesmanago_bridge.catalogs import list_catalogs

    config = _group(args)
    if config is None:
        return EXIT_FAILED_ITEMS
    out = sys.stdout
    try:
        listing = list_catalogs(_client(args), config)
    except BridgeError as exc:
        out.write(f"catalog list FAILED: [{exc.error_type}] {exc.describe()}\n")
        return EXIT_FAILED_ITEMS
    limit = "" if listing.max_catalogs is None else f" of at most {listing.max_catalogs}"
    out.write(f"group {args.group}: {len(listing.catalogs)} catalog(s){limit}\n")
    for catalog in listing.catalogs:
        marks = []
        if catalog.catalog_id == config.catalog_id:
            marks.append("the group's catalog_id")
            if config.location and catalog.location != config.location:
                marks.append("the group's location differs: its events will not link to these products")
        out.write(
            f"  {catalog.catalog_id:<38} {catalog.name or '-':<24} {catalog.currency or '-':<4} "
            f"location {catalog.location or '-'}{'  <- ' + '; '.join(marks) if marks else ''}\n"
        )
    if config.catalog_id and listing.find(config.catalog_id) is None:
        out.write(f"the group's catalog_id {config.catalog_id} is not among them\n")
        return EXIT_FAILED_ITEMS
    return EXIT_OK


def run_create(args: argparse.Namespace) -> int:
    from salesmanago_bridge.catalogs import NewCatalog, create_catalog

    try:
        catalog = NewCatalog.parse(
            name=args.name, currency=args.currency, location=args.location, set_as_default=args.default
        )
    except ValidationFailedError as exc:
        raise UsageError(
            "invalid catalog: " + "; ".join(f"--{d.field.replace('_', '-')} {d.problem}" for d in exc.details)
        ) from None
    config = _group(args)
    if config is None:
        return EXIT_FAILED_ITEMS
    out = sys.stdout
    try:
        catalog_id = create_catalog(_client(args), config, catalog)
    except BridgeError as exc:
        out.write(f"catalog not created: [{exc.error_type}] {exc.describe()}\n")
        return EXIT_FAILED_ITEMS
    out.write(
        f"created catalog {catalog_id} (location {catalog.location})\n"
        f'next: set "catalog_id": "{catalog_id}" and "location": "{catalog.location}" in group '
        f"{args.group}'s config (bridge groups put {args.group} --file ... --overwrite)\n"
    )
    return EXIT_OK
