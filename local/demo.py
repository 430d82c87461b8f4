"""The demo: every sample event in ``events/`` through its handler, against the SALESmanago sandbox.

For each event it prints what reached the sandbox (method, path, key fields; e-mails masked) and
the outcome the source would see. Dead letters go to an in-process SQS queue (moto), so the broken
samples show the reason a user would find in the dead-letter queue. Exit 0 when every sample ends
as expected: good ones applied, broken ones dead-lettered.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.runner import ROOT, function_for_event, invoke
from local.sandbox import Sandbox

SAMPLE_GROUPS = ROOT / "local" / "groups.sample.json"
EVENTS = ROOT / "events"
BROKEN_MARKERS = ("bad_email", "unknown_group", "missing_field", "unmapped_field")
# A stock or price update follows its products' upsert: the sandbox refuses unknown products.
ACTION_ORDER = (
    "contact_upsert", "event_create", "products_upsert", "products_stock", "products_price", "contact_delete",
)  # fmt: skip
REGION = "eu-central-1"


def mask_email(value: Any) -> str:
    text = str(value)
    local, at, domain = text.partition("@")
    return f"{local[:1]}***@{domain}" if at else "***"


PERSONAL_FIELDS = ("name", "phone", "fax", "company", "streetAddress", "zipCode", "city", "birthday")


def _masked_reply(body: str) -> str:
    """An API reply as printed: a contact read keeps its shape, its personal values are masked."""
    try:
        reply = json.loads(body)
    except ValueError:
        return body
    contact = reply.get("contact") if isinstance(reply, dict) else None
    if not isinstance(contact, dict):
        return body
    masked = {
        key: mask_email(value) if key == "email" else ("***" if key in PERSONAL_FIELDS and value else value)
        for key, value in contact.items()
    }
    return json.dumps({**reply, "contact": masked}, ensure_ascii=False)


def sample_events() -> list[Path]:
    """Good samples source by source in a sensible order, then the broken ones."""

    def rank(path: Path) -> tuple[int, int, str]:
        broken = any(marker in path.stem for marker in BROKEN_MARKERS)
        action = next((i for i, a in enumerate(ACTION_ORDER) if path.stem.endswith(a)), len(ACTION_ORDER))
        return (1 if broken else 0, action, path.name)

    return sorted((p for p in EVENTS.glob("*.json")), key=rank)


def describe_request(request: Any) -> str:
    """One line per request: the path and the fields a reader wants to check."""
    body = request.body if isinstance(request.body, dict) else {}
    path = request.path
    fields: list[str] = []
    if path.endswith("contact/upsert"):
        contact = body.get("contact", {})
        fields += [f"contact={mask_email(contact.get('email'))}", f"owner={mask_email(body.get('owner'))}"]
        fields += [
            f"{k}={','.join(map(str, v)) if isinstance(v, list) else ('…' if isinstance(v, dict) else v)}"
            for k, v in body.items()
            if k in ("tags", "properties", "birthday", "lang", "forceOptIn")
        ]
        if isinstance(body.get("properties"), dict):
            fields.append("property names=" + ",".join(sorted(body["properties"])))
    elif path.endswith("contact/batchupsert"):
        fields.append(f"contacts={len(body.get('upsertDetails', []))}")
    elif path.endswith(("contact/list", "contact/listById")):
        wanted = body.get("email") or body.get("contactId") or []
        shown = [mask_email(w) for w in wanted] if "email" in body else wanted
        fields.append(f"{'email' if 'email' in body else 'contactId'}={','.join(shown)}")
    elif path.endswith("contact/delete"):
        fields += [f"email={mask_email(body.get('email'))}", f"permanently={body.get('permanently')}"]
    elif "ExtEvent" in path:
        event = body.get("contactEvent", {})
        date = event.get("date")
        when = datetime.fromtimestamp(date / 1000, UTC).isoformat() if isinstance(date, int) else date
        fields += [
            f"email={mask_email(body.get('email'))}",
            f"type={event.get('contactExtEventType')}",
            f"value={event.get('value')}",
            f"date={date} ({when})",
            f"products={event.get('products')}",
            f"location={event.get('location')}",
            f"detail5={event.get('detail5')}",
        ]
    elif path.endswith("product/upsert"):
        products = body.get("products", [])
        fields += [
            f"catalogId={body.get('catalogId')}",
            "productIds=" + ",".join(p.get("productId", "?") for p in products),
        ]
        fields += [
            f"{p.get('productId')}: quantity={p.get('quantity')} available={p.get('available')} "
            f"customDetails={p.get('customDetails', {})} setAsNull={p.get('setAsNull')}"
            for p in products
        ]
    elif path.endswith(("product/updateQuantity", "product/updatePrice")):
        fields.append(f"catalogId={body.get('catalogId')}")
        fields += [
            " ".join(f"{key}={'null' if value is None else value}" for key, value in product.items())
            for product in body.get("products", [])
            if isinstance(product, dict)
        ]
    if "sha" in body:
        fields.append("auth=sha1+requestTime(ms)" if int(body.get("requestTime", 0)) > 10**12 else "auth=?")
    return f"{request.method} {path}  " + "  ".join(fields)


@dataclass
class DemoResult:
    lines: list[str] = field(default_factory=list)
    logs: str = ""
    unexpected: list[str] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


def run_demo(verbose: bool = False) -> DemoResult:
    """Run the samples; return what was printed, the captured logs and any surprise."""
    from moto import mock_aws

    result = DemoResult()
    groups = json.loads(SAMPLE_GROUPS.read_text())
    with Sandbox.from_groups_file(SAMPLE_GROUPS) as sandbox, mock_aws(), tempfile.TemporaryDirectory() as tmp:
        for config in groups.values():
            config["endpoint"] = config["products_endpoint"] = sandbox.url
        groups_file = Path(tmp) / "groups.json"
        groups_file.write_text(json.dumps(groups))
        import boto3

        sqs = boto3.client("sqs", region_name=REGION)
        dlq_url = sqs.create_queue(QueueName="salesmanago-bridge-demo-dead-letters")["QueueUrl"]
        os.environ.update(
            STAGE="demo",
            SALESMANAGO_GROUPS_FILE=str(groups_file),
            SALESMANAGO_ALLOW_LOOPBACK="true",  # the sandbox listens on 127.0.0.1
            DEAD_LETTER_QUEUE_URL=dlq_url,
            AWS_DEFAULT_REGION=REGION,
            POWERTOOLS_SERVICE_NAME="salesmanago-bridge",
            POWERTOOLS_METRICS_NAMESPACE="SalesmanagoBridge",
        )
        from salesmanago_bridge.observability import logger

        logs = io.StringIO()
        logger.registered_handler.setStream(logs)  # type: ignore[attr-defined]
        for event_file in sample_events():
            broken = any(marker in event_file.stem for marker in BROKEN_MARKERS)
            function = function_for_event(event_file)
            before = len(sandbox.requests)
            emf = io.StringIO()
            with contextlib.redirect_stdout(emf):
                outcome = invoke(function, json.loads(event_file.read_text()))
            logs.write(emf.getvalue())
            result.lines.append(f"── {event_file.name} → {function}")
            for request in sandbox.requests[before:]:
                result.lines.append(f"   {describe_request(request)}")
            parked = _drain(sqs, dlq_url)
            result.dead_letters.extend(parked)
            result.lines.extend(_describe_outcome(outcome, parked))
            if broken != bool(parked) or _retried(outcome):
                result.unexpected.append(event_file.name)
        result.logs = logs.getvalue()
    return result


def _drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    parked = []
    for message in messages.get("Messages", []):
        reason = json.loads(message["MessageAttributes"]["bridge-failure"]["StringValue"])
        parked.append({"body": message["Body"], "reason": reason})
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return parked


def _retried(outcome: Any) -> bool:
    if isinstance(outcome, dict) and "errorType" in outcome:
        return True
    return bool(isinstance(outcome, dict) and outcome.get("batchItemFailures"))


def _describe_outcome(outcome: Any, parked: list[dict[str, Any]]) -> list[str]:
    lines = []
    if isinstance(outcome, dict) and "statusCode" in outcome:
        lines.append(f"   outcome: HTTP {outcome['statusCode']} {_masked_reply(outcome.get('body', ''))}")
    elif isinstance(outcome, dict) and "batchItemFailures" in outcome:
        failures = outcome["batchItemFailures"]
        lines.append(f"   outcome: batchItemFailures={failures}")
    elif isinstance(outcome, dict) and "errorType" in outcome:
        lines.append(
            f"   outcome: raised {outcome['errorType']} (Lambda would retry): {outcome['errorMessage']}"
        )
    elif isinstance(outcome, dict):
        for item in outcome.get("outcomes", []):
            lines.append(f"   outcome: {item['status']} {json.dumps(item.get('result', {}))}")
    for message in parked:
        reason = message["reason"]
        lines.append(f"   dead-lettered [{reason['error_type']}] {reason['error_message']}")
    if not parked and not lines:
        lines.append(f"   outcome: {outcome}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--verbose", action="store_true", help="also print the handlers' JSON log lines")
    args = parser.parse_args(argv)
    result = run_demo(verbose=args.verbose)
    out = sys.stdout
    out.write("SALESmanago bridge demo: sample events → handlers → sandbox\n\n")
    out.write("\n".join(result.lines) + "\n\n")
    log_lines = [line for line in result.logs.splitlines() if line.strip()]
    out.write(f"{len(log_lines)} log and metric lines captured (JSON; e-mails pseudonymized)\n")
    if args.verbose:
        out.write("\n".join(log_lines) + "\n")
    if result.unexpected:
        out.write(f"UNEXPECTED outcome for: {', '.join(result.unexpected)}\n")
        return 1
    out.write("every good sample was applied and every broken one dead-lettered with its reason\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
