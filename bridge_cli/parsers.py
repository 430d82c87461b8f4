"""Argument-parser pieces the command families share: a subcommand's shape, help for a bare family."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bridge_cli.errors import EXIT_USAGE


def show_help(parser: argparse.ArgumentParser) -> int:
    """What `bridge FAMILY` without a subcommand does: its help on stderr, a usage exit."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def subcommand(commands: Any, family: str, name: str, summary: str, examples: str) -> argparse.ArgumentParser:
    """`bridge FAMILY NAME`, described by ``summary`` and ending its help with ``examples``."""
    return commands.add_parser(
        name,
        help=summary,
        description=f"bridge {family} {name}: {summary}.",
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
