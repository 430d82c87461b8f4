"""make e2e: the built stack, deployed with `sam deploy` on ministack with IAM enforced, driven end to end.

Every source path runs through the deployed functions (built layer, translated template, the roles'
policies) against the SALESmanago sandbox, and the run prints one row per path with its outcome.
It expects `make build ARCH=<this machine>` and the tools the Makefile installs (tests/e2e/README.md).
Exit status 0 only if every row passed; it always leaves no process and no temporary directory behind.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from samtranslator.yaml_helper import yaml_parse

from local.sandbox import Account, Fault, Sandbox

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TOOLS = ROOT / ".tools"
EVENTS = ROOT / "events"
REGION = "eu-central-1"
STAGE = "dev"
# The emulator's root credentials under AUTH=true (its documented defaults); never a real account's.
ROOT_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
# Short enough to see a record come back within the run; the template's default stays 420.
VISIBILITY_TIMEOUT_S = 8
# Deploy parameters of the run: small batches without a window, so each path answers at once.
PARAMETERS = {
    "Stage": STAGE,
    "SqsBatchSize": "10",
    "SqsBatchingWindowSeconds": "0",
    "QueueVisibilityTimeoutSeconds": str(VISIBILITY_TIMEOUT_S),
    # The sandbox listens on 127.0.0.1: a group endpoint there is refused unless this is on.
    "AllowLoopbackEndpoints": "true",
}
WAIT_S = 60.0
# template.yaml as written (SAM): the values a check must agree with are read from it.
TEMPLATE = yaml_parse((ROOT / "template.yaml").read_text())
# Calls per invocation (SALESMANAGO_MAX_RETRIES + 1) and invocations of an async event (retries + 1).
CLIENT_RETRIES = int(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["SALESMANAGO_MAX_RETRIES"])
ASYNC_RETRIES = TEMPLATE["Resources"]["SnsConsumerFunction"]["Properties"]["EventInvokeConfig"][
    "MaximumRetryAttempts"
]
# Layer requirements the runtime's interpreter must not provide (the Lambda runtime has only boto3).
LAYER_ONLY_MODULES = ("pydantic", "aws_lambda_powertools", "requests", "email_validator")


# ---------------------------------------------------------------- the table


@dataclass
class Row:
    path: str
    outcome: str
    detail: str


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def check(self, path: str, probe: Callable[[], str]) -> None:
        """Run one path's probe: its return value is the detail of a pass, an exception is a failure."""
        try:
            self.rows.append(Row(path, "ok", probe()))
        except Exception as exc:
            self.rows.append(Row(path, "FAIL", f"{type(exc).__name__}: {exc}"[:300]))
        row = self.rows[-1]
        print(f"  {row.outcome:<4} {row.path}: {row.detail}", flush=True)

    def print(self, seconds: float) -> None:
        width = max(len(row.path) for row in self.rows)
        print(f"\n{'path':<{width}}  outcome  detail")
        print(f"{'-' * width}  -------  {'-' * 40}")
        for row in self.rows:
            print(f"{row.path:<{width}}  {row.outcome:<7}  {row.detail}")
        failed = sum(row.outcome != "ok" for row in self.rows)
        print(f"\n{len(self.rows) - failed}/{len(self.rows)} paths passed in {seconds:.0f} s")

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(row.outcome == "ok" for row in self.rows)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll until probe() returns something truthy; the last exception or value explains a timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception as exc:
            value, last = None, exc
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"waited {timeout:.0f} s for {what} (last: {last!r})")


# ---------------------------------------------------------------- processes and ports


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Emulator:
    """ministack on a port of this run's own, with AUTH=true and its files in this run's directory."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir / "ministack.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, without: set[str]) -> None:
        env = {
            "E2E_WITHOUT": ",".join(sorted(without)),
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            "AUTH": "true",
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": "127.0.0.1",
            "MINISTACK_REGION": REGION,
            # Every file the emulator writes (function sandboxes, state, pid file) stays in workdir.
            "TMPDIR": str(self.workdir),
            "STATE_DIR": str(self.workdir / "state"),
            "S3_DATA_DIR": str(self.workdir / "s3"),
            "IOT_MTLS_ENABLED": "0",
            "SFTP_ENABLED": "0",
            **ROOT_CREDENTIALS,
        }
        command = [
            str(TOOLS / "ministack" / "bin" / "python"),
            str(HERE / "emulator_boot.py"),
            str(TOOLS / "lambda-runtime" / "bin" / "python"),
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for("emulator health", self._healthy, timeout=30)

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the emulator exited ({self.process.returncode}); see {self.log}")
        with urllib.request.urlopen(f"{self.url}/_ministack/health", timeout=2) as reply:  # noqa: S310
            return reply.status == 200

    def stop(self) -> None:
        """Stop the emulator and the function workers it started (one process group), and wait until
        every one of them has exited: a signalled process still counts until it is gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=10)
        # Workers that outlived the emulator are still in its process group.
        deadline = time.monotonic() + 10
        while self.group_alive() and time.monotonic() < deadline:
            self._signal_group(signal.SIGKILL)
            time.sleep(0.2)

    def _signal_group(self, signum: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def group_alive(self) -> bool:
        """Whether any process of the emulator's group (it or a function worker) still exists."""
        if self.process is None:
            return False
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **ROOT_CREDENTIALS,
        }

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ROOT_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=ROOT_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"max_attempts": 2}),
        )


