"""bridge dlq: count, read and replay what the bridge dead-lettered.

Reading takes each message out of sight for a while (the visibility timeout) and gives it back at
the end; only redrive deletes, and only a message whose command was re-sent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from bridge_cli.aws import AwsContext, add_aws_options, add_stack_option
from bridge_cli.dead_letters import DeadLetter, parse_message
from bridge_cli.errors import EXIT_FAILED_ITEMS, EXIT_OK, CliError, UsageError, explain_aws_error
from bridge_cli.parsers import show_help, subcommand
from bridge_cli.progress import Progress
from bridge_cli.pseudonyms import use_stage_key
from bridge_cli.publishers import Deliverer, Entry, batches, make_publisher
from bridge_cli.targets import TargetKind, dead_letter_queues, resolve_target
from salesmanago_bridge.commands import Action
from salesmanago_bridge.observability import pseudonymize, scrub

RECEIVE_BATCH = 10
SCAN_VISIBILITY_S = 120  # summary and show: long enough to read the queue once
REDRIVE_VISIBILITY_S = 900  # redrive: long enough to re-send what was read
MAX_EMPTY_RECEIVES = 3
DEFAULT_SHOW_LIMIT = 10
DEFAULT_SCAN_LIMIT = 100_000
DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
UPSERT = str(Action.CONTACT_UPSERT)
DELETE = str(Action.CONTACT_DELETE)

SUMMARY_EXAMPLES = """\
examples:
  bridge dlq summary --stack salesmanago-bridge-prod
  bridge dlq summary --stage prod --error-type auth
"""
SHOW_EXAMPLES = """\
examples:
  bridge dlq show --stack salesmanago-bridge-prod --limit 5
  bridge dlq show --error-type validation --action contact.upsert --json
  bridge dlq show --limit 1 --unmask        # personal data in clear: mind where it goes
"""
REDRIVE_EXAMPLES = """\
examples:
  bridge dlq redrive --stack salesmanago-bridge-prod --error-type auth --dry-run
  bridge dlq redrive --error-type throttled --error-type unavailable --older-than 2h
  bridge dlq redrive --action contact.upsert --group shop-pl --force

A contact.upsert whose e-mail has a later contact.delete among the dead letters is skipped (and
listed), so that a replay does not bring back an erased contact; --force sends it anyway.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dlq",
        help="count, read and replay dead letters (summary, show, redrive)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  bridge dlq summary --stack salesmanago-bridge-prod\n",
    )
    commands = parser.add_subparsers(dest="dlq_command", metavar="{summary,show,redrive}")
    parser.set_defaults(handler=lambda args: show_help(parser))
    summary = _subparser(
        commands, "summary", "counts by queue, error type, action, group and day", SUMMARY_EXAMPLES
    )
    summary.set_defaults(handler=run_summary)
    show = _subparser(
        commands, "show", "the messages with their reasons (personal data masked)", SHOW_EXAMPLES
    )
    show.add_argument("--limit", type=int, default=DEFAULT_SHOW_LIMIT, help="at most this many (default: 10)")
    show.add_argument("--unmask", action="store_true", help="show e-mails and other personal data in clear")
    show.add_argument("--json", action="store_true", help="one JSON object a line")
    show.set_defaults(handler=run_show)
    redrive = _subparser(commands, "redrive", "re-send the commands to the commands queue", REDRIVE_EXAMPLES)
    redrive.add_argument("--dry-run", action="store_true", help="show what would be re-sent; change nothing")
    redrive.add_argument("--force", action="store_true", help="also re-send upserts of erased contacts")
    redrive.add_argument(
        "--to",
        choices=[TargetKind.QUEUE.value, TargetKind.BACKFILL.value],
        default=TargetKind.QUEUE.value,
        help="the stack's commands queue (default) or backfill queue",
    )
    redrive.add_argument("--target-queue-url", help="re-send to this queue instead of the stack's")
    redrive.add_argument("--failed-file", type=Path, help="where to list what could not be re-sent")
    redrive.add_argument("--no-progress", action="store_true", help="no progress bar")
    redrive.set_defaults(handler=run_redrive)


