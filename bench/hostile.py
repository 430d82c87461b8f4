"""make bench (or make bench-hostile alone): CPU per KB of the worst hostile input of each class.

    python -m bench.hostile [--repeats 5] [--no-write]

Each class builds its worst body of a given size (10 KB and 100 KB), sends it through the SQS
consumer (one record) and the API (one request), in this process, and reports the CPU
(``time.process_time()``, the least of the repeats) per KB of the body, and the ratio of the
100 KB figure to the 10 KB one. Work linear in the body gives a ratio near 1, quadratic work
about 10; an invocation's fixed cost (about 0.3 ms, ``cpu_ms_smallest_body`` in the JSON) weighs
more at 10 KB, so work that barely grows shows well under 1. Reported, never asserted.
No input here reaches SALESmanago: each is refused before any request (the group's host is never
contacted).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TMP = BENCH / ".tmp" / "hostile"
RESULTS = BENCH / "hostile.json"
README = BENCH / "README.md"
TABLE_BEGIN = "<!-- bench:hostile:begin -->"
TABLE_END = "<!-- bench:hostile:end -->"
SIZES_KB = (10, 100)
BASE_BYTES = 300  # the smallest body of each class: an invocation's fixed cost, reported beside
REPEATS = 25
EMAIL = "hostile@customer.example.com"
GROUP = {
    "client_id": "bench-client",
    "api_secret": "bench-secret",
    "owner": "owner@shop.example.com",
    "endpoint": "https://app3.salesmanago.pl",  # never contacted: every input is refused first
    "api_key_ids": ["bench-key"],
}


def _pad(template: str, size: int, fill: Callable[[int], str]) -> str:
    """``template`` with its one ``{}`` filled so the text is ``size`` bytes (ASCII throughout)."""
    room = size - len(template.encode()) + 2
    return template.replace("{}", fill(max(room, 1)))


def _contact(field: str) -> str:
    return (
        '{"action": "contact.upsert", "group_key": "bench", "data": {"email": "'
        + EMAIL
        + '", '
        + field
        + "}}"
    )


def _event(date: str) -> str:
    return (
        '{"action": "event.create", "group_key": "bench", "data": {"email": "'
        + EMAIL
        + '", "contactExtEventType": "PURCHASE", "date": '
        + date
        + "}}"
    )


# Each class's worst body of ``size`` bytes: the shape that costs the most per byte.
CLASSES: dict[str, Callable[[int], str]] = {
    # an unknown key of e-mail characters with no @: the worst text for an e-mail scan
    "huge key": lambda size: _pad(_contact('"{}": 1'), size, lambda n: "a" * n),
    # the same beside group_key and data: refused by the envelope's validation, before any tenant
    "huge envelope key": lambda size: _pad(
        '{"action": "contact.upsert", "group_key": "bench", "{}": 1, "data": {"email": "' + EMAIL + '"}}',
        size,
        lambda n: "a" * n,
    ),
    # a key under properties, reported with its path by validation
    "huge property key": lambda size: _pad(_contact('"properties": {"{}": 1}'), size, lambda n: "a" * n),
    # a value far over its field's limit, of address characters around one @
    "huge value": lambda size: _pad(
        _contact('"name": "{}"'), size, lambda n: "a" * (n // 2) + "@" + "b" * (n - n // 2 - 1)
    ),
    "deep nesting": lambda size: _pad(
        _contact('"tags": {}'), size, lambda n: "[" * (n // 2) + "]" * (n // 2)
    ),
    "huge number": lambda size: _pad(_event("{}"), size, lambda n: "7" * n),
    "non-finite number": lambda size: _pad(_event("{}"), size, lambda n: "1" * max(n - 4, 1) + "e400"),
    # a name of lone surrogates (JSON escapes): the codec falls back to the json module
    "lone surrogates": lambda size: _pad(_contact('"name": "{}"'), size, lambda n: "\\ud800" * (n // 6)),
    "control characters": lambda size: _pad(_contact('"name": "{}"'), size, lambda n: "\\u0001" * (n // 6)),
}


def environment() -> None:
    """What the handlers read (template.yaml Globals): the local groups file, no AWS, INFO logs."""
    TMP.mkdir(parents=True, exist_ok=True)
    groups_file = TMP / "groups.json"
    groups_file.write_text(json.dumps({"bench": GROUP}))
    os.environ.update(
        STAGE="bench",
        SALESMANAGO_GROUPS_FILE=str(groups_file),
        POWERTOOLS_SERVICE_NAME="salesmanago-bridge",
        POWERTOOLS_METRICS_NAMESPACE="SalesmanagoBridge",
        POWERTOOLS_LOG_LEVEL="INFO",
        POWERTOOLS_TRACE_DISABLED="true",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - never used: nothing reaches AWS
        AWS_DEFAULT_REGION="eu-central-1",
    )
    for key in ("DEAD_LETTER_QUEUE_URL", "IDEMPOTENCY_TABLE_NAME"):
        os.environ.pop(key, None)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Log lines go to /dev/null (still formatted and written: that CPU is counted).

    Powertools' handler keeps the ``sys.stdout`` it found when the layer was imported, so the
    layer is imported in here, and every measurement runs in here.
    """
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


