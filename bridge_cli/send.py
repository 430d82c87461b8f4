"""bridge send: validate a file of commands, then publish it in batches, resumably.

Every line carries an id (its own, or one derived from the file name, the line number and
the line), so a line sent twice, after a crash or a --resume, has no second effect: contacts
and products are upserts, and the bridge applies an event id once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from bridge_cli.aws import AwsContext, add_aws_options, add_stack_option
from bridge_cli.checks import Checker, RejectsFile, Report, id_prefix_for, load_groups, rejects_path
from bridge_cli.errors import EXIT_FAILED_ITEMS, EXIT_OK, CliError, UsageError, explain_aws_error
from bridge_cli.inputs import InputFormat, count_commands, detect_format, read_lines
from bridge_cli.progress import Progress, RateLimiter
from bridge_cli.publishers import (
    MAX_BATCH_ENTRIES,
    Deliverer,
    Entry,
    EntryFailure,
    Publisher,
    batches,
    make_publisher,
)
from bridge_cli.targets import Target, TargetKind, resolve_target
from salesmanago_bridge.commands import Action

BACKFILL_THRESHOLD = 10_000
DEFAULT_CONCURRENCY = 4
STATE_VERSION = 1
STATE_SAVE_INTERVAL_S = 1.0
EXAMPLES = """\
examples:
  bridge send history.jsonl --stack salesmanago-bridge-prod
  bridge send contacts.csv --action contact.upsert --group-key shop-pl --to backfill --rate 500
  bridge send orders.jsonl --to bus --bus-name shop-events --region eu-central-1
  bridge send history.jsonl --stack salesmanago-bridge-prod --resume   # after an interruption

A file of more than 10,000 commands goes to the backfill queue unless --to says otherwise.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "send",
        help="validate a JSONL or CSV file of commands and publish it (queue, backfill, topic, bus)",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, help="a JSONL or CSV file of commands")
    where = parser.add_argument_group("target")
    where.add_argument(
        "--to",
        choices=[kind.value for kind in TargetKind],
        help="queue (live), backfill (history loads), topic or bus; "
        f"default: backfill above {BACKFILL_THRESHOLD:,} commands, else queue",
    )
    add_stack_option(where)
    where.add_argument("--queue-url", help="send to this queue instead of the stack's")
    where.add_argument("--topic-arn", help="publish to this topic instead of the stack's")
    where.add_argument("--bus-name", help="put events on this bus instead of the stack's")
    content = parser.add_argument_group("content")
    content.add_argument(
        "--format", choices=[f.value for f in InputFormat], help="default: from the extension"
    )
    content.add_argument("--action", choices=[a.value for a in Action], help="for lines without one (CSV)")
    content.add_argument("--group-key", help="for lines without one (CSV)")
    content.add_argument(
        "--groups-file", type=Path, help="check groups and field maps against this groups file"
    )
    content.add_argument("--id-prefix", help="the file's part of derived ids (default: the file name)")
    run = parser.add_argument_group("run")
    run.add_argument("--rate", type=float, help="at most this many commands a second")
    run.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="batches in flight (default: 4)"
    )
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue an interrupted send of this file")
    again.add_argument("--restart", action="store_true", help="forget an interrupted send, start over")
    run.add_argument(
        "--skip-invalid", action="store_true", help="send the valid lines even if some are rejected"
    )
    run.add_argument("--dry-run", action="store_true", help="validate and show the target; send nothing")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    files = parser.add_argument_group("files written")
    files.add_argument("--rejects", type=Path, help="rejected lines (default: FILE_STEM.rejected.jsonl)")
    files.add_argument("--failed-file", type=Path, help="unsent commands (default: FILE_STEM.failed.jsonl)")
    files.add_argument("--state-file", type=Path, help="resume state (default: FILE_STEM.send-state.json)")
    add_aws_options(parser)
    parser.set_defaults(handler=run_send)


