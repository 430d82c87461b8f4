"""Offline validation of commands with the layer's own models, as the functions will validate them.

With a groups file, each group must exist and unknown fields must be routed by the group's field
map (as in production). Without one, unknown contact and event fields are warnings: the stage's
group configs may map them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bridge_cli.errors import UsageError
from bridge_cli.inputs import SourceLine
from salesmanago_bridge.commands import DATA_MODELS, Action, CommandEnvelope
from salesmanago_bridge.errors import BridgeError, FieldProblem
from salesmanago_bridge.groups import FileGroupStore, GroupConfig

# SQS, SNS and EventBridge each take at most 256 KiB in one message; 1 KiB stays free for
# EventBridge's source and detail-type, which count against the same limit.
MAX_MESSAGE_BYTES = 262_144 - 1024
ID_PREFIX_MAX = 120
TOP_PROBLEMS = 3
MAX_LISTED_LINES = 10


@dataclass(frozen=True)
class Rejection:
    error_type: str
    message: str
    details: tuple[FieldProblem, ...] = ()

    @classmethod
    def from_error(cls, error: BridgeError) -> Rejection:
        return cls(str(error.error_type), error.message, tuple(error.details))

    def as_dict(self) -> dict[str, Any]:
        return {
            "error_type": self.error_type,
            "error": self.message,
            "details": [d.as_dict() for d in self.details],
        }


@dataclass(frozen=True)
class Verdict:
    line: SourceLine
    body: dict[str, Any] | None = None  # the command to send: action, group_key, data, id
    text: str | None = None  # ``body`` as the message text
    rejection: Rejection | None = None
    warnings: tuple[str, ...] = ()


def id_prefix_for(path: Path, requested: str | None = None) -> str:
    """The file's part of each derived id: the file name unless ``--id-prefix`` says otherwise."""
    prefix = requested or path.name
    return re.sub(r"[^A-Za-z0-9._-]", "_", prefix)[:ID_PREFIX_MAX] or "line"


def derive_line_id(prefix: str, line: SourceLine) -> str:
    """The same file line always gets the same id, so sending it twice has no second effect."""
    digest = hashlib.sha256(f"{prefix}\n{line.number}\n{line.text}".encode()).hexdigest()[:16]
    return f"{prefix}:{line.number}:{digest}"


def load_groups(path: Path | None) -> FileGroupStore | None:
    """The groups file as the functions read it locally (``SALESMANAGO_GROUPS_FILE``).

    Raises:
        UsageError: the file is missing or is not a JSON object of group configs.
    """
    if path is None:
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such groups file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable JSON file ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: a groups file is a JSON object {{group_key: config}}")
    return FileGroupStore(path)


class Checker:
    """Validates one line at a time and builds the command that ``send`` publishes."""

    def __init__(self, groups: FileGroupStore | None, id_prefix: str) -> None:
        self._groups = groups
        self._id_prefix = id_prefix

    def check(self, line: SourceLine) -> Verdict:
        if line.problem is not None or line.body is None:
            problem = line.problem or "is empty"
            return Verdict(
                line, rejection=Rejection("validation", f"line {problem}", (FieldProblem("line", problem),))
            )
        try:
            envelope = CommandEnvelope.parse(line.body)
            config = self._group(envelope.group_key)
            checked, warnings = self._without_unchecked_fields(envelope, config)
            command = checked.to_command(
                field_map=config.routes_for(checked.known_action) if config else None,
                default_location=config.location if config else None,
            )
        except BridgeError as exc:
            return Verdict(line, rejection=Rejection.from_error(exc))
        body, text = self._message(envelope, line)
        if len(text.encode()) > MAX_MESSAGE_BYTES:
            size = f"{len(text.encode()):,} bytes, more than the {MAX_MESSAGE_BYTES:,} a message may hold"
            return Verdict(
                line, rejection=Rejection("too_large", "command too large", (FieldProblem("body", size),))
            )
        return Verdict(line, body, text, warnings=(*warnings, *command.ignored_fields))

    def build(self, line: SourceLine) -> Verdict:
        """The command of a line that :meth:`check` already accepted, without validating it again."""
        body, text = self._message(CommandEnvelope.parse(line.body), line)
        return Verdict(line, body, text)

    def _message(self, envelope: CommandEnvelope, line: SourceLine) -> tuple[dict[str, Any], str]:
        body = {
            "action": str(envelope.action),
            "group_key": envelope.group_key,
            "data": envelope.data,
            "id": envelope.id or derive_line_id(self._id_prefix, line),
        }
        return body, json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    def _group(self, group_key: str) -> GroupConfig | None:
        return None if self._groups is None else self._groups.get(group_key)

    @staticmethod
    def _without_unchecked_fields(
        envelope: CommandEnvelope, config: GroupConfig | None
    ) -> tuple[CommandEnvelope, tuple[str, ...]]:
        """Without a group config, set aside contact and event fields no model knows (warnings)."""
        action = envelope.action
        if config is not None or action is Action.PRODUCTS_UPSERT or not isinstance(envelope.data, dict):
            return envelope, ()
        known = DATA_MODELS[envelope.known_action].model_fields
        unknown = tuple(f"data.{str(key)[:64]}" for key in envelope.data if key not in known)
        if not unknown:
            return envelope, ()
        kept = {key: value for key, value in envelope.data.items() if key in known}
        return envelope.model_copy(update={"data": kept}), unknown