class Target:
    """One handler and how a hostile body reaches it."""

    def __init__(self) -> None:
        from bench.memory_probe import Context
        from local.api_server import proxy_event
        from local.runner import load_handler

        self._sqs = load_handler("sqs_consumer").lambda_handler
        self._api = load_handler("api").lambda_handler
        self._proxy_event = proxy_event
        self._context = Context

    def sqs(self, text: str) -> str:
        record = {
            "messageId": "hostile-1",
            "receiptHandle": "r",
            "body": text,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764095400000"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:commands",
        }
        result = self._sqs({"Records": [record]}, self._context())
        return "handed back" if result["batchItemFailures"] else "parked"

    def api(self, text: str) -> str:
        """The same command as a request to its route (the route is the action)."""
        path = "/events" if '"event.create"' in text else "/contacts"
        body = text.replace('"action": "contact.upsert", ', "").replace('"action": "event.create", ', "")
        event = self._proxy_event(
            "POST", path, headers={"Content-Type": "application/json"}, body=body, api_key_id="bench-key"
        )
        return str(self._api(event, self._context())["statusCode"])


def cpu_ms(run: Callable[[str], str], text: str, repeats: int) -> tuple[float, str]:
    """Least CPU milliseconds of ``run(text)`` over the repeats (the least disturbed), and its answer."""
    samples, outcome = [], ""
    for _ in range(repeats):
        started = time.process_time()
        try:
            outcome = run(text)
        except Exception as exc:  # a row, not a lost run: the handler itself failed
            outcome = f"raised {type(exc).__name__}"
        samples.append((time.process_time() - started) * 1000)
    return min(samples), outcome


def measure(repeats: int) -> list[dict[str, Any]]:
    """Per class and handler: the CPU of one invocation per KB of its body, at each size."""
    environment()
    rows = []
    with quiet():
        target = Target()
        for where in ("sqs", "api"):  # the first invocation imports and builds: not counted
            getattr(target, where)(CLASSES["huge key"](BASE_BYTES))
        for name, build in CLASSES.items():
            for where, run in (("sqs", target.sqs), ("api", target.api)):
                base_ms, _ = cpu_ms(run, build(BASE_BYTES), repeats)
                per_kb, outcomes = {}, {}
                for size_kb in SIZES_KB:
                    text = build(size_kb * 1024)
                    millis, outcomes[size_kb] = cpu_ms(run, text, repeats)
                    per_kb[size_kb] = millis / (len(text.encode()) / 1024)
                rows.append(
                    {
                        "class": name,
                        "handler": where,
                        "cpu_ms_smallest_body": round(base_ms, 3),
                        "cpu_ms_per_kb": {f"{k} KB": round(v, 4) for k, v in per_kb.items()},
                        "ratio": round(per_kb[SIZES_KB[-1]] / per_kb[SIZES_KB[0]], 2),
                        "outcome": outcomes[SIZES_KB[-1]],
                    }
                )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    small, large = (f"{k} KB" for k in SIZES_KB)
    lines = [
        f"| hostile input, worst of its class | handler | CPU ms per KB at {small} | at {large} "
        f"| ratio {large} / {small} | outcome |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['class']} | {row['handler']} | {row['cpu_ms_per_kb'][small]:.3f} "
            f"| {row['cpu_ms_per_kb'][large]:.3f} | {row['ratio']:.2f} | {row['outcome']} |"
        )
    return "\n".join(lines)


def update_readme(text: str) -> None:
    content = README.read_text() if README.exists() else ""
    if TABLE_BEGIN not in content or TABLE_END not in content:
        return
    head, rest = content.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    stamp = (
        f"Measured {time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}: `python -m bench.hostile`."
    )
    README.write_text(f"{head}{TABLE_BEGIN}\n{stamp}\n\n{text}\n{TABLE_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--no-write", action="store_true", help="print only; leave hostile.json and README")
    args = parser.parse_args(argv)
    rows = measure(args.repeats)
    text = table(rows)
    sys.stdout.write(text + "\n")
    if not args.no_write:
        RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
        update_readme(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