@dataclass
class SendState:
    """Where an interrupted send stopped: every line before ``next_line`` is settled."""

    file: str
    fingerprint: str
    target: str
    id_prefix: str
    next_line: int = 1
    sent: int = 0
    failed: int = 0
    version: int = STATE_VERSION

    @classmethod
    def load(cls, path: Path) -> SendState | None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{key: raw[key] for key in cls.__dataclass_fields__})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            raise UsageError(f"{path}: not a resume state this version can read; pass --restart") from None

    def save(self, path: Path) -> None:
        """Atomically, so an interruption while writing never leaves half a state."""
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def file_fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def choose_kind(args: argparse.Namespace, total: int) -> tuple[TargetKind, str | None]:
    if args.to:
        return TargetKind(args.to), None
    if args.topic_arn:
        return TargetKind.TOPIC, None
    if args.bus_name:
        return TargetKind.BUS, None
    if total > BACKFILL_THRESHOLD:
        note = (
            f"{total:,} commands (more than {BACKFILL_THRESHOLD:,}): sending to the backfill queue "
            "(--to queue for the live one)"
        )
        return TargetKind.BACKFILL, note
    return TargetKind.QUEUE, None


def open_state(
    args: argparse.Namespace, path: Path, fingerprint: str, target: Target
) -> tuple[SendState, bool]:
    """The state to run with, and whether it continues an interrupted run."""
    state_path = _state_path(args, path)
    previous = SendState.load(state_path)
    fresh = SendState(
        file=path.name,
        fingerprint=fingerprint,
        target=target.address,
        id_prefix=id_prefix_for(path, args.id_prefix),
    )
    if previous is None:
        if args.resume:
            raise UsageError(
                f"nothing to resume: no interrupted send of {path.name} ({state_path.name} is absent)"
            )
        return fresh, False
    if args.restart:
        return fresh, False
    if not args.resume:
        raise UsageError(
            f"an interrupted send of {path.name} stopped at line {previous.next_line:,} "
            f"({previous.sent:,} sent to {previous.target}): pass --resume to continue, or --restart"
        )
    if previous.fingerprint != fingerprint:
        raise UsageError(
            f"{path.name} changed since the interrupted send: --restart to send it from the start"
        )
    if previous.target != target.address:
        raise UsageError(f"the interrupted send went to {previous.target}: resume it with the same target")
    if args.id_prefix and id_prefix_for(path, args.id_prefix) != previous.id_prefix:
        raise UsageError(f"the interrupted send used --id-prefix {previous.id_prefix}: resume with the same")
    return previous, True


def _state_path(args: argparse.Namespace, path: Path) -> Path:
    return args.state_file or path.with_name(f"{path.stem}.send-state.json")


class FailedFile:
    """Commands that could not be sent, as JSONL that ``bridge send`` takes again (ids kept)."""

    def __init__(self, path: Path, *, append: bool) -> None:
        self.path = path
        self.codes: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self._append = append
        self._handle: TextIO | None = None

    @property
    def count(self) -> int:
        return sum(self.codes.values())

    def write(self, failure: EntryFailure) -> None:
        if self._handle is None:
            self._handle = self.path.open("a" if self._append else "w", encoding="utf-8")
        self._handle.write(failure.entry.text + "\n")
        self.codes[failure.code] += 1
        self.examples.setdefault(failure.code, failure.message)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