@dataclass
class Report:
    """What a validation pass found, for the summary and the exit code."""

    lines: int = 0
    valid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    problems: Counter[tuple[str, str]] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    warning_lines: int = 0
    reused_ids: list[int] = field(default_factory=list)
    _seen_ids: set[int] = field(default_factory=set, repr=False)

    @property
    def rejected(self) -> int:
        return self.lines - self.valid

    def add(self, verdict: Verdict) -> None:
        self.lines += 1
        if verdict.rejection is not None:
            rejection = verdict.rejection
            self.reasons[rejection.error_type] += 1
            for detail in rejection.details or (FieldProblem("", rejection.message),):
                self.problems[(rejection.error_type, f"{detail.field}: {detail.problem}".lstrip(": "))] += 1
            return
        self.valid += 1
        if verdict.warnings:
            self.warning_lines += 1
            self.warnings.update(verdict.warnings)
        explicit = verdict.line.body.get("id") if isinstance(verdict.line.body, dict) else None
        if explicit is not None:
            key = hash(str(explicit).strip())
            if key in self._seen_ids:
                self.reused_ids.append(verdict.line.number)
            self._seen_ids.add(key)

    def write_summary(self, out: TextIO, source: str) -> None:
        out.write(f"{source}: {self.lines:,} commands, {self.valid:,} valid, {self.rejected:,} rejected\n")
        if self.reasons:
            out.write("rejected by reason:\n")
            for reason, count in self.reasons.most_common():
                out.write(f"  {reason:<22} {count:>8,}\n")
                examples = [(p, n) for (r, p), n in self.problems.most_common() if r == reason]
                for problem, n in examples[:TOP_PROBLEMS]:
                    out.write(f"      {n:>8,} x {problem}\n")
        if self.warnings:
            out.write(f"warnings ({self.warning_lines:,} valid lines):\n")
            for name, count in self.warnings.most_common():
                if name.startswith("data."):
                    why = "not in the contract; no --groups-file to check a field map"
                else:
                    why = "not a product field and not mapped: the bridge ignores it"
                out.write(f"  {name:<30} {count:>8,} x {why}\n")
        if self.reused_ids:
            listed = ", ".join(str(n) for n in self.reused_ids[:MAX_LISTED_LINES])
            more = " …" if len(self.reused_ids) > MAX_LISTED_LINES else ""
            out.write(
                f"warning: {len(self.reused_ids):,} lines reuse the id of an earlier line "
                f"(lines {listed}{more}); "
                "the bridge applies an event id only once\n"
            )


class RejectsFile:
    """Rejected lines with their reasons, one JSON object a line; created on the first rejection."""

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        self.count = 0
        self._append = append
        self._handle: TextIO | None = None

    def write(self, verdict: Verdict) -> None:
        assert verdict.rejection is not None
        if self._handle is None:
            self._handle = self.path.open("a" if self._append else "w", encoding="utf-8")
        record = {"line": verdict.line.number, **verdict.rejection.as_dict(), "input": verdict.line.text}
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def rejects_path(source: Path, requested: Path | None) -> Path:
    return requested or source.with_name(f"{source.stem}.rejected.jsonl")
