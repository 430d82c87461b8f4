"""The stage for bench/cli_backfill_demo.sh: AWS (moto's server), SALESmanago (the sandbox), a stack.

    python -m bench.cli_backfill_env serve --moto-port 5055 --sandbox-port 8095 &
    python -m bench.cli_backfill_env stack                  # CloudFormation stack with the outputs
    python -m bench.cli_backfill_env generate history.jsonl 50000
    python -m bench.cli_backfill_env live live.jsonl        # a day of live traffic, some of it bad
    python -m bench.cli_backfill_env consume CommandsQueueUrl   # the SQS consumer, in-process
    python -m bench.cli_backfill_env aws-failures           # what Lambda and EventBridge park

Everything talks to AWS through $AWS_ENDPOINT_URL (moto's server), as the `bridge` commands do.
The consumer is the real one (functions/sqs_consumer) with the environment the template gives it;
the two AWS-made dead letters are written in the shapes AWS documents, since moto runs no Lambda.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVER_DEPS = ROOT / "bench" / ".tmp" / "moto-server-cfn"
# moto's server needs Flask; its CloudFormation imports every service it can deploy.
SERVER_PACKAGES = ("flask", "flask-cors", "openapi-spec-validator", "joserfc", "graphql-core", "jsonpath-ng")
STAGE = "demo"
STACK = f"salesmanago-bridge-{STAGE}"
GROUPS = ("demo-shop", "outlet")
RECEIVE_BATCH = 10
RECORDS_PER_INVOCATION = 100

TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "The queues, topic and bus of salesmanago-bridge, with template.yaml's output names",
    "Resources": {
        "CommandsDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
        "FailureQueue": {"Type": "AWS::SQS::Queue"},
        "CommandsQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "VisibilityTimeout": 420,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["CommandsDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 5,
                },
            },
        },
        "BackfillQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "VisibilityTimeout": 420,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["CommandsDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": 5,
                },
            },
        },
        "CommandsTopic": {"Type": "AWS::SNS::Topic"},
        "CommandsEventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": f"{STACK}-commands"}},
    },
    "Outputs": {
        "CommandsQueueUrl": {"Value": {"Ref": "CommandsQueue"}},
        "BackfillQueueUrl": {"Value": {"Ref": "BackfillQueue"}},
        "CommandsDeadLetterQueueUrl": {"Value": {"Ref": "CommandsDeadLetterQueue"}},
        "FailureQueueUrl": {"Value": {"Ref": "FailureQueue"}},
        "CommandsTopicArn": {"Value": {"Ref": "CommandsTopic"}},
        # A literal: moto's Ref of an EventBus renders the object instead of its name.
        "EventBusName": {"Value": f"{STACK}-commands"},
        "GroupConfigPath": {"Value": f"/salesmanago/{STAGE}/groups/"},
    },
}


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service)  # region, credentials and endpoint from the environment


def outputs() -> dict[str, str]:
    stack = _client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


# ---------------------------------------------------------------- serve


def ensure_server_packages() -> None:
    """Install what moto's server needs once, under bench/.tmp (not into the project's venv)."""
    if not (SERVER_DEPS / "flask_cors").exists():
        subprocess.run(  # noqa: S603 - pip of our own interpreter, PyPI only
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--target",
                str(SERVER_DEPS),
                *SERVER_PACKAGES,
            ],
            check=True,
        )
    sys.path.append(str(SERVER_DEPS))  # after the venv: its own packages win


def speed_up_moto_sqs() -> None:
    """Keep moto's SendMessage constant-time (the demo's workaround, not a change to moto).

    For every message it stores, moto 5 evaluates all of the queue's attributes to read
    ContentBasedDeduplication, and three of them scan every message in the queue: storing 50,000
    messages becomes quadratic (seconds per batch after a few thousand). While a message is being
    sent, the attributes are reduced to the one that is read.
    """
    from moto.sqs import models

    sending = threading.local()
    all_attributes = models.Queue.attributes

    def attributes(queue: Any) -> dict[str, Any]:
        if getattr(sending, "active", False):
            return {"ContentBasedDeduplication": str(bool(queue.content_based_deduplication)).lower()}
        return all_attributes.fget(queue)  # type: ignore[attr-defined]

    send_message = models.SQSBackend.send_message

    def send(backend: Any, *args: Any, **kwargs: Any) -> Any:
        sending.active = True
        try:
            return send_message(backend, *args, **kwargs)
        finally:
            sending.active = False

    models.Queue.attributes = property(attributes)  # type: ignore[assignment, method-assign]
    models.SQSBackend.send_message = send  # type: ignore[method-assign]


def serve(args: argparse.Namespace) -> None:
    ensure_server_packages()
    speed_up_moto_sqs()
    from moto.server import ThreadedMotoServer

    from local.sandbox import Sandbox

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=args.moto_port, verbose=False)
    moto.start()
    sandbox = Sandbox.from_groups_file(args.groups_file).start(port=args.sandbox_port)
    print(f"moto on http://127.0.0.1:{args.moto_port}, sandbox on {sandbox.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        sandbox.stop()
        moto.stop()


# ---------------------------------------------------------------- stack and groups


def stack(_: argparse.Namespace) -> None:
    cloudformation = _client("cloudformation")
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE))
    for _attempt in range(50):
        status = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
        if status.endswith("_COMPLETE"):
            break
        time.sleep(0.1)
    for key, value in sorted(outputs().items()):
        print(f"  {key:<28} {value}")


def group_files(args: argparse.Namespace) -> None:
    """Config files pointing at the sandbox: the right ones, and outlet with a stale secret."""
    groups = json.loads(Path(args.groups_file).read_text())
    target = Path(args.directory)
    for key in GROUPS:
        config = {**groups[key], "endpoint": args.sandbox_url, "products_endpoint": args.sandbox_url}
        (target / f"{key}.json").write_text(json.dumps(config, indent=2))
        if key == "outlet":
            stale = {**config, "api_secret": "outlet-secret-before-rotation"}
            (target / f"{key}.stale.json").write_text(json.dumps(stale, indent=2))


# ---------------------------------------------------------------- files


def _person(rng: random.Random, n: int) -> dict[str, Any]:
    first = rng.choice(["Anna", "Jan", "Ewa", "Piotr", "Maria", "Tomasz", "Kasia", "Marek"])
    last = rng.choice(["Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Kamińska", "Lewandowski"])
    return {
        "email": f"{first.lower()}.{last.lower()}.{n}@customer.example.com",
        "name": f"{first} {last}",
        "city": rng.choice(["Warszawa", "Kraków", "Gdańsk", "Poznań"]),
        "tags": [rng.choice(["NEWSLETTER", "VIP", "B2B", "APP"])],
        "state": "CUSTOMER",
    }


def generate(args: argparse.Namespace) -> None:
    """Contacts of the two groups, as a history export would hold them."""
    rng = random.Random(7)
    with Path(args.file).open("w", encoding="utf-8") as out:
        for n in range(args.count):
            command = {"action": "contact.upsert", "group_key": GROUPS[n % 2], "data": _person(rng, n)}
            out.write(json.dumps(command, ensure_ascii=False) + "\n")


def live(args: argparse.Namespace) -> None:
    """A day of live traffic: upserts, orders, two erasures, a retired group, a field no map takes."""
    rng = random.Random(11)
    lines: list[dict[str, Any]] = []
    for n in range(200):
        group = GROUPS[n % 2]
        person = _person(rng, 100_000 + n)
        lines.append({"action": "contact.upsert", "group_key": group, "data": person})
        if n % 5 == 0:
            order = {
                "email": person["email"],
                "contactExtEventType": "PURCHASE",
                "value": round(rng.uniform(20, 400), 2),
                "externalId": f"order-{100_000 + n}",
                "date": f"2025-11-26T{8 + n // 20:02d}:{n % 60:02d}:00Z",
            }
            lines.append({"action": "event.create", "group_key": group, "data": order})
    erased = [c["data"]["email"] for c in lines if c["group_key"] == "outlet"][:2]
    lines += [{"action": "contact.delete", "group_key": "outlet", "data": {"email": e}} for e in erased]
    lines += [
        {"action": "contact.upsert", "group_key": "legacy-shop", "data": _person(rng, 200_000 + n)}
        for n in range(6)
    ]
    lines += [
        {
            "action": "contact.upsert",
            "group_key": "outlet",
            "data": {**_person(rng, 300_000 + n), "tier": "gold"},
        }
        for n in range(4)
    ]
    with Path(args.file).open("w", encoding="utf-8") as out:
        for command in lines:
            out.write(json.dumps(command, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- the consumer and AWS's own dead letters


def consume(args: argparse.Namespace) -> None:
    """Receive from a queue and hand the records to the real SQS consumer, as Lambda's mapping does."""
    stack_outputs = outputs()
    os.environ.update(
        STAGE=STAGE,
        DEAD_LETTER_QUEUE_URL=stack_outputs["CommandsDeadLetterQueueUrl"],
        POWERTOOLS_PARAMETERS_SSM_DECRYPT="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    sqs = _client("sqs")
    url = stack_outputs[args.queue]
    # The handler's JSON log lines and EMF metrics go to stdout, as in Lambda: not into the transcript.
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
        totals = _drain(sqs, url, args.max)
    dead = sqs.get_queue_attributes(
        QueueUrl=stack_outputs["CommandsDeadLetterQueueUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    print(
        f"  sqs_consumer: {totals['records']} records from {args.queue.removesuffix('Url')}, "
        f"{totals['retry']} handed back; the dead-letter queue holds {dead}"
    )


def _drain(sqs: Any, url: str, limit: int | None) -> dict[str, int]:
    from local.runner import FakeLambdaContext, invoke

    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    totals = {"records": 0, "retry": 0}
    while limit is None or totals["records"] < limit:
        records = _receive(sqs, url, arn, RECORDS_PER_INVOCATION)
        if not records:
            break
        result = invoke("sqs_consumer", {"Records": records}, FakeLambdaContext())
        failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), RECEIVE_BATCH):
            entries = [
                {"Id": str(n), "ReceiptHandle": r["receiptHandle"]}
                for n, r in enumerate(done[start : start + RECEIVE_BATCH])
            ]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        totals["records"] += len(records)
        totals["retry"] += len(failed)
    return totals


