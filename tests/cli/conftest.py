"""CLI fixtures: moto for AWS, a stack's outputs, the command line run in-process, command files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge_cli.__main__ import main
from bridge_cli.aws import AwsContext
from salesmanago_bridge.privacy import pseudonymize, use_key_loader

REGION = "eu-central-1"
STACK = "bridge-test"
PSEUDONYM_KEY = "the-stage-pseudonym-key-made-at-deploy"


@dataclass
class Result:
    code: int
    out: str
    err: str


class FakeCloudFormation:
    """DescribeStacks as CloudFormation answers it (moto's CloudFormation cannot deploy SAM)."""

    def __init__(self, stacks: dict[str, dict[str, str]]) -> None:
        self.stacks = stacks

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName not in self.stacks:
            error = {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}
            raise ClientError({"Error": error}, "DescribeStacks")
        outputs = [{"OutputKey": k, "OutputValue": v} for k, v in self.stacks[StackName].items()]
        return {"Stacks": [{"StackName": StackName, "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}]}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Files the commands write land in a temporary directory; retries never sleep for real."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRIDGE_STACK", raising=False)
    monkeypatch.delenv("STAGE", raising=False)
    monkeypatch.setattr("bridge_cli.publishers.sleep", lambda seconds: None)


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``services["sqs"] = wrapper`` makes the commands use ``wrapper`` as their SQS client."""
    replaced: dict[str, Any] = {}
    original = AwsContext.client

    def client(self: AwsContext, service: str) -> Any:
        return replaced[service] if service in replaced else original(self, service)

    monkeypatch.setattr(AwsContext, "client", client)
    return replaced


_SHARED: dict[str, Any] = {}


def _shared_botocore_session() -> Any:
    # One botocore session for every moto test: it parses the service models once, which makes
    # creating clients ten times faster than with a new session per command.
    if "session" not in _SHARED:
        import botocore.session

        _SHARED["session"] = botocore.session.get_session()
    return _SHARED["session"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto for every AWS service; the commands' sessions share the parsed service models."""
    import boto3
    from moto import mock_aws

    def session(self: AwsContext) -> Any:
        if self._session is None:
            # Always an explicit region: boto3 writes it into the shared botocore session.
            shared = _shared_botocore_session()
            self._session = boto3.Session(botocore_session=shared, region_name=self.region or REGION)
        return self._session

    with mock_aws():
        monkeypatch.setattr(AwsContext, "session", property(session))
        yield boto3.Session(botocore_session=_shared_botocore_session(), region_name=REGION)


@pytest.fixture
def stack(aws: Any, services: dict[str, Any]) -> dict[str, str]:
    """The bridge's queues, topic and bus in moto, and a stack ``bridge-test`` whose outputs name them."""
    sqs = aws.client("sqs")
    names = {
        "CommandsQueueUrl": "bridge-commands",
        "BackfillQueueUrl": "bridge-backfill",
        "CommandsDeadLetterQueueUrl": "bridge-commands-dlq",
        "FailureQueueUrl": "bridge-failures",
    }
    outputs = {key: sqs.create_queue(QueueName=name)["QueueUrl"] for key, name in names.items()}
    outputs["CommandsTopicArn"] = aws.client("sns").create_topic(Name="bridge-commands")["TopicArn"]
    outputs["EventBusName"] = (
        aws.client("events").create_event_bus(Name="bridge-commands")["EventBusArn"].split("/")[-1]
    )
    outputs["GroupConfigPath"] = "/salesmanago/dev/groups/"
    services["cloudformation"] = FakeCloudFormation({STACK: outputs})
    return outputs


@pytest.fixture
def logged_pseudonym(aws: Any) -> Callable[[str], str]:
    """The stage's pseudonym key in moto (as the template makes it); returns what the functions log."""
    aws.client("secretsmanager").create_secret(
        Name="salesmanago/dev/pseudonym-key", SecretString=PSEUDONYM_KEY
    )

    def pseudonym(email: str) -> str:
        previous = use_key_loader(lambda: PSEUDONYM_KEY)
        try:
            return pseudonymize(email)
        finally:
            use_key_loader(previous)

    return pseudonym


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``cli("send", path, "--stack", STACK)`` → Result(code, out, err), in-process."""

    def run(*argv: Any) -> Result:
        code = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def contact(n: int, group: str = "demo-shop", **data: Any) -> dict[str, Any]:
    return {
        "action": "contact.upsert",
        "group_key": group,
        "data": {"email": f"user{n}@example.com", "name": f"User {n}", **data},
    }


def event(n: int, group: str = "demo-shop", **data: Any) -> dict[str, Any]:
    return {
        "action": "event.create",
        "group_key": group,
        "data": {
            "email": f"user{n}@example.com",
            "contactExtEventType": "PURCHASE",
            "value": 10 + n,
            "date": 1_750_000_000_000 + n,
            "externalId": f"order-{n}",
            **data,
        },
    }


def write_jsonl(path: Path, commands: list[Any]) -> Path:
    path.write_text("".join((c if isinstance(c, str) else json.dumps(c)) + "\n" for c in commands))
    return path


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message of a queue (received and deleted): ``[{"body", "attributes", ...}]``."""
    found = []
    while True:
        reply = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        messages = reply.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def bodies(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in messages]


def queue_count(sqs: Any, url: str) -> int:
    reply = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    return sum(int(v) for v in reply["Attributes"].values())