def _subparser(commands: Any, name: str, summary: str, examples: str) -> argparse.ArgumentParser:
    parser = subcommand(commands, "dlq", name, summary, examples)
    where = parser.add_argument_group("queues")
    add_stack_option(where)
    where.add_argument(
        "--dlq-url",
        action="append",
        help="read this queue instead of the stack's dead-letter and failure queues (repeatable)",
    )
    where.add_argument("--max-messages", type=int, default=DEFAULT_SCAN_LIMIT, help=argparse.SUPPRESS)
    filters = parser.add_argument_group("filters (repeatable; a message must match each one given)")
    filters.add_argument(
        "--error-type", action="append", help="e.g. auth, validation, eventbridge:SDK_CLIENT_ERROR"
    )
    filters.add_argument("--action", action="append", choices=[a.value for a in Action])
    filters.add_argument("--group", action="append", help="group_key")
    filters.add_argument("--older-than", help="first failed before: 30m, 12h, 7d, 2w, or a date 2025-06-01")
    add_aws_options(parser)
    return parser


# ---------------------------------------------------------------- filters


def parse_duration(value: str) -> timedelta | None:
    """``30m``, ``12h``, ``7d``, ``2w`` (or ``0``) as a timedelta; None when it is not one."""
    text = value.strip().lower()
    if text == "0":
        return timedelta(0)
    match = DURATION.match(text)
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))}) if match else None


def parse_older_than(value: str | None, now: datetime) -> datetime | None:
    """The cutoff for ``--older-than``: a duration back from ``now``, or a date-time.

    Raises:
        UsageError: the value is neither.
    """
    if not value:
        return None
    span = parse_duration(value)
    if span is not None:
        return now - span
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(
            f"--older-than '{value}': use 30m, 12h, 7d, 2w or a date such as 2025-06-01"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Filters:
    error_types: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    before: datetime | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, now: datetime | None = None) -> Filters:
        return cls(
            error_types=frozenset(t.lower() for t in args.error_type or ()),
            actions=frozenset(args.action or ()),
            groups=frozenset(args.group or ()),
            before=parse_older_than(args.older_than, now or datetime.now(UTC)),
        )

    def __bool__(self) -> bool:
        return bool(self.error_types or self.actions or self.groups or self.before)

    def match(self, letter: DeadLetter) -> bool:
        if self.error_types and letter.error_type.lower() not in self.error_types:
            return False
        if self.actions and letter.action not in self.actions:
            return False
        if self.groups and letter.group_key not in self.groups:
            return False
        return not (self.before and letter.first_failure_at >= self.before)

    def describe(self) -> str:
        parts = [f"--error-type {t}" for t in sorted(self.error_types)]
        parts += [f"--action {a}" for a in sorted(self.actions)] + [
            f"--group {g}" for g in sorted(self.groups)
        ]
        if self.before:
            parts.append(f"first failed before {self.before:%Y-%m-%d %H:%M} UTC")
        return ", ".join(parts) or "no filter"


# ---------------------------------------------------------------- reading queues