def tool_environment(emulator: Emulator, workdir: Path) -> dict[str, str]:
    """The environment of sam and the bridge CLI: the emulator's endpoint, no user AWS config."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "SAM_CLI_TELEMETRY": "0",
        "AWS_CONFIG_FILE": str(workdir / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "aws-credentials"),
        # bridge groups put validates the endpoints as the functions do: the sandbox is on loopback.
        "SALESMANAGO_ALLOW_LOOPBACK": "true",
        **emulator.environment(),
    }


# ---------------------------------------------------------------- deploy


@dataclass
class Stack:
    name: str
    buffered: bool
    outputs: dict[str, str] = field(default_factory=dict)


def deploy(stack: Stack, build_dir: Path, emulator: Emulator, env: dict[str, str], bucket: str) -> None:
    parameters = {**PARAMETERS, "BufferedIntake": "true" if stack.buffered else "false"}
    command = [
        str(TOOLS / "sam" / "bin" / "sam"), "deploy",
        "--template-file", str(build_dir / "template.yaml"),
        "--stack-name", stack.name,
        "--s3-bucket", bucket,
        "--region", REGION,
        "--capabilities", "CAPABILITY_IAM",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--parameter-overrides", *(f"{key}={value}" for key, value in parameters.items()),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(
            f"sam deploy {stack.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    described = emulator.client("cloudformation").describe_stacks(StackName=stack.name)["Stacks"][0]
    stack.outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


# ---------------------------------------------------------------- adapters (tests/e2e/README.md)


def adapt_event_source_mappings(emulator: Emulator, stack: Stack) -> None:
    """Gap: the emulator's CloudFormation keeps ScalingConfig as written, so MaximumConcurrency (a Ref
    to a Number parameter) is the string CloudFormation passes parameters as, and the SQS poller compares
    it with an integer and polls nothing. Write the mapping's values back as integers, as CloudFormation's
    typed property would (BatchSize and the window, which the emulator already converts, unchanged)."""
    lambda_ = emulator.client("lambda")
    function = stack.outputs["SqsConsumerFunctionName"]
    for mapping in lambda_.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]:
        update: dict[str, Any] = {
            "UUID": mapping["UUID"],
            "BatchSize": int(mapping["BatchSize"]),
            "MaximumBatchingWindowInSeconds": int(mapping.get("MaximumBatchingWindowInSeconds", 0)),
        }
        if "ScalingConfig" in mapping:
            update["ScalingConfig"] = {
                "MaximumConcurrency": int(mapping["ScalingConfig"]["MaximumConcurrency"])
            }
        lambda_.update_event_source_mapping(**update)


def adapt_gateway_responses(emulator: Emulator, stack: Stack) -> int:
    """Gap: the emulator imports the API's OpenAPI body but drops x-amazon-apigateway-gateway-responses
    (the template's GatewayResponses). Put each one through the API Gateway API, then redeploy the stage."""
    responses = TEMPLATE["Resources"]["BridgeApi"]["Properties"]["GatewayResponses"]
    apigateway = emulator.client("apigateway")
    api_id = stack.outputs["RestApiId"]
    for response_type, response in responses.items():
        request: dict[str, Any] = {"restApiId": api_id, "responseType": response_type}
        if "StatusCode" in response:
            request["statusCode"] = str(response["StatusCode"])
        if "ResponseTemplates" in response:
            request["responseTemplates"] = response["ResponseTemplates"]
        headers = response.get("ResponseParameters", {}).get("Headers", {})
        if headers:
            request["responseParameters"] = {
                f"gatewayresponse.header.{name}": value for name, value in headers.items()
            }
        apigateway.put_gateway_response(**request)
    stage = stack.outputs["ApiUrl"].rstrip("/").rsplit("/", 1)[1]
    apigateway.create_deployment(restApiId=api_id, stageName=stage)
    return len(responses)


# Adapters inside the emulator's process (emulator_boot.py) and the ones this driver applies.
EMULATOR_ADAPTERS = ("api_key_id", "async_invoke", "tls_transport")
DRIVER_ADAPTERS = ("esm_types", "gateway_responses")


# ---------------------------------------------------------------- tenants


def sample_groups() -> dict[str, dict[str, Any]]:
    return json.loads((ROOT / "local" / "groups.sample.json").read_text())


def put_tenants(
    groups: dict[str, dict[str, Any]],
    sandbox_url: str,
    key_ids: dict[str, str],
    env: dict[str, str],
    workdir: Path,
) -> None:
    """Each sample group, its endpoints at this run's sandbox, bound to this run's API key, via the CLI."""
    for group, sample in groups.items():
        config = copy.deepcopy(sample)
        for key in ("endpoint", "products_endpoint"):
            config[key] = config[key].replace("http://127.0.0.1:8090", sandbox_url)
        config["api_key_ids"] = [key_ids[group]]
        path = workdir / f"{group}.json"
        path.write_text(json.dumps(config))
        command = [str(ROOT / ".venv" / "bin" / "bridge"), "groups", "put", group, "--file", str(path)]
        command += ["--overwrite", "--stage", STAGE, "--region", REGION]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise RuntimeError(f"bridge groups put {group} failed: {result.stdout}{result.stderr}")
        path.unlink()


def create_api_keys(emulator: Emulator, groups: list[str], stacks: list[Stack]) -> dict[str, tuple[str, str]]:
    """One API key per tenant, in every stack's usage plan: group -> (key id, key value)."""
    apigateway = emulator.client("apigateway")
    keys = {}
    for group in groups:
        value = f"e2e-{group}-{uuid.uuid4().hex}"
        key = apigateway.create_api_key(name=f"e2e-{group}", enabled=True, value=value)
        for stack in stacks:
            apigateway.create_usage_plan_key(
                usagePlanId=stack.outputs["SampleUsagePlanId"], keyId=key["id"], keyType="API_KEY"
            )
        keys[group] = (key["id"], value)
    return keys


# ---------------------------------------------------------------- payloads from the sample events


def sample_sqs(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(body, message attributes) of the first record of events/<name>.json."""
    record = json.loads((EVENTS / name).read_text())["Records"][0]
    attributes = {
        key: {"DataType": value["dataType"], "StringValue": value["stringValue"]}
        for key, value in (record.get("messageAttributes") or {}).items()
    }
    return json.loads(record["body"]), attributes


def sample_sns(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    record = json.loads((EVENTS / name).read_text())["Records"][0]["Sns"]
    attributes = {
        key: {"DataType": value["Type"], "StringValue": value["Value"]}
        for key, value in (record.get("MessageAttributes") or {}).items()
    }
    return json.loads(record["Message"]), attributes


def sample_eventbridge(name: str) -> tuple[str, dict[str, Any]]:
    event = json.loads((EVENTS / name).read_text())
    return event["detail-type"], event["detail"]


def sample_api_body(name: str) -> dict[str, Any]:
    return json.loads(json.loads((EVENTS / name).read_text())["body"])


def with_email(command: dict[str, Any], email: str) -> dict[str, Any]:
    """A copy of the command about its own contact, so each path's effect is told apart."""
    command = copy.deepcopy(command)
    command["data"]["email"] = email
    command.pop("id", None)
    return command


def with_product_prefix(command: dict[str, Any], prefix: str) -> dict[str, Any]:
    command = copy.deepcopy(command)
    for product in command["data"]:
        product["id"] = f"{prefix}-{product['id']}"
    command.pop("id", None)
    return command


def email(path: str, run_id: str) -> str:
    return f"{path}.{run_id}@e2e-customer.example.com"


# ---------------------------------------------------------------- checks on queues and the sandbox


def drain(emulator: Emulator, queue_url: str) -> list[dict[str, Any]]:
    """Every message now visible in the queue, deleted as read."""
    sqs = emulator.client("sqs")
    messages = []
    while True:
        reply = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
        )
        batch = reply.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(batch)


class Parked:
    """Messages read so far from one terminal queue, to find a path's own among them."""

    def __init__(self, emulator: Emulator, queue_url: str) -> None:
        self.emulator, self.queue_url, self.messages = emulator, queue_url, []  # type: list[dict[str, Any]]

    def find(self, marker: str) -> dict[str, Any] | None:
        self.messages.extend(drain(self.emulator, self.queue_url))
        return next((message for message in self.messages if marker in message["Body"]), None)


def failure_reason(message: dict[str, Any]) -> str:
    attribute = message.get("MessageAttributes", {}).get("bridge-failure")
    if attribute is None:
        raise AssertionError(
            f"no bridge-failure attribute (attributes: {sorted(message.get('MessageAttributes', {}))})"
        )
    return attribute["StringValue"]


def contact_of(sandbox: Sandbox, client_id: str, address: str) -> dict[str, Any] | None:
    contact = sandbox.contact(address, client_id)
    return contact if contact and not contact.get("deleted") else None


# ---------------------------------------------------------------- the REST API


def api_call(
    url: str, method: str, key: str | None, body: Any = None, query: str = ""
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{query}", data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=40) as reply:  # noqa: S310 - the emulator, loopback
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"{}")
        except ValueError:
            return error.code, {"raw": raw[:200].decode(errors="replace")}


def expect_status(status: int, body: dict[str, Any], expected: int) -> None:
    if status != expected:
        raise AssertionError(f"HTTP {status}, expected {expected}: {json.dumps(body)[:200]}")


# ---------------------------------------------------------------- the run


@dataclass
class World:
    emulator: Emulator
    sandbox: Sandbox
    direct: Stack
    buffered: Stack
    groups: dict[str, dict[str, Any]]
    keys: dict[str, tuple[str, str]]
    run_id: str

    def client_id(self, group: str) -> str:
        return str(self.groups[group]["client_id"])

    @property
    def catalog(self) -> str:
        return str(self.groups["demo-shop"]["catalog_id"])


def sqs_paths(world: World, table: Table) -> None:
    emulator, sandbox, stack, run_id = world.emulator, world.sandbox, world.direct, world.run_id
    sqs = emulator.client("sqs")
    client = world.client_id("demo-shop")
    dlq = Parked(emulator, stack.outputs["CommandsDeadLetterQueueUrl"])

    upsert, upsert_attributes = sample_sqs("sqs_contact_upsert.json")
    event, event_attributes = sample_sqs("sqs_event_create.json")
    products, products_attributes = sample_sqs("sqs_products_upsert.json")
    bad, bad_attributes = sample_sqs("sqs_bad_email.json")
    bad = copy.deepcopy(bad)
    bad["data"]["name"] = f"bad-{run_id}"
    sent = {
        "upsert": with_email(upsert, email("sqs-upsert", run_id)),
        "event": with_email(event, email("sqs-event", run_id)),
        "products": with_product_prefix(products, f"sqs-{run_id}"),
        "backfill": with_email(upsert, email("sqs-backfill", run_id)),
    }
    commands = stack.outputs["CommandsQueueUrl"]
    for name, attributes in (
        ("upsert", upsert_attributes),
        ("event", event_attributes),
        ("products", products_attributes),
    ):
        sqs.send_message(QueueUrl=commands, MessageBody=json.dumps(sent[name]), MessageAttributes=attributes)
    sqs.send_message(QueueUrl=commands, MessageBody=json.dumps(bad), MessageAttributes=bad_attributes)
    sqs.send_message(
        QueueUrl=stack.outputs["BackfillQueueUrl"],
        MessageBody=json.dumps(sent["backfill"]),
        MessageAttributes=upsert_attributes,
    )

    def contact_applied(path: str) -> Callable[[], str]:
        def probe() -> str:
            contact = wait_for(
                "contact in the sandbox", lambda: contact_of(sandbox, client, email(path, run_id))
            )
            return f"contact upserted (tags {sorted(contact['tags'])})"

        return probe

    def event_applied() -> str:
        found = wait_for("event in the sandbox", lambda: sandbox.events(email("sqs-event", run_id), client))
        return f"{len(found)} event(s) created"

    def products_applied() -> str:
        ids = {product["id"] for product in sent["products"]["data"]}
        wait_for("products in the sandbox", lambda: ids <= set(sandbox.products(world.catalog)))
        return f"{len(ids)} products upserted in the catalog"

    def update_applied(sample: str, field: str, stored_as: str) -> Callable[[], str]:
        """A stock or price update of the products just upserted (sent once they are there: an
        update of a product SALESmanago does not hold yet is refused by the sandbox)."""

        def probe() -> str:
            command, attributes = sample_sqs(sample)
            command = with_product_prefix(command, f"sqs-{run_id}")
            sqs.send_message(QueueUrl=commands, MessageBody=json.dumps(command), MessageAttributes=attributes)
            wanted = {item["id"]: item[field] for item in command["data"]}

            def stored() -> bool:
                held = sandbox.products(world.catalog)
                return all(pid in held and held[pid].get(stored_as) == value for pid, value in wanted.items())

            wait_for(f"{stored_as} in the sandbox", stored)
            return f"{len(wanted)} products' {stored_as} set"

        return probe

    def bad_record_parked() -> str:
        message = wait_for("bad record in the DLQ", lambda: dlq.find(f"bad-{run_id}"))
        return f"in the DLQ, bridge-failure {failure_reason(message)[:80]}"

    table.check("sqs: contact.upsert", contact_applied("sqs-upsert"))
    table.check("sqs: event.create", event_applied)
    table.check("sqs: products.upsert", products_applied)
    table.check("sqs: products.stock", update_applied("sqs_products_stock.json", "quantity", "quantity"))
    table.check("sqs: products.price", update_applied("sqs_products_price.json", "price", "price"))
    table.check("sqs: bad record -> DLQ", bad_record_parked)
    table.check("sqs backfill queue: contact.upsert", contact_applied("sqs-backfill"))


def queues_settled(emulator: Emulator, stack: Stack) -> bool:
    """No message waiting or in flight in the commands and backfill queues."""
    sqs = emulator.client("sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    for output in ("CommandsQueueUrl", "BackfillQueueUrl"):
        attributes = sqs.get_queue_attributes(QueueUrl=stack.outputs[output], AttributeNames=names)[
            "Attributes"
        ]
        if any(int(attributes.get(name, 0)) for name in names):
            return False
    return True


def transient_path(world: World, table: Table) -> None:
    """SALESmanago fails every attempt of one invocation: the record comes back after the (shortened)
    visibility timeout and is applied on its second receive."""
    emulator, sandbox, stack, run_id = world.emulator, world.sandbox, world.direct, world.run_id
    client = world.client_id("demo-shop")
    upsert, attributes = sample_sqs("sqs_contact_upsert.json")
    address = email("sqs-transient", run_id)
    attempts = 1 + CLIENT_RETRIES
    # An earlier path's record still in flight (or received again) would take one of the faults.
    wait_for("the source queues to settle", lambda: queues_settled(emulator, stack))
    sandbox.inject(Fault(kind="status", status=503, path="/api/contact/upsert", times=attempts))
    sent_at = time.time()
    emulator.client("sqs").send_message(
        QueueUrl=stack.outputs["CommandsQueueUrl"],
        MessageBody=json.dumps(with_email(upsert, address)),
        MessageAttributes=attributes,
    )

    def redelivered() -> str:
        wait_for("the faults used up", lambda: sandbox.faults_pending() == 0)
        wait_for(
            "the contact after redelivery",
            lambda: contact_of(sandbox, client, address),
            timeout=WAIT_S + 2 * VISIBILITY_TIMEOUT_S,
        )
        calls = [r for r in sandbox.requests_to("/api/contact/upsert") if address in json.dumps(r.body)]
        refused = [r for r in calls if r.status == 503]
        applied = [r for r in calls if r.status == 200]
        if len(refused) != attempts or not applied:
            raise AssertionError(
                f"{len(refused)} refused and {len(applied)} applied calls, expected {attempts} and 1"
            )
        # The next receive comes at least the visibility timeout after the send; the client's own
        # retries within the first invocation take a few seconds.
        waited = applied[0].received_at - sent_at
        if waited < VISIBILITY_TIMEOUT_S:
            raise AssertionError(f"applied {waited:.1f} s after the send: within the first receive")
        return (
            f"{len(refused)} calls refused (503), applied on the next receive, {waited:.0f} s after the send"
        )

    table.check("sqs: transient failure -> redelivered, applied", redelivered)


def terminal_queue(stack: Stack) -> tuple[str, str]:
    """Where a failed SNS or EventBridge command ends: the failure queue, or with BufferedIntake (the
    commands queue's consumer handles it) the commands DLQ."""
    if stack.buffered:
        return "DLQ", stack.outputs["CommandsDeadLetterQueueUrl"]
    return "failure queue", stack.outputs["FailureQueueUrl"]


Sender = Callable[[str, bool], None]


def sns_sender(world: World, stack: Stack) -> Sender:
    """Publish the sample upsert for an address (or, unknown=True, the unknown-group sample) to the topic."""
    upsert, upsert_attributes = sample_sns("sns_contact_upsert.json")
    unknown_group, unknown_attributes = sample_sns("sns_unknown_group.json")

    def send(address: str, unknown: bool) -> None:
        command, attributes = (unknown_group, unknown_attributes) if unknown else (upsert, upsert_attributes)
        world.emulator.client("sns").publish(
            TopicArn=stack.outputs["CommandsTopicArn"],
            Message=json.dumps(with_email(command, address)),
            MessageAttributes=attributes,
        )

    return send


def eventbridge_sender(world: World, stack: Stack) -> Sender:
    """Put the sample upsert for an address (or, unknown=True, for a group nobody has) on the bus."""
    detail_type, detail = sample_eventbridge("eventbridge_contact_upsert.json")

    def send(address: str, unknown: bool) -> None:
        body = with_email(detail, address)
        if unknown:
            body["group_key"] = "no-such-shop"
        entry = {"Source": "e2e.shop", "DetailType": detail_type, "Detail": json.dumps(body)}
        reply = world.emulator.client("events").put_events(
            Entries=[{**entry, "EventBusName": stack.outputs["EventBusName"]}]
        )
        if reply.get("FailedEntryCount"):
            raise RuntimeError(f"put_events refused the entry: {reply}")

    return send


def source_paths(world: World, table: Table, stack: Stack, source: str, send: Sender) -> None:
    """One SNS or EventBridge source of one stack: a command applied, an unknown group parked."""
    label = f"{'buffered' if stack.buffered else 'direct'} {source}"
    client = world.client_id("demo-shop")
    where, queue_url = terminal_queue(stack)
    failures = Parked(world.emulator, queue_url)
    address = email(label.replace(" ", "-"), world.run_id)
    marker = email(f"{label.replace(' ', '-')}-unknown", world.run_id)
    send(address, False)
    send(marker, True)

    def applied() -> str:
        wait_for("contact in the sandbox", lambda: contact_of(world.sandbox, client, address))
        return "contact upserted"

    def parked() -> str:
        message = wait_for(f"unknown group in the {where}", lambda: failures.find(marker))
        return f"in the {where}, bridge-failure {failure_reason(message)[:80]}"

    table.check(f"{label}: contact.upsert", applied)
    table.check(f"{label}: unknown group -> {where}", parked)


def async_retry_paths(world: World, table: Table) -> None:
    """SNS and EventBridge invoke asynchronously: a transient failure raises, Lambda invokes again and
    the command is applied; one that outlasts every retry goes to the on-failure destination."""
    emulator, sandbox, stack, run_id = world.emulator, world.sandbox, world.direct, world.run_id
    client = world.client_id("demo-shop")
    attempts = 1 + CLIENT_RETRIES
    publish_sns, put_event = sns_sender(world, stack), eventbridge_sender(world, stack)

    def retried(send: Sender, path: str) -> Callable[[], str]:
        def probe() -> str:
            address = email(path, run_id)
            sandbox.inject(Fault(kind="status", status=503, path="/api/contact/upsert", times=attempts))
            send(address, False)
            wait_for("the contact after a retry", lambda: contact_of(sandbox, client, address))
            calls = [r for r in sandbox.requests_to("/api/contact/upsert") if address in json.dumps(r.body)]
            refused = sum(r.status == 503 for r in calls)
            if refused != attempts:
                raise AssertionError(f"{refused} calls refused, expected {attempts} (one invocation's)")
            return f"{refused} calls refused (503) in the first invocation, applied by the async retry"

        return probe

    def exhausted() -> str:
        address = email("sns-exhausted", run_id)
        invocations = 1 + ASYNC_RETRIES
        sandbox.inject(
            Fault(kind="status", status=503, path="/api/contact/upsert", times=attempts * invocations)
        )
        publish_sns(address, False)
        failures = Parked(emulator, stack.outputs["FailureQueueUrl"])
        message = wait_for("the on-failure record in the failure queue", lambda: failures.find(address))
        record = json.loads(message["Body"])
        condition = record.get("requestContext", {}).get("condition")
        if condition != "RetriesExhausted":
            raise AssertionError(f"not an on-failure destination record: {message['Body'][:200]}")
        if contact_of(sandbox, client, address) is not None:
            raise AssertionError("applied although every call was refused")
        calls = [r for r in sandbox.requests_to("/api/contact/upsert") if address in json.dumps(r.body)]
        if len(calls) != attempts * invocations:
            raise AssertionError(
                f"{len(calls)} calls, expected {attempts} in each of {invocations} invocations"
            )
        return f"{len(calls)} calls refused in {invocations} invocations, {condition} record in the queue"

    table.check("direct sns: transient failure -> retried, applied", retried(publish_sns, "sns-transient"))
    table.check(
        "direct eventbridge: transient failure -> retried, applied", retried(put_event, "eb-transient")
    )
    table.check("direct sns: failing past its retries -> failure queue", exhausted)
    sandbox.clear_faults()


def api_paths(world: World, table: Table) -> None:
    sandbox, run_id = world.sandbox, world.run_id
    # The emulator serves a stage at /restapis/{id}/{stage}/_user_request_ (ApiUrl names AWS's host).
    stage = world.direct.outputs["ApiUrl"].rstrip("/").rsplit("/", 1)[1]
    url = f"{world.emulator.url}/restapis/{world.direct.outputs['RestApiId']}/{stage}/_user_request_"
    key = world.keys["demo-shop"][1]
    other_key = world.keys["outlet"][1]
    client = world.client_id("demo-shop")
    address = email("api", run_id)

    def upsert() -> str:
        status, body = api_call(
            f"{url}/contacts", "POST", key, with_email(sample_api_body("api_contact_upsert.json"), address)
        )
        expect_status(status, body, 200)
        wait_for("contact in the sandbox", lambda: contact_of(sandbox, client, address), timeout=5)
        return "200, contact upserted"

    def event() -> str:
        body = with_email(sample_api_body("api_event_create.json"), address)
        body["data"]["externalId"] = f"order-{run_id}"
        status, reply = api_call(f"{url}/events", "POST", key, body)
        expect_status(status, reply, 200)
        return f"200, {len(sandbox.events(address, client))} event(s) in the sandbox"

    def products() -> str:
        body = with_product_prefix(sample_api_body("api_products_upsert.json"), f"api-{run_id}")
        status, reply = api_call(f"{url}/products", "POST", key, body)
        expect_status(status, reply, 200)
        ids = {product["id"] for product in body["data"]}
        if not ids <= set(sandbox.products(world.catalog)):
            raise AssertionError("the products are not in the sandbox")
        return f"200, {len(ids)} products upserted"

    def update(route: str, sample: str, field: str, stored_as: str) -> Callable[[], str]:
        def probe() -> str:
            body = with_product_prefix(sample_api_body(sample), f"api-{run_id}")
            status, reply = api_call(f"{url}/products/{route}", "POST", key, body)
            expect_status(status, reply, 200)
            held = sandbox.products(world.catalog)
            for item in body["data"]:
                if held.get(item["id"], {}).get(stored_as) != item[field]:
                    raise AssertionError(f"{item['id']}: {stored_as} not set in the sandbox")
            return f"200, {len(body['data'])} products' {stored_as} set"

        return probe

    def by_email() -> str:
        status, reply = api_call(
            f"{url}/contact_by_email", "GET", key, query=f"?group_key=demo-shop&email={address}"
        )
        expect_status(status, reply, 200)
        return "200, contact found"

    def by_id() -> str:
        contact = contact_of(sandbox, client, address)
        if contact is None:
            raise AssertionError("no contact to read")
        status, reply = api_call(f"{url}/contact/{contact['id']}", "GET", key, query="?group_key=demo-shop")
        expect_status(status, reply, 200)
        return "200, contact found"

    def delete() -> str:
        body = with_email(sample_api_body("api_contact_delete.json"), address)
        status, reply = api_call(f"{url}/contacts", "DELETE", key, body)
        expect_status(status, reply, 200)
        if contact_of(sandbox, client, address) is not None:
            raise AssertionError("the contact is still there")
        return "200, contact deleted"

    def other_tenant() -> str:
        body = with_email(sample_api_body("api_contact_upsert.json"), email("api-other", run_id))
        status, reply = api_call(f"{url}/contacts", "POST", other_key, body)
        expect_status(status, reply, 403)
        if contact_of(sandbox, client, email("api-other", run_id)) is not None:
            raise AssertionError("the other tenant's key wrote the contact")
        return f"403 {reply.get('error', {}).get('code')}, nothing written"

    def missing_key() -> str:
        status, reply = api_call(f"{url}/contacts", "POST", None, sample_api_body("api_contact_upsert.json"))
        expect_status(status, reply, 403)
        code = reply.get("error", {}).get("code")
        if code != "forbidden":
            raise AssertionError(f"the gateway's answer is not the template's GatewayResponse: {reply}")
        return "403 forbidden (the template's INVALID_API_KEY response)"

    table.check("api: POST /contacts", upsert)
    table.check("api: POST /events", event)
    table.check("api: POST /products", products)
    table.check(
        "api: POST /products/stock", update("stock", "api_products_stock.json", "quantity", "quantity")
    )
    table.check("api: POST /products/price", update("price", "api_products_price.json", "price", "price"))
    table.check("api: GET /contact_by_email", by_email)
    table.check("api: GET /contact/{sm_id}", by_id)
    table.check("api: DELETE /contacts", delete)
    table.check("api: another tenant's key -> 403", other_tenant)
    table.check("api: no API key -> 403", missing_key)


def iam_is_enforced(emulator: Emulator) -> str:
    """AUTH=true in effect: a user of the emulator's account without any policy is refused a read of
    a tenant's config (so the functions' calls are checked against their roles' policies too)."""
    iam = emulator.client("iam")
    name = f"e2e-no-grants-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    ssm = boto3.client(
        "ssm",
        endpoint_url=emulator.url,
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    try:
        ssm.get_parameter(Name=f"/salesmanago/{STAGE}/groups/demo-shop", WithDecryption=True)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in {"AccessDenied", "AccessDeniedException"}:
            raise
        return f"a user without grants gets {code}"
    raise AssertionError("a user without any policy read a tenant's config: IAM is not enforced")


def runtime_has_no_layer_packages() -> str:
    """The functions run with .tools/lambda-runtime's interpreter: prove it cannot import what only the
    layer should provide, so a dependency missing from the layer fails the run as it would in AWS."""
    python = str(TOOLS / "lambda-runtime" / "bin" / "python")
    for module in LAYER_ONLY_MODULES:
        command = [python, "-c", f"import {module}"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode == 0 or "ModuleNotFoundError" not in result.stderr:
            raise AssertionError(f"the runtime interpreter imports {module} without the layer")
    return f"{len(LAYER_ONLY_MODULES)} layer packages not importable without the layer"


def emulator_leftovers() -> set[str]:
    """ministack-* entries in the system's temporary directory (the emulator's default place)."""
    return {path.name for path in Path(tempfile.gettempdir()).glob("ministack-*")}


def left_behind(emulator: Emulator, workdir: Path, leftovers_before: set[str]) -> str:
    """The emulator's process group (it and every function worker) is gone, and so is the run's directory
    (the function sandboxes, ministack-lambda-*, were made in it: TMPDIR); none were made elsewhere."""
    new = emulator_leftovers() - leftovers_before
    if new:
        raise AssertionError(f"the emulator left {sorted(new)} in {tempfile.gettempdir()}")
    if emulator.group_alive():
        raise AssertionError("processes of the emulator's group still run 10 s after the stop")
    if workdir.exists():
        raise AssertionError(f"{workdir} still exists")
    return f"process group gone, {workdir.name} removed"


@contextlib.contextmanager
def run_directory() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="bridge-e2e-"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.run", description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, required=True, help="sam build's output for this machine")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=[*DRIVER_ADAPTERS, *EMULATOR_ADAPTERS],
        help="leave an adapter out, to see the gap it closes (tests/e2e/README.md)",
    )
    args = parser.parse_args(argv)
    without = set(args.without)
    # Stopped from outside (a CI timeout, Ctrl-C, a background job's kill): still clean up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    table = Table()
    run_id = uuid.uuid4().hex[:8]
    table.check("runtime: layer packages only from the layer", runtime_has_no_layer_packages)
    leftovers_before = emulator_leftovers()
    with run_directory() as workdir:
        emulator = Emulator(workdir)
        groups = sample_groups()
        sandbox = Sandbox(accounts=[Account.from_group_config(config) for config in groups.values()])
        sandbox.start()
        try:
            emulator.start(without & set(EMULATOR_ADAPTERS))
            env = tool_environment(emulator, workdir)
            bucket = f"e2e-artifacts-{run_id}"
            emulator.client("s3").create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            direct, buffered = Stack(f"e2e-direct-{run_id}", False), Stack(f"e2e-buffered-{run_id}", True)
            for stack in (direct, buffered):
                deploy(stack, args.build_dir.resolve(), emulator, env, bucket)
                if "esm_types" not in without:
                    adapt_event_source_mappings(emulator, stack)
            if "gateway_responses" not in without:
                adapt_gateway_responses(emulator, direct)
            print(
                f"deployed {direct.name} and {buffered.name} in {time.monotonic() - started:.0f} s",
                flush=True,
            )
            keys = create_api_keys(emulator, list(groups), [direct, buffered])
            put_tenants(groups, sandbox.url, {group: key[0] for group, key in keys.items()}, env, workdir)
            world = World(emulator, sandbox, direct, buffered, groups, keys, run_id)
            table.check("iam: enforced", lambda: iam_is_enforced(emulator))
            sqs_paths(world, table)
            transient_path(world, table)
            for stack in (direct, buffered):
                source_paths(world, table, stack, "sns", sns_sender(world, stack))
                source_paths(world, table, stack, "eventbridge", eventbridge_sender(world, stack))
                if not stack.buffered:
                    async_retry_paths(world, table)
            api_paths(world, table)
        except Exception as exc:
            table.rows.append(Row("setup", "FAIL", f"{type(exc).__name__}: {exc}"[:600]))
        finally:
            emulator.stop()
            sandbox.stop()
            if not table.passed and emulator.log.exists():
                print(f"\nlast lines of the emulator's log:\n{emulator.log.read_text()[-4000:]}")
    table.check(
        "cleanup: no process, no temporary directory left",
        lambda: left_behind(emulator, workdir, leftovers_before),
    )
    table.print(time.monotonic() - started)
    return 0 if table.passed else 1


if __name__ == "__main__":
    sys.exit(main())
