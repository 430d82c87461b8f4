"""Reading command files: JSON Lines (one command a line) or CSV (one action per file).

CSV: the header row names the ``data`` fields; ``properties.<name>`` columns fill contact
properties; ``tags`` and ``removeTags`` take several values separated by ``|``; a cell starting
with ``[`` or ``{`` is read as JSON (``consentDetails``); columns ``id``, ``group_key`` and
``action`` fill the command itself. For the products actions (``products.upsert``, ``.stock``,
``.price``) each row is one product, and ``id`` is the product's id; in a ``products.price`` file
an empty ``special_price`` cell ends the discount (CSV has no null, and the field is required).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from bridge_cli.errors import UsageError
from salesmanago_bridge.commands import ITEM_LISTS

LIST_SEPARATOR = "|"
LIST_FIELDS = frozenset({"tags", "removeTags"})
# sex: a Literal of ints; quantity: a strict integer. The models take no digit strings there.
INTEGER_FIELDS = frozenset({"sex", "quantity"})
ENVELOPE_COLUMNS = frozenset({"id", "group_key", "action"})
PRODUCTS_ACTIONS = frozenset(str(action) for action in ITEM_LISTS)  # a row is one product
NULL_WHEN_EMPTY = {"products.price": ("special_price",)}  # an empty cell is JSON null


class InputFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@dataclass(frozen=True)
class SourceLine:
    """One command as read from the file, before validation."""

    number: int  # line number in the file (1-based; a CSV header is line 1)
    text: str  # the line as written (CSV: the row as JSON); hashed into the derived id
    body: Any  # the parsed command, defaults applied; None when unreadable
    problem: str | None = None  # why the line could not be read


def detect_format(path: Path, requested: str | None) -> InputFormat:
    if requested:
        return InputFormat(requested)
    return InputFormat.CSV if path.suffix.lower() in (".csv", ".tsv") else InputFormat.JSONL


def open_text(path: Path) -> Any:
    """Open an input file, or stop with a one-line usage error."""
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a command file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None


def count_commands(path: Path, fmt: InputFormat) -> int:
    """How many commands the file holds (non-blank JSONL lines, CSV data rows)."""
    with open_text(path) as handle:
        if fmt is InputFormat.CSV:
            return max(0, sum(1 for _ in csv.reader(handle)) - 1)
        return sum(1 for line in handle if line.strip())


def read_lines(
    path: Path, fmt: InputFormat, *, action: str | None = None, group_key: str | None = None
) -> Iterator[SourceLine]:
    """Every command of the file, with ``--action`` and ``--group-key`` filled in where missing.

    Raises:
        UsageError: the file cannot be read, or a CSV file has no header or no action.
    """
    if fmt is InputFormat.CSV:
        yield from _read_csv(path, action, group_key)
    else:
        yield from _read_jsonl(path, action, group_key)


def _with_defaults(body: dict[str, Any], action: str | None, group_key: str | None) -> dict[str, Any]:
    if action and body.get("action") is None:
        body["action"] = action
    if group_key and body.get("group_key") is None:
        body["group_key"] = group_key
    return body


def _read_jsonl(path: Path, action: str | None, group_key: str | None) -> Iterator[SourceLine]:
    with open_text(path) as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                text = raw.strip()
                if not text:
                    continue
                try:
                    body = json.loads(text)
                except ValueError:
                    yield SourceLine(number, text, None, "is not valid JSON")
                    continue
                if isinstance(body, dict):
                    body = _with_defaults(body, action, group_key)
                yield SourceLine(number, text, body)
        except UnicodeDecodeError:
            raise UsageError(f"{path}: is not UTF-8 text") from None


def _read_csv(path: Path, action: str | None, group_key: str | None) -> Iterator[SourceLine]:
    with open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise UsageError(f"{path}: is not UTF-8 text") from None
        if not action and "action" not in header:
            raise UsageError(f"{path}: a CSV file needs --action (or an 'action' column)")
        if not any(header):
            raise UsageError(f"{path}: the first row must name the fields")
        previous_end = reader.line_num
        for cells in reader:
            number, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            row = dict(zip(header, cells, strict=False))
            text = json.dumps(row, ensure_ascii=False, sort_keys=True)
            if len(cells) != len(header):
                problem = f"has {len(cells)} cells, the header names {len(header)} columns"
                yield SourceLine(number, text, None, problem)
                continue
            yield SourceLine(number, text, _row_to_body(row, action, group_key))


def _cell_value(column: str, cell: str) -> Any:
    if cell[:1] in ("[", "{"):
        try:
            return json.loads(cell)
        except ValueError:
            return cell
    if column in LIST_FIELDS:
        return [part.strip() for part in cell.split(LIST_SEPARATOR) if part.strip()]
    if column in INTEGER_FIELDS and cell.lstrip("-").isdigit():
        return int(cell)
    return cell


def _row_to_body(row: dict[str, str], action: str | None, group_key: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    envelope: dict[str, Any] = {}
    row_action = (row.get("action") or "").strip() or action or ""
    products = row_action in PRODUCTS_ACTIONS
    # In a products file, "id" is the product's; elsewhere it is the command's own id.
    own_columns = ENVELOPE_COLUMNS - {"id"} if products else ENVELOPE_COLUMNS
    for column, raw in row.items():
        cell = raw.strip()
        if not column or not cell:
            continue
        if column in own_columns:
            envelope[column] = cell
            continue
        head, dot, tail = column.partition(".")
        value = _cell_value(tail or head, cell)
        if dot and tail:
            nested = data.setdefault(head, {})
            if isinstance(nested, dict):
                nested[tail] = value
        else:
            data[column] = value
    for column in NULL_WHEN_EMPTY.get(row_action, ()):
        if column in row:
            data.setdefault(column, None)
    body = _with_defaults(envelope, action, group_key)
    body["data"] = [data] if products else data
    return body
