"""One function's cold start as deployed, in a fresh interpreter; prints its CPU figures (JSON).

    python -m bench.deployed_probe FUNCTION GROUP_KEY API_KEY_ID

Run by ``bench.deployed`` under python3.13 with the layer as built on the path, the function's
environment (idempotency on, groups in SSM on moto's server, tracing on) and ``BRIDGE_PRIMING``
saying whether init primes. Measured, as CPU time of this process:

- the import of ``app`` (priming off during it), then priming as ``app`` calls it (when on):
  init = both;
- with priming, the after-restore hooks (what a SnapStart restore runs), reported apart;
- the first invocation; then later invocations of the same request (fresh ids, so an event is
  never a duplicate), alternately with the Parameters cache warm and expired (emptied: the next
  read goes to SSM, as a first request's does);
- init's and the first invocation's wall time besides (a wait shows there, not in CPU).

With ``BENCH_PROFILE_DIR`` set, the first invocation and each expired one are profiled (cProfile
on process CPU time) into that directory, with the modules each loaded.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.memory_probe import Context

ROOT = Path(__file__).resolve().parent.parent
LATER = 3  # later invocations of each kind (warm, expired): their median is reported
SENT_AT_MS = 1_764_095_400_000


def _event_data(n: int) -> dict[str, Any]:
    return {
        "email": f"deployed{n}@bench.example.com",
        "contactExtEventType": "PURCHASE",
        "value": 10.5,
        "products": ["SKU-1"],
        "externalId": f"order-{uuid.uuid4().hex[:12]}",
    }


def request(function: str, group_key: str, api_key_id: str, n: int) -> dict[str, Any]:
    """The function's request number ``n``: the same shape every time, never a duplicate event."""
    event = {"action": "event.create", "group_key": group_key, "data": _event_data(n)}
    if function == "api":
        body = json.dumps({"group_key": group_key, "data": event["data"]})
        headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
        return {
            "resource": "/events",
            "path": "/events",
            "httpMethod": "POST",
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": None,
            "requestContext": {
                "resourcePath": "/events",
                "httpMethod": "POST",
                "stage": "Production",
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": SENT_AT_MS,
                "identity": {"apiKeyId": api_key_id, "sourceIp": "203.0.113.7"},
            },
            "body": body,
            "isBase64Encoded": False,
        }
    if function == "sqs_consumer":  # a contact and an event, as a small batch would carry
        contact = {
            "action": "contact.upsert",
            "group_key": group_key,
            "data": {"email": event["data"]["email"]},
        }
        return {
            "Records": [
                {
                    "messageId": str(uuid.uuid4()),
                    "body": json.dumps(body),
                    "attributes": {"SentTimestamp": str(SENT_AT_MS), "ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:bench-commands",
                }
                for body in (contact, event)
            ]
        }
    if function == "sns_consumer":
        return {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "Sns": {
                        "MessageId": str(uuid.uuid4()),
                        "TopicArn": "arn:aws:sns:eu-central-1:123456789012:bench-commands",
                        "Message": json.dumps(event),
                        "Timestamp": "2026-11-25T18:30:00.000Z",
                        "MessageAttributes": {},
                    },
                }
            ]
        }
    return {
        "id": str(uuid.uuid4()),
        "detail-type": "event.create",
        "source": "bench.shop",
        "time": "2026-11-25T18:30:00Z",
        "resources": [],
        "detail": {"group_key": group_key, "data": event["data"]},
    }


def applied(function: str, reply: Any) -> bool:
    """Whether the handler's reply says everything was applied."""
    if function == "api":
        return reply.get("statusCode") == 200
    if function == "sqs_consumer":
        return reply.get("batchItemFailures") == []
    return all(o.get("status") == "applied" for o in reply.get("outcomes", [])) and bool(
        reply.get("outcomes")
    )