class SendRun:
    """The bookkeeping of one send: progress, counts, the resume watermark and the failed file."""

    def __init__(self, state: SendState, state_path: Path, progress: Progress, failed: FailedFile) -> None:
        self.state = state
        self.state_path = state_path
        self.progress = progress
        self.failed = failed
        self._settled: dict[int, tuple[int, int, int]] = {}  # batch sequence → last line, sent, failed
        self._next_seq = 0
        self._saved_at = time.monotonic()

    def settle(self, seq: int, batch: list[Entry], sent: list[Entry], failed: list[EntryFailure]) -> None:
        for failure in failed:
            self.failed.write(failure)
        self.progress.advance(len(batch))
        # The watermark moves only over batches settled without a gap: on --resume, everything
        # after it is sent again (same ids, so no second effect), so only those before it count.
        self._settled[seq] = (batch[-1].ref, len(sent), len(failed))
        while self._next_seq in self._settled:
            last_line, sent_count, failed_count = self._settled.pop(self._next_seq)
            self.state.next_line = last_line + 1
            self.state.sent += sent_count
            self.state.failed += failed_count
            self._next_seq += 1
        if time.monotonic() - self._saved_at >= STATE_SAVE_INTERVAL_S:
            self.save()

    def save(self) -> None:
        self.state.save(self.state_path)
        self._saved_at = time.monotonic()


def run_send(args: argparse.Namespace) -> int:
    path: Path = args.file
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be a positive number of commands a second")
    fmt = detect_format(path, args.format)
    total = count_commands(path, fmt)
    if total == 0:
        raise UsageError(f"{path}: holds no commands")
    out = sys.stdout
    kind, note = choose_kind(args, total)
    aws = AwsContext.from_args(args)
    aws.max_pool_connections = args.concurrency + 2
    target = resolve_target(
        aws,
        kind,
        stack=args.stack,
        queue_url=args.queue_url,
        topic_arn=args.topic_arn,
        bus_name=args.bus_name,
    )
    if note:
        out.write(note + "\n")
    state, resuming = open_state(args, path, file_fingerprint(path), target)
    checker = Checker(load_groups(args.groups_file), state.id_prefix)

    report, rejected, to_send = _validate(args, path, fmt, checker, total, state.next_line if resuming else 1)
    report.write_summary(out, f"{path.name} ({fmt})")
    if report.rejected:
        out.write(f"rejected lines and their reasons: {rejects_path(path, args.rejects)}\n")
        if not args.skip_invalid and not args.dry_run:
            out.write("nothing sent: fix the rejected lines, or pass --skip-invalid to send the valid ones\n")
            return EXIT_FAILED_ITEMS
    if args.dry_run:
        calls = math.ceil(to_send / MAX_BATCH_ENTRIES)
        out.write(
            f"dry run: would send {to_send:,} commands to the {target.describe()} in ≥ {calls:,} calls\n"
        )
        return EXIT_FAILED_ITEMS if report.rejected else EXIT_OK

    publisher = make_publisher(aws.client, target)
    publisher.check()
    if resuming:
        out.write(f"resuming at line {state.next_line:,}: {state.sent:,} commands were sent before\n")
    out.write(f"sending {to_send:,} commands to the {target.describe()}\n")
    out.flush()
    state_path = _state_path(args, path)
    state.save(state_path)
    failed = FailedFile(args.failed_file or path.with_name(f"{path.stem}.failed.jsonl"), append=resuming)
    sent_before = state.sent
    started = time.monotonic()
    with Progress(to_send, "sending", enabled=not args.no_progress) as progress:
        run = SendRun(state, state_path, progress, failed)
        entries = _entries(path, fmt, args, checker, rejected, state.next_line)
        stop = _publish(run, entries, publisher, args.concurrency, RateLimiter(args.rate))
    failed.close()
    run.save()
    elapsed = time.monotonic() - started
    sent_now = state.sent - sent_before
    if stop is not None:
        raise CliError(
            f"{stop}; {sent_now:,} commands sent in this run. Run the same command with --resume to "
            f"continue from line {state.next_line:,}"
        )
    state_path.unlink(missing_ok=True)
    rate = sent_now / elapsed if elapsed > 0 else 0.0
    out.write(f"sent {sent_now:,} commands to the {target.label} in {elapsed:,.1f} s ({rate:,.0f}/s)")
    out.write(f", {state.sent:,} in all\n" if resuming else "\n")
    if failed.count:
        out.write(f"{failed.count:,} commands failed (re-sendable as they are: {failed.path}):\n")
        for code, count in failed.codes.most_common():
            out.write(f"  {code:<28} {count:>8,}  {failed.examples.get(code, '')}\n")
    if failed.count or report.rejected:
        return EXIT_FAILED_ITEMS
    return EXIT_OK


