"""bridge: backfill history, replay dead letters, manage tenants.

Exit codes: 0 ok · 1 some items failed (a file lists them) · 2 usage error (nothing was done).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge_cli import catalogs, dlq, groups, keys, runner, send, validate
from bridge_cli.errors import EXIT_FAILED_ITEMS, EXIT_USAGE, CliError, explain_aws_error
from salesmanago_bridge.privacy import use_key_loader

DEBUG_ENV = "BRIDGE_DEBUG"
EPILOG = """\
examples:
  bridge validate history.jsonl --groups-file groups.json
  bridge send history.jsonl --stack salesmanago-bridge-prod
  bridge dlq summary --stack salesmanago-bridge-prod
  bridge dlq redrive --stack salesmanago-bridge-prod --error-type auth --dry-run
  bridge groups check shop-pl --stage prod
  bridge catalogs list --group shop-pl --stage prod
  bridge keys rotate a1b2c3d4e5 --overlap 24h --stage prod

`bridge COMMAND --help` describes each command. Every command takes --stage, --region and
--profile. Exit codes: 0 ok, 1 some items failed (a file lists them), 2 usage error.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge",
        description="The operator's command line of the SALESmanago bridge.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    validate.add_parser(commands)
    send.add_parser(commands)
    dlq.add_parser(commands)
    groups.add_parser(commands)
    catalogs.add_parser(commands)
    keys.add_parser(commands)
    runner.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Any = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return int(handler(args))
    except CliError as exc:
        _fail(str(exc))
        return exc.exit_code
    except (ClientError, BotoCoreError) as exc:
        error = explain_aws_error(exc)
        _fail(str(error))
        return error.exit_code
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_FAILED_ITEMS
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        from salesmanago_bridge.observability import scrub

        _fail(
            f"unexpected {type(exc).__name__}: {scrub(str(exc))[:300]} (set {DEBUG_ENV}=1 for the traceback)"
        )
        return EXIT_FAILED_ITEMS
    finally:
        signal.signal(signal.SIGTERM, previous)
        use_key_loader(None)  # a command's pseudonym key (bridge dlq: the stage's) ends with it


def _interrupt(signum: int, frame: Any) -> None:
    # A cancelled CI job or a `kill` ends a command like Ctrl-C: batches in flight settle, state is saved.
    raise KeyboardInterrupt


def _fail(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"bridge: error: {message}\n")


if __name__ == "__main__":
    raise SystemExit(main())