class DeadLetterReader:
    """Receives every message of some queues, keeps them out of sight, and gives them back."""

    def __init__(self, sqs: Any, queues: dict[str, str], visibility_s: int) -> None:
        self.sqs = sqs
        self.queues = queues
        self.visibility_s = visibility_s
        self.counts: dict[str, int] = {}
        self._held: dict[str, DeadLetter] = {}

    def read(self, limit: int, enough: Callable[[list[DeadLetter]], bool] | None = None) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        for name, url in self.queues.items():
            found = self._read_queue(name, url, limit - len(letters), letters, enough)
            self.counts[name] = found
            if len(letters) >= limit or (enough and enough(letters)):
                break
        return letters

    def _read_queue(
        self,
        name: str,
        url: str,
        limit: int,
        letters: list[DeadLetter],
        enough: Callable[[list[DeadLetter]], bool] | None,
    ) -> int:
        resource = f"queue {url}"
        try:
            reply = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )
            expected = int(reply["Attributes"].get("ApproximateNumberOfMessages", 0))
            found, empty = 0, 0
            while found < limit:
                reply = self.sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=min(RECEIVE_BATCH, limit - found),
                    VisibilityTimeout=self.visibility_s,
                    # Long polling asks every SQS server; once the count is reached, a short poll suffices.
                    WaitTimeSeconds=1 if found < expected else 0,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                messages = reply.get("Messages") or []
                if not messages:
                    empty += 1
                    if found >= expected or empty >= MAX_EMPTY_RECEIVES:
                        break
                    continue
                for message in messages:
                    if message["MessageId"] in self._held:
                        continue  # a message seen twice (its visibility ran out): count it once
                    letter = parse_message(name, url, message)
                    self._held[letter.message_id] = letter
                    letters.append(letter)
                    found += 1
                if enough and enough(letters):
                    break
        except (ClientError, BotoCoreError) as exc:
            self.release()
            raise explain_aws_error(exc, resource) from None
        return found

    def forget(self, letter: DeadLetter) -> None:
        self._held.pop(letter.message_id, None)

    def release(self) -> None:
        """Make every message still held visible again at once (best effort)."""
        held, self._held = list(self._held.values()), {}
        for url in {letter.queue_url for letter in held}:
            mine = [letter for letter in held if letter.queue_url == url]
            for start in range(0, len(mine), RECEIVE_BATCH):
                entries = [
                    {"Id": str(n), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                    for n, letter in enumerate(mine[start : start + RECEIVE_BATCH])
                ]
                # On failure they come back by themselves when the visibility timeout ends.
                with contextlib.suppress(ClientError, BotoCoreError):
                    self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)

    def delete(self, letters: list[DeadLetter]) -> list[DeadLetter]:
        """Delete re-sent messages; returns the ones SQS would not delete."""
        kept: list[DeadLetter] = []
        for url in {letter.queue_url for letter in letters}:
            mine = [letter for letter in letters if letter.queue_url == url]
            for start in range(0, len(mine), RECEIVE_BATCH):
                chunk = mine[start : start + RECEIVE_BATCH]
                entries = [
                    {"Id": str(n), "ReceiptHandle": letter.receipt_handle} for n, letter in enumerate(chunk)
                ]
                try:
                    reply = self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
                    failed = {int(item["Id"]) for item in reply.get("Failed") or []}
                except (ClientError, BotoCoreError):
                    failed = set(range(len(chunk)))
                for n, letter in enumerate(chunk):
                    if n in failed:
                        kept.append(letter)
                    else:
                        self.forget(letter)
        return kept


def _open(args: argparse.Namespace, visibility_s: int) -> tuple[AwsContext, DeadLetterReader, str]:
    aws = AwsContext.from_args(args)
    use_stage_key(aws)  # read only if a pseudonym is shown
    queues = dead_letter_queues(aws, stack=args.stack, queue_urls=args.dlq_url)
    where = "the given queues" if args.dlq_url else f"stack {aws.stack_name(args.stack)}"
    return aws, DeadLetterReader(aws.client("sqs"), queues, visibility_s), where


# ---------------------------------------------------------------- summary


def run_summary(args: argparse.Namespace) -> int:
    filters = Filters.from_args(args)
    _, reader, where = _open(args, SCAN_VISIBILITY_S)
    try:
        letters = reader.read(args.max_messages)
    finally:
        reader.release()
    matching = [letter for letter in letters if filters.match(letter)]
    out = sys.stdout
    out.write(f"dead letters of {where}")
    out.write(f" ({filters.describe()}: {len(matching):,} of {len(letters):,})\n" if filters else "\n")
    _table(
        out, "queue", Counter({name: sum(1 for x in matching if x.queue == name) for name in reader.queues})
    )
    _table(out, "error type", Counter(x.error_type for x in matching))
    _table(out, "action", Counter(x.action or "(unknown)" for x in matching))
    _table(out, "group", Counter(x.group_key or "(unknown)" for x in matching))
    days = Counter(f"{x.first_failure_at:%Y-%m-%d}" for x in matching)
    _table(out, "first failure (UTC day)", days, by_key=True)
    _table(out, "shape", Counter(str(x.shape) for x in matching))
    unreadable = sum(1 for x in matching if x.command is None)
    if unreadable:
        out.write(f"{unreadable:,} messages hold no command that can be replayed (see `bridge dlq show`)\n")
    return EXIT_OK


