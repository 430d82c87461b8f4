"""bridge validate: check a JSONL or CSV file of commands offline, as the functions would."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bridge_cli.aws import add_aws_options
from bridge_cli.checks import Checker, RejectsFile, Report, id_prefix_for, load_groups, rejects_path
from bridge_cli.errors import EXIT_FAILED_ITEMS, EXIT_OK, UsageError
from bridge_cli.inputs import InputFormat, count_commands, detect_format, read_lines
from bridge_cli.progress import Progress
from salesmanago_bridge.commands import Action

EXAMPLES = """\
examples:
  bridge validate history.jsonl
  bridge validate history.jsonl --groups-file groups.json
  bridge validate contacts.csv --action contact.upsert --group-key shop-pl

Exit 0 when every line is valid, 1 when some are rejected (they are written, with their reasons,
to FILE_STEM.rejected.jsonl), 2 on a usage error.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a JSONL or CSV file of commands against the contract (offline)",
        description=__doc__
        + "\nWith --groups-file, each group must exist and unknown fields must be in its field map;"
        " without one, unknown contact and event fields are warnings.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, help="a JSONL or CSV file of commands")
    parser.add_argument("--groups-file", type=Path, help="group configs {group_key: config} to check against")
    parser.add_argument(
        "--format", choices=[f.value for f in InputFormat], help="default: from the extension"
    )
    parser.add_argument("--action", choices=[a.value for a in Action], help="for lines without one (CSV)")
    parser.add_argument("--group-key", help="for lines without one (CSV)")
    parser.add_argument(
        "--rejects", type=Path, help="where to write rejected lines (default: FILE_STEM.rejected.jsonl)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_aws_options(parser)
    parser.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    path: Path = args.file
    fmt = detect_format(path, args.format)
    total = count_commands(path, fmt)
    if total == 0:
        raise UsageError(f"{path}: holds no commands")
    checker = Checker(load_groups(args.groups_file), id_prefix_for(path))
    report = Report()
    rejects = RejectsFile(rejects_path(path, args.rejects))
    show = not args.no_progress and sys.stderr.isatty()
    try:
        with Progress(total, "validating", enabled=show) as progress:
            for line in read_lines(path, fmt, action=args.action, group_key=args.group_key):
                verdict = checker.check(line)
                report.add(verdict)
                if verdict.rejection is not None:
                    rejects.write(verdict)
                progress.advance()
    finally:
        rejects.close()
    report.write_summary(sys.stdout, f"{path.name} ({fmt})")
    if rejects.count:
        sys.stdout.write(f"rejected lines and their reasons: {rejects.path}\n")
        return EXIT_FAILED_ITEMS
    return EXIT_OK