def _receive(sqs: Any, url: str, arn: str, count: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    while len(records) < count:
        reply = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=RECEIVE_BATCH,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        )
        messages = reply.get("Messages", [])
        if not messages:
            break
        records += [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": os.environ.get("AWS_DEFAULT_REGION", "eu-central-1"),
            }
            for m in messages
        ]
    return records


def aws_failures(_: argparse.Namespace) -> None:
    """The two dead letters AWS writes itself into the failure queue (moto runs no Lambda)."""
    failures = outputs()["FailureQueueUrl"]
    sqs = _client("sqs")
    events = ROOT / "events"
    sns_event = json.loads((events / "sns_event_create.json").read_text())
    record = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678",
            "functionArn": f"arn:aws:lambda:eu-central-1:123456789012:function:{STACK}-sns:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": sns_event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": "[throttled] SALESmanago is throttling",
            "errorType": "ThrottledError",
            "stackTrace": [],
        },
    }
    sqs.send_message(QueueUrl=failures, MessageBody=json.dumps(record))
    bus_event = json.loads((events / "eventbridge_contact_upsert.json").read_text())
    attributes = {
        "RULE_ARN": f"arn:aws:events:eu-central-1:123456789012:rule/{STACK}-commands/commands",
        "TARGET_ARN": f"arn:aws:lambda:eu-central-1:123456789012:function:{STACK}-eventbridge",
        "ERROR_CODE": "SDK_CLIENT_ERROR",
        "ERROR_MESSAGE": "Lambda was unable to process the request: rate exceeded",
        "EXHAUSTED_RETRY_CONDITION": "MaximumEventAgeInSeconds",
    }
    sqs.send_message(
        QueueUrl=failures,
        MessageBody=json.dumps(bus_event),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    print("  FailureQueue: a Lambda on-failure record (SNS) and an EventBridge target dead letter")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("serve")
    server.add_argument("--moto-port", type=int, default=5055)
    server.add_argument("--sandbox-port", type=int, default=8095)
    server.add_argument("--groups-file", default=str(ROOT / "local" / "groups.sample.json"))
    server.set_defaults(run=serve)
    commands.add_parser("stack").set_defaults(run=stack)
    configs = commands.add_parser("group-files")
    configs.add_argument("directory")
    configs.add_argument("--sandbox-url", required=True)
    configs.add_argument("--groups-file", default=str(ROOT / "local" / "groups.sample.json"))
    configs.set_defaults(run=group_files)
    history = commands.add_parser("generate")
    history.add_argument("file")
    history.add_argument("count", type=int)
    history.set_defaults(run=generate)
    day = commands.add_parser("live")
    day.add_argument("file")
    day.set_defaults(run=live)
    consumer = commands.add_parser("consume")
    consumer.add_argument("queue", choices=["CommandsQueueUrl", "BackfillQueueUrl"])
    consumer.add_argument("--max", type=int)
    consumer.set_defaults(run=consume)
    commands.add_parser("aws-failures").set_defaults(run=aws_failures)
    args = parser.parse_args(argv)
    if importlib.util.find_spec("boto3") is None:
        raise SystemExit("run this with the project's virtualenv (make dev)")
    args.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