def _validate(
    args: argparse.Namespace, path: Path, fmt: InputFormat, checker: Checker, total: int, first_line: int
) -> tuple[Report, set[int], int]:
    """Pass 1: every line through the contract models. Returns (report, rejected lines, to send)."""
    report = Report()
    rejected: set[int] = set()
    to_send = 0
    rejects = RejectsFile(rejects_path(path, args.rejects))
    show = not args.no_progress and sys.stderr.isatty()
    with Progress(total, "validating", enabled=show) as progress:
        for line in read_lines(path, fmt, action=args.action, group_key=args.group_key):
            verdict = checker.check(line)
            report.add(verdict)
            if verdict.rejection is not None:
                rejected.add(line.number)
                rejects.write(verdict)
            elif line.number >= first_line:
                to_send += 1
            progress.advance()
    rejects.close()
    return report, rejected, to_send


def _entries(
    path: Path,
    fmt: InputFormat,
    args: argparse.Namespace,
    checker: Checker,
    rejected: set[int],
    first_line: int,
) -> Iterator[Entry]:
    """Pass 2: the accepted lines from ``first_line`` on, as entries to publish."""
    for line in read_lines(path, fmt, action=args.action, group_key=args.group_key):
        if line.number < first_line or line.number in rejected:
            continue
        verdict = checker.build(line)
        assert verdict.body is not None and verdict.text is not None
        body = verdict.body
        data = body["data"]
        email = data.get("email") if isinstance(data, dict) else None
        yield Entry(
            key=f"line{line.number}",
            text=verdict.text,
            action=body["action"],
            group_key=body["group_key"],
            command_id=body["id"],
            order_key=f"{body['group_key']}:{str(email).strip().lower()}" if email else None,
            ref=line.number,
        )


def _publish(
    run: SendRun, entries: Iterator[Entry], publisher: Publisher, concurrency: int, limiter: RateLimiter
) -> str | None:
    """Publish every batch, ``concurrency`` at a time. Returns why it stopped early, or None."""
    deliverer = Deliverer(publisher)
    in_flight: dict[Future[Any], tuple[int, list[Entry]]] = {}
    stop: str | None = None
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="send")
    try:
        for seq, batch in enumerate(batches(entries, publisher.size_of)):
            limiter.acquire(len(batch))
            in_flight[pool.submit(deliverer.deliver, batch)] = (seq, batch)
            if len(in_flight) >= 2 * concurrency:
                stop = _collect(run, in_flight, publisher.target, FIRST_COMPLETED)
                if stop:
                    break
    except KeyboardInterrupt:
        stop = "interrupted"
    finally:
        # Batches in flight may have reached the target: wait for them and count them.
        try:
            stop = _collect(run, in_flight, publisher.target, ALL_COMPLETED) or stop
        except KeyboardInterrupt:
            stop = "interrupted"
        pool.shutdown(wait=False, cancel_futures=True)
    return stop


def _collect(
    run: SendRun, in_flight: dict[Future[Any], tuple[int, list[Entry]]], target: Target, when: str
) -> str | None:
    if not in_flight:
        return None
    done, _ = wait(list(in_flight), return_when=when)
    stop: str | None = None
    for future in done:
        seq, batch = in_flight.pop(future)
        try:
            sent, failed = future.result()
        except (ClientError, BotoCoreError) as exc:
            stop = stop or str(explain_aws_error(exc, f"{target.label} {target.address}"))
            continue
        except KeyboardInterrupt:
            stop = "interrupted"
            continue
        run.settle(seq, batch, sent, failed)
    return stop