def _table(out: TextIO, title: str, counts: Counter[str], *, by_key: bool = False) -> None:
    rows = sorted(counts.items()) if by_key else counts.most_common()
    out.write(f"\n{title}\n")
    if not rows:
        out.write("  (none)\n")
    for key, count in rows:
        out.write(f"  {key:<40} {count:>9,}\n")


# ---------------------------------------------------------------- show


def run_show(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    filters = Filters.from_args(args)
    _, reader, _ = _open(args, SCAN_VISIBILITY_S)

    counted = {"seen": 0, "matching": 0}

    def enough(letters: list[DeadLetter]) -> bool:
        counted["matching"] += sum(1 for letter in letters[counted["seen"] :] if filters.match(letter))
        counted["seen"] = len(letters)
        return counted["matching"] >= args.limit

    try:
        letters = reader.read(args.max_messages, enough)
    finally:
        reader.release()
    shown = [letter for letter in letters if filters.match(letter)][: args.limit]
    out = sys.stdout
    for number, letter in enumerate(shown, start=1):
        record = _describe(letter, unmask=args.unmask)
        if args.json:
            out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            continue
        out.write(
            f"#{number} {record['queue']} {record['first_failure_at']} [{record['error_type']}] "
            f"{record['action'] or '?'} group={record['group_key'] or '?'} ({record['shape']}"
            f"{', source ' + record['source'] if record['source'] else ''})\n"
        )
        out.write(f"   message {record['message_id']}\n")
        if record["error_message"]:
            out.write(f"   reason  {record['error_message']}\n")
        if record["command"] is not None:
            out.write(f"   command {json.dumps(record['command'], ensure_ascii=False)}\n")
        else:
            out.write(f"   body    {record['body']}\n")
    if not shown:
        out.write("no dead letters" + (f" match {filters.describe()}" if filters else "") + "\n")
    elif not args.unmask and not args.json:
        out.write(
            "(e-mails pseudonymized as in the logs, other personal data masked; --unmask to see them)\n"
        )
    return EXIT_OK


def _describe(letter: DeadLetter, *, unmask: bool) -> dict[str, Any]:
    body = letter.body if unmask else f"({len(letter.body.encode()):,} bytes, masked)"
    return {
        "queue": letter.queue,
        "message_id": letter.message_id,
        "shape": str(letter.shape),
        "error_type": letter.error_type,
        "error_message": letter.error_message if unmask else scrub(letter.error_message),
        "action": letter.action,
        "group_key": letter.group_key,
        "source": letter.source,
        "first_failure_at": letter.first_failure_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": letter.command if unmask else letter.masked_command(),
        "body": None if letter.command is not None else body,
    }


# ---------------------------------------------------------------- redrive


def erased_upserts(letters: Iterable[DeadLetter]) -> set[str]:
    """Message ids of upserts whose e-mail has a contact.delete at the same time or later."""
    letters = list(letters)
    deleted_at: dict[str, datetime] = {}
    for letter in letters:
        email = letter.email
        if letter.command and letter.command.get("action") == DELETE and email:
            deleted_at[email] = max(deleted_at.get(email, letter.moment), letter.moment)
    return {
        letter.message_id
        for letter in letters
        if letter.command
        and letter.command.get("action") == UPSERT
        and letter.email in deleted_at
        and deleted_at[letter.email] >= letter.moment  # type: ignore[index]
    }


def run_redrive(args: argparse.Namespace) -> int:
    filters = Filters.from_args(args)
    aws, reader, where = _open(args, REDRIVE_VISIBILITY_S)
    target = resolve_target(aws, TargetKind(args.to), stack=args.stack, queue_url=args.target_queue_url)
    out = sys.stdout
    try:
        letters = reader.read(args.max_messages)
        erased = erased_upserts(letters)  # among all the messages, not only the matching ones
        matching = sorted((x for x in letters if filters.match(x)), key=lambda x: x.moment)
        unreadable = [x for x in matching if x.command is None]
        skipped = [] if args.force else [x for x in matching if x.message_id in erased]
        skipped_ids = {x.message_id for x in skipped}
        chosen = [x for x in matching if x.command is not None and x.message_id not in skipped_ids]
        out.write(
            f"{len(letters):,} dead letters in {where}; {len(matching):,} match ({filters.describe()})\n"
        )
        if skipped:
            emails = sorted({pseudonymize(x.email or "") for x in skipped})
            out.write(
                f"skipped {len(skipped):,} contact.upsert of erased contacts (a later contact.delete is "
                f"among the dead letters; --force sends them): {', '.join(emails)}\n"
            )
        if unreadable:
            out.write(f"skipped {len(unreadable):,} messages that hold no command (see `bridge dlq show`)\n")
        if args.dry_run:
            out.write(f"dry run: would re-send {len(chosen):,} commands to the {target.describe()}\n")
            for (error_type, action), count in Counter(
                (x.error_type, x.action) for x in chosen
            ).most_common():
                out.write(f"  {count:>8,}  {error_type:<30} {action}\n")
            return EXIT_OK
        if not chosen:
            out.write("nothing to re-send\n")
            return EXIT_OK
        publisher = make_publisher(aws.client, target)
        publisher.check()
        out.write(f"re-sending {len(chosen):,} commands to the {target.describe()}\n")
        out.flush()
        resent, failures, not_deleted = _redrive(reader, publisher, chosen, not args.no_progress)
    finally:
        reader.release()
    out.write(f"re-sent {resent:,} commands; their dead letters were deleted\n")
    if not_deleted:
        out.write(
            f"{len(not_deleted):,} re-sent messages could not be deleted and are still in their queue "
            "(a second redrive re-sends them with the same id: no second effect)\n"
        )
    if failures:
        path = args.failed_file or Path(f"redrive-failed-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.jsonl")
        with path.open("w", encoding="utf-8") as handle:
            for letter, code, message in failures:
                record = {
                    "queue": letter.queue,
                    "message_id": letter.message_id,
                    "error": code,
                    "message": message,
                }
                handle.write(json.dumps(record) + "\n")
        out.write(f"{len(failures):,} commands could not be re-sent and stay in their queue: {path}\n")
        return EXIT_FAILED_ITEMS
    return EXIT_OK


def _redrive(
    reader: DeadLetterReader, publisher: Any, chosen: list[DeadLetter], show: bool
) -> tuple[int, list[tuple[DeadLetter, str, str]], list[DeadLetter]]:
    """Re-send in batches; delete each message right after its command was accepted."""
    deliverer = Deliverer(publisher)
    entries = [
        Entry(
            key=f"m{n}",
            text=json.dumps(letter.command, ensure_ascii=False, separators=(",", ":")),
            action=str(letter.command["action"]),  # type: ignore[index]
            group_key=str(letter.command["group_key"]),  # type: ignore[index]
            command_id=str(letter.command.get("id") or letter.message_id),  # type: ignore[union-attr]
            order_key=f"{letter.group_key}:{letter.email}" if letter.email else None,
            ref=letter,
        )
        for n, letter in enumerate(chosen)
    ]
    resent = 0
    failures: list[tuple[DeadLetter, str, str]] = []
    not_deleted: list[DeadLetter] = []
    with Progress(len(entries), "re-sending", enabled=show) as progress:
        for batch in batches(entries, publisher.size_of):
            try:
                sent, failed = deliverer.deliver(batch)
            except (ClientError, BotoCoreError) as exc:
                target = publisher.target
                reason = explain_aws_error(exc, f"{target.label} {target.address}")
                raise CliError(
                    f"{reason}; {resent:,} re-sent before that (their dead letters deleted); "
                    "the rest stay in their queues"
                ) from None
            not_deleted += reader.delete([entry.ref for entry in sent])
            resent += len(sent)
            failures += [(f.entry.ref, f.code, f.message) for f in failed]
            progress.advance(len(batch))
    return resent, failures, not_deleted
