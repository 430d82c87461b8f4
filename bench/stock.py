"""Stock updates against full upserts: the same 20,000 products, in SQS invocations of 500 records.

    python -m bench.stock [--products 20000] [--records 500] [--per-record 1] [--no-write]

``make bench-stock`` runs it. One group, the sandbox in this process (no added latency). First the
products are upserted whole (``products.upsert``), then their stock is set (``products.stock``),
then their prices (``products.price``), each as SQS events of ``--records`` records, each record
one command of ``--per-record`` items, through the dispatcher's SQS path. Counted by the sandbox:
requests and request bytes (the bodies as sent, ``Content-Length``). The lower bound of each run is
the sum over invocations of ⌈items ÷ PRODUCT_BATCH_SIZE⌉ (one group, one action). CPU is
``time.process_time()`` of this process (the sandbox's threads included), a ratio between the runs
of the same process, never a limit. The result is written to ``bench/results_stock.json`` and to
the table in bench/README.md between its ``stock`` markers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.workload import _product, group_config, sqs_record

GROUP_KEY = "bench-0"
README = Path(__file__).with_name("README.md")
RESULTS = Path(__file__).with_name("results_stock.json")
TABLE_BEGIN, TABLE_END = "<!-- stock:begin -->", "<!-- stock:end -->"


def invocations(bodies: list[dict[str, Any]], records: int) -> list[dict[str, Any]]:
    """SQS events of ``records`` records each, as the event source mapping delivers them."""
    wrapped = [sqs_record(body, serial) for serial, body in enumerate(bodies)]
    return [{"Records": wrapped[start : start + records]} for start in range(0, len(wrapped), records)]


def commands(action: str, items: list[dict[str, Any]], per_record: int) -> list[dict[str, Any]]:
    return [
        {"action": action, "group_key": GROUP_KEY, "data": items[start : start + per_record]}
        for start in range(0, len(items), per_record)
    ]


def lower_bound(events: list[dict[str, Any]], per_request: int) -> int:
    """Σ over invocations of ⌈items ÷ per_request⌉: one group and one action per run."""
    total = 0
    for event in events:
        items = sum(len(json.loads(record["body"])["data"]) for record in event["Records"])
        total += math.ceil(items / per_request)
    return total


def body_bytes(headers: dict[str, str]) -> int:
    """The request body's size as sent (its Content-Length)."""
    return next(int(value) for key, value in headers.items() if key.lower() == "content-length")


def run(
    name: str, events: list[dict[str, Any]], dispatch: Callable[[dict[str, Any]], Any], sandbox: Any
) -> dict[str, Any]:
    before = len(sandbox.requests)
    cpu, wall = time.process_time(), time.perf_counter()
    statuses: dict[str, int] = {}
    for event in events:
        for outcome in dispatch(event).outcomes:
            statuses[str(outcome.status)] = statuses.get(str(outcome.status), 0) + 1
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sent = sandbox.requests[before:]
    return {
        "run": name,
        "records": sum(len(e["Records"]) for e in events),
        "invocations": len(events),
        "requests": len(sent),
        "bytes": sum(body_bytes(r.headers) for r in sent),
        "paths": sorted({r.path for r in sent}),
        "statuses": statuses,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
    }


def measure(products: int, records: int, per_record: int) -> dict[str, Any]:
    from local.sandbox import Sandbox
    from salesmanago_bridge.client import SalesmanagoClient
    from salesmanago_bridge.deadletters import DeadLetterSink
    from salesmanago_bridge.dispatch import Dispatcher
    from salesmanago_bridge.groups import FileGroupStore
    from salesmanago_bridge.settings import Settings

    rng = random.Random(20)
    ids = [f"STK-{n:05d}" for n in range(products)]
    full = [_product(rng, product_id) for product_id in ids]
    stock = [{"id": product_id, "quantity": rng.randrange(500)} for product_id in ids]
    prices = [
        {"id": product_id, "price": 199.0, "special_price": None if n % 3 else 149.5}
        for n, product_id in enumerate(ids)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        groups_file = Path(tmp) / "groups.json"
        groups_file.write_text(json.dumps({GROUP_KEY: group_config(0, "http://127.0.0.1:1")}))  # the account
        with Sandbox.from_groups_file(groups_file) as sandbox:
            groups_file.write_text(json.dumps({GROUP_KEY: group_config(0, sandbox.url)}))
            settings = Settings.model_validate(
                {"SALESMANAGO_GROUPS_FILE": str(groups_file), "SALESMANAGO_ALLOW_LOOPBACK": "true"}
            )
            dispatcher = Dispatcher(
                settings, FileGroupStore(groups_file), SalesmanagoClient(settings), DeadLetterSink(None)
            )
            per_request = settings.product_batch_size
            results = {}
            for name, action, items in (
                ("upsert", "products.upsert", full),
                ("stock", "products.stock", stock),
                ("price", "products.price", prices),
            ):
                events = invocations(commands(action, items, per_record), records)
                results[name] = run(name, events, dispatcher.dispatch_sqs, sandbox)
                results[name]["lower_bound"] = lower_bound(events, per_request)
                if set(results[name]["statuses"]) != {"applied"}:
                    raise SystemExit(f"{name}: not every record applied: {results[name]['statuses']}")
            stored = sandbox.products()
            assert all(stored[item["id"]]["quantity"] == item["quantity"] for item in stock), (
                "stock not applied"
            )
    return {
        "settings": {
            "products": products,
            "records_per_invocation": records,
            "items_per_record": per_record,
            "product_batch_size": per_request,
            "latency_ms": 0,
        },
        "runs": results,
    }


HEADER = (
    "| run | records | invocations | requests | lower bound | requests ÷ lower bound "
    "| requests ÷ upsert's | bytes | bytes ÷ upsert's | CPU s | CPU ÷ upsert's |"
)


def table(results: dict[str, Any]) -> str:
    upsert = results["runs"]["upsert"]
    lines = [HEADER, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("upsert", "stock", "price"):
        r = results["runs"][name]
        cells = [
            f"`products.{name}`",
            f"{r['records']:,}",
            str(r["invocations"]),
            f"{r['requests']:,}",
            f"{r['lower_bound']:,}",
            f"{r['requests'] / r['lower_bound']:.2f}",
            f"{r['requests'] / upsert['requests']:.2f}",
            f"{r['bytes']:,}",
            f"{r['bytes'] / upsert['bytes']:.3f}",
            f"{r['cpu_s']:.2f}",
            f"{r['cpu_s'] / upsert['cpu_s']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_readme(text: str, results: dict[str, Any]) -> None:
    content = README.read_text()
    if TABLE_BEGIN not in content or TABLE_END not in content:
        return
    head, rest = content.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    stamp = f"Measured {results['date']} ({results['command']}), nproc {os.cpu_count()}."
    README.write_text(f"{head}{TABLE_BEGIN}\n{stamp}\n\n{text}\n{TABLE_END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=500, help="records per invocation")
    parser.add_argument("--per-record", type=int, default=1, help="items per command")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    os.environ["SALESMANAGO_ALLOW_LOOPBACK"] = "true"  # the sandbox listens on 127.0.0.1
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SalesmanagoBridge")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    results = measure(args.products, args.records, args.per_record)
    results["date"] = time.strftime("%Y-%m-%d")
    results["command"] = "make bench-stock" if not argv else "python -m bench.stock " + " ".join(argv)
    text = table(results)
    print(text)
    if not args.no_write:
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        update_readme(text, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
