"""``bridge invoke`` and ``bridge demo``: the local runner and the demo, under the same command."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bridge_cli.aws import add_aws_options
from bridge_cli.errors import UsageError

INVOKE_EXAMPLES = """\
examples:
  bridge invoke sqs_consumer events/sqs_contact_upsert.json --groups-file local/groups.sample.json
  bridge invoke events/sns_event_create.json          # the function follows from the file name

Runs the handler in-process with the environment a deployed function has (STAGE from --stage,
SALESMANAGO_GROUPS_FILE from --groups-file); without a groups file the configs come from SSM.
"""
DEMO_EXAMPLES = "example:\n  bridge demo --verbose\n"


def add_parsers(subparsers: Any) -> None:
    invoke = subparsers.add_parser(
        "invoke",
        help="run one event file through one handler, locally (no Docker)",
        description="bridge invoke: one event through one handler, in-process (the local runner).",
        epilog=INVOKE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    invoke.add_argument("function", nargs="?", help="sqs_consumer, sns_consumer, eventbridge_consumer or api")
    invoke.add_argument("event", type=Path, help="an event file, e.g. events/sqs_contact_upsert.json")
    invoke.add_argument("--groups-file", type=Path, help="group configs (sets SALESMANAGO_GROUPS_FILE)")
    add_aws_options(invoke)
    invoke.set_defaults(handler=run_invoke)
    demo = subparsers.add_parser(
        "demo",
        help="every sample event through its handler, against the built-in SALESmanago sandbox",
        description="bridge demo: the sample events in events/ through their handlers, against the sandbox.",
        epilog=DEMO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--verbose", action="store_true", help="also print the handlers' JSON log lines")
    add_aws_options(demo)
    demo.set_defaults(handler=run_demo)


def _environment(args: argparse.Namespace) -> None:
    """The handlers read their settings from the environment, exactly as in Lambda."""
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    os.environ["STAGE"] = args.stage
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    if args.profile:
        os.environ["AWS_PROFILE"] = args.profile
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    # Settings are read once per process (a cold start); this process read them before the
    # environment above (and the demo's own) was set.
    get_settings.cache_clear()
    get_dispatcher.cache_clear()


def run_invoke(args: argparse.Namespace) -> int:
    from local import runner

    if not args.event.is_file():
        raise UsageError(f"{args.event}: no such event file")
    if args.groups_file:
        if not args.groups_file.is_file():
            raise UsageError(f"{args.groups_file}: no such groups file")
        os.environ["SALESMANAGO_GROUPS_FILE"] = str(args.groups_file.resolve())
    _environment(args)
    argv = [args.function, str(args.event)] if args.function else [str(args.event)]
    try:
        return runner.main(argv)
    except SystemExit as exc:  # the runner's own refusals (unknown function, unknown file name)
        if isinstance(exc.code, str):
            raise UsageError(exc.code) from None
        return int(exc.code or 0)


def run_demo(args: argparse.Namespace) -> int:
    from local import demo

    _environment(args)
    return demo.main(["--verbose"] if args.verbose else [])