def main(argv: list[str]) -> int:
    function, group_key, api_key_id = argv
    primed = os.environ.get("BRIDGE_PRIMING", "true") == "true"
    os.environ["BRIDGE_PRIMING"] = "false"  # the import alone first
    sys.path.insert(0, str(ROOT / "functions" / function))
    started, wall = time.process_time(), time.perf_counter()
    import app  # the function's module, as Lambda imports it

    import_s = time.process_time() - started
    init_wall_s = time.perf_counter() - wall
    from salesmanago_bridge import priming
    from salesmanago_bridge.settings import get_settings
    from salesmanago_bridge.sources import Source

    SOURCES = {
        "sqs_consumer": Source.SQS,
        "sns_consumer": Source.SNS,
        "eventbridge_consumer": Source.EVENTBRIDGE,
    }

    prime_s = restore_s = 0.0
    if primed:
        os.environ["BRIDGE_PRIMING"] = "true"
        get_settings.cache_clear()
        started, wall = time.process_time(), time.perf_counter()
        if function == "api":
            done = priming.prime_api(app.app, app.lambda_handler)
        else:
            done = priming.prime(SOURCES[function], app.lambda_handler)
        prime_s = time.process_time() - started
        init_wall_s += time.perf_counter() - wall
        if function == "api":  # SnapStart: a cold request resumes a snapshot, after these hooks
            started = time.process_time()
            priming.run_after_restore_hooks()
            restore_s = time.process_time() - started
    else:
        done = {"primed": False}

    from salesmanago_bridge.dispatch import get_dispatcher

    dispatcher = get_dispatcher()
    parked: list[Any] = []
    park = dispatcher.dead_letters.park

    def counting_park(body: Any, reason: dict[str, Any]) -> bool:
        parked.append(reason.get("error_type"))  # a dead letter is not "applied"
        return park(body, reason)

    dispatcher.dead_letters.park = counting_park  # type: ignore[method-assign]

    profile_dir = os.environ.get("BENCH_PROFILE_DIR")

    walls: list[float] = []

    def invoke(n: int, label: str = "") -> tuple[float, bool]:
        # What the runtime sets per invocation: the trace header (sampled: segments are sent).
        os.environ["_X_AMZN_TRACE_ID"] = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=1"
        event = request(function, group_key, api_key_id, n)
        profiler = None
        if profile_dir and label:
            import cProfile

            profiler = cProfile.Profile(time.process_time)
            modules = set(sys.modules)
            profiler.enable()
        begun, wall = time.process_time(), time.perf_counter()
        before = len(parked)
        reply = app.lambda_handler(event, Context())
        cpu = time.process_time() - begun
        walls.append(time.perf_counter() - wall)
        if profiler is not None and profile_dir:
            profiler.disable()
            stem = Path(profile_dir) / f"{function}-{'primed' if primed else 'unprimed'}-{label}"
            profiler.dump_stats(f"{stem}.prof")
            Path(f"{stem}.modules").write_text("\n".join(sorted(set(sys.modules) - modules)) + "\n")
        return cpu, applied(function, reply) and len(parked) == before

    first_s, first_ok = invoke(0, "first")
    warm, expired, oks = [], [], [first_ok]
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    for n in range(1, LATER + 1):
        cpu, ok = invoke(2 * n - 1)
        warm.append(cpu)
        oks.append(ok)
        for provider in DEFAULT_PROVIDERS.values():  # as if max_age had passed
            provider.clear_cache()
        cpu, ok = invoke(2 * n, f"expired{n}")
        expired.append(cpu)
        oks.append(ok)
    report = {
        "function": function,
        "primed": primed,
        "priming": done,
        "import_cpu_ms": round(import_s * 1000, 1),
        "prime_cpu_ms": round(prime_s * 1000, 1),
        "init_cpu_ms": round((import_s + prime_s) * 1000, 1),
        "init_wall_ms": round(init_wall_s * 1000, 1),
        "restore_hooks_cpu_ms": round(restore_s * 1000, 2),
        "first_cpu_ms": round(first_s * 1000, 1),
        "first_wall_ms": round(walls[0] * 1000, 1),
        "warm_cpu_ms": round(statistics.median(warm) * 1000, 1),
        "expired_cpu_ms": round(statistics.median(expired) * 1000, 1),
        "all_applied": all(oks),
        "python": sys.version.split()[0],
    }
    sys.stdout.write("\n" + json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
