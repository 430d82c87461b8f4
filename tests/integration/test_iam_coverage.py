"""Every AWS call each function makes, judged against what the template grants that function.

The handlers run as deployed: the environment the template gives them, the group configs and
the API key index in (moto's) SSM, the idempotency table and the queues named as the template
names them. Each call is recorded at botocore's level and checked with moto's IAM evaluator
against the function's policies in the SAM-translated template (tests/iam_policies.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.runner import load_handler
from tests.conftest import FakeContext, load_event
from tests.iam_policies import Call, Grant, Template, exercised, grants, permitted, recording_aws_calls
from tests.template.sam_translation import load_sam_template, translate

# Grants that no handler call uses because AWS uses them on the function's behalf. Each has a
# comment beside it in template.yaml saying so; anything else unused must leave the template.
ON_BEHALF = {
    "kms:Decrypt": "SSM decrypts the group SecureStrings with the caller's credentials",
    "sqs:ReceiveMessage": "the SQS event source mapping polls the queues as the function's role",
    "sqs:DeleteMessage": "the SQS event source mapping deletes what the function reported done",
    "sqs:GetQueueAttributes": "the SQS event source mapping reads the queues' settings",
}
ON_FAILURE_POLICY = "EventInvokeConfigOnFailureSQSPolicy"  # SAM's, for the on-failure destination
AWS_MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": "Lambda writes the logs",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": "the X-Ray daemon sends the traces",
}
FUNCTIONS = {  # logical id → (handler folder, sample events)
    "SqsConsumerFunction": (
        "sqs_consumer",
        ["sqs_batch_mixed.json", "sqs_event_create.json", "sqs_bad_email.json", "sqs_unmapped_field.json"],
    ),
    "SnsConsumerFunction": ("sns_consumer", ["sns_event_create.json", "sns_unknown_group.json"]),
    "EventBridgeConsumerFunction": (
        "eventbridge_consumer",
        ["eventbridge_event_create.json", "eventbridge_missing_field.json"],
    ),
    "ApiFunction": (
        "api",
        [
            "api_contact_upsert.json",
            "api_event_create.json",
            "api_products_upsert.json",
            "api_contact_get.json",
            "api_contact_by_email.json",
            "api_contact_delete.json",
        ],
    ),
}


@pytest.fixture(scope="module")
def template() -> Template:
    # The sandbox listens on loopback: the stack as make e2e deploys it (AllowLoopbackEndpoints).
    return Template(translate(load_sam_template()), parameters={"AllowLoopbackEndpoints": "true"})


@pytest.fixture
def deployed(
    template: Template, aws: Any, sandbox: Any, sample_groups: dict[str, Any], tmp_path: Path
) -> Template:
    """The stack's queues, table and tenants in moto, as the template and `bridge groups put` make them."""
    import boto3

    from bridge_cli.key_index import sync_index
    from salesmanago_bridge.settings import Settings

    for queue_id in (k for k, r in template.resources.items() if r["Type"] == "AWS::SQS::Queue"):
        aws.create_queue(QueueName=queue_id)
    table = template.resolve(template.resources["IdempotencyTable"]["Properties"])
    boto3.client("dynamodb").create_table(
        TableName="IdempotencyTable",
        BillingMode=table["BillingMode"],
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
    )
    settings = Settings.model_validate({"STAGE": template.parameters["Stage"]})
    ssm = boto3.client("ssm")
    for key, config in sample_groups.items():
        config["endpoint"] = config["products_endpoint"] = sandbox.url
        ssm.put_parameter(
            Name=settings.group_parameter_name(key), Value=json.dumps(config), Type="SecureString"
        )
    sync_index(ssm, settings)
    # The pseudonym key as the template makes it; its ARN (a random suffix) is moto's to choose.
    secret = template.resolve(template.resources["PseudonymKey"]["Properties"])
    template.physical_ids["PseudonymKey"] = boto3.client("secretsmanager").create_secret(
        Name=secret["Name"], SecretString="generated-at-deploy"
    )["ARN"]
    return template


def _event_record(event_id: str) -> dict[str, Any]:
    """The SQS sample event under another id: a new event for the idempotency guard."""
    event = load_event("sqs_event_create.json")
    record = event["Records"][0]
    body = json.loads(record["body"])
    body["id"] = body["data"]["externalId"] = event_id
    record["body"], record["messageId"] = json.dumps(body), f"message-{event_id}"
    return event


def failure_paths(sandbox: Any) -> Iterator[dict[str, Any]]:
    """Events whose guard must release or reconcile a claim (the idempotency table's other calls)."""
    from local.sandbox import Fault

    # SALESmanago unavailable: the send surely had no effect, so the claim is released.
    sandbox.inject(Fault("status", status=503, path="ContactExtEvent", times=20))
    yield _event_record("iam-released")
    sandbox.clear_faults()
    # The connection drops after SALESmanago applied it: the outcome is unknown, and the redelivery
    # re-reads the record before taking it over to reconcile.
    sandbox.inject(Fault("drop", path="ContactExtEvent", apply=True, times=20))
    yield _event_record("iam-unknown")
    sandbox.clear_faults()
    yield _event_record("iam-unknown")
    # SALESmanago refuses, quoting the e-mail: the reason carries its pseudonym, which takes the key.
    sandbox.inject(Fault("success_false", path="ContactExtEvent", message="Contact a@example.com is blocked"))
    yield _event_record("iam-quoted")
    sandbox.clear_faults()


def run_as_deployed(
    template: Template, function_id: str, monkeypatch: pytest.MonkeyPatch, sandbox: Any
) -> list[Call]:
    """Run the function's sample events with its template environment; the AWS calls it made."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base

    from salesmanago_bridge.api import get_request_guard
    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    folder, events = FUNCTIONS[function_id]
    monkeypatch.delenv("SALESMANAGO_GROUPS_FILE", raising=False)
    for key, value in template.environment(function_id).items():
        monkeypatch.setenv(key, value)
    with recording_aws_calls() as calls:
        for cache in (get_settings, get_dispatcher, get_request_guard):
            cache.cache_clear()
        parameters.clear_caches()
        base.DEFAULT_PROVIDERS.clear()  # Powertools' SSM client is made again, inside the recording
        handler = load_handler(folder).lambda_handler
        for name in events:
            handler(load_event(name), FakeContext())
        if folder == "sqs_consumer":
            for event in failure_paths(sandbox):
                handler(event, FakeContext())
    return calls


@pytest.fixture
def calls_by_function(
    deployed: Template, monkeypatch: pytest.MonkeyPatch, sandbox: Any
) -> dict[str, list[Call]]:
    return {
        function_id: run_as_deployed(deployed, function_id, monkeypatch, sandbox) for function_id in FUNCTIONS
    }


def test_every_function_of_the_template_is_driven(template: Template) -> None:
    assert sorted(FUNCTIONS) == template.function_ids()


def test_every_aws_call_is_allowed_by_the_function_policies(
    deployed: Template, calls_by_function: dict[str, list[Call]]
) -> None:
    # Then: the recording saw the calls that matter (else this test could not fail)
    everything = [call.action for calls in calls_by_function.values() for call in calls]
    for action in (
        "ssm:GetParameter",
        "dynamodb:PutItem",
        "sqs:SendMessage",
        "secretsmanager:GetSecretValue",
    ):
        assert action in everything, f"no {action} recorded: is the recorder attached?"
    refused = [
        f"{function_id}: {call.action} on {arn}"
        for function_id, calls in calls_by_function.items()
        for call in calls
        for arn in call.resources
        if not permitted(deployed.policies(function_id), call.action, arn)
    ]
    assert refused == [], "calls IAM would refuse:\n" + "\n".join(refused)
    api_reads = {arn for call in calls_by_function["ApiFunction"] for arn in call.resources}
    assert any("/api-keys/" in arn for arn in api_reads), "the API should read its key's index entry"


def test_every_grant_is_used_by_the_code_or_by_aws_on_its_behalf(
    deployed: Template, calls_by_function: dict[str, list[Call]]
) -> None:
    # A policy shared by several functions is used if any of them uses it.
    users: dict[str, list[Call]] = {}
    documents: dict[str, dict[str, Any]] = {}
    for function_id, calls in calls_by_function.items():
        for name, document in deployed.policies(function_id).items():
            users.setdefault(name, []).extend(calls)
            documents[name] = document
    unused: list[Grant] = [grant for grant in grants(documents) if not exercised(grant, users[grant.policy])]

    unexplained = [
        f"{grant.policy}: {grant.action} on {grant.resource}"
        for grant in unused
        if grant.action not in ON_BEHALF and not grant.policy.endswith(ON_FAILURE_POLICY)
    ]
    assert unexplained == [], "grants no call uses (remove them, or explain them):\n" + "\n".join(unexplained)
    managed = {name for name, document in documents.items() if not document}
    assert managed == set(AWS_MANAGED)


def test_each_grant_used_on_the_function_behalf_says_so_in_the_template() -> None:
    lines = (Path(__file__).resolve().parents[2] / "template.yaml").read_text().splitlines()
    explained = [*ON_BEHALF, "DestinationConfig:"]
    for needle in explained:
        at = [
            n for n, line in enumerate(lines) if needle in line and ("Action" in line or needle.endswith(":"))
        ]
        assert at, f"{needle} is not in template.yaml any more: drop it from ON_BEHALF"
        for n in at:
            comment = " ".join(lines[max(0, n - 3) : n])
            assert "on the function's behalf" in comment, f"template.yaml line {n + 1}: say who uses {needle}"


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """The bridge's log lines during the test, formatted as Lambda would ship them (JSON)."""
    import logging

    from salesmanago_bridge.observability import logger

    lines: list[str] = []
    formatter = logger.registered_handler.formatter

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(formatter.format(record) if formatter else record.getMessage())

    keep = Keep()
    logger._logger.addHandler(keep)
    yield lines
    logger._logger.removeHandler(keep)


def test_api_refused_by_aws_answers_503_and_logs_the_refused_call(
    deployed: Template, monkeypatch: pytest.MonkeyPatch, log_lines: list[str]
) -> None:
    # Given the deployed API whose role may not read SSM (the shape of last round's 503s)
    from aws_lambda_powertools.utilities import parameters
    from botocore.exceptions import ClientError

    from salesmanago_bridge.dispatch import get_dispatcher
    from salesmanago_bridge.settings import get_settings

    def refuse(self: Any, name: str, **kwargs: Any) -> str:
        message = f"User: arn:aws:sts::{name} is not authorized to perform: ssm:GetParameter"
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, "GetParameter")

    monkeypatch.delenv("SALESMANAGO_GROUPS_FILE", raising=False)
    for key, value in deployed.environment("ApiFunction").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(parameters.SSMProvider, "_get", refuse)
    parameters.clear_caches()
    get_settings.cache_clear()
    get_dispatcher.cache_clear()
    event = load_event("api_contact_upsert.json")
    email = json.loads(event["body"])["data"]["email"]
    handler = load_handler("api").lambda_handler
    log_lines.clear()

    # When
    reply = handler(event, FakeContext())

    # Then: a 503 the caller may retry, and a log line that names the refused call, nothing more
    assert reply["statusCode"] == 503
    headers = {k: v[-1] for k, v in (reply.get("multiValueHeaders") or {}).items()}
    assert int({**headers, **(reply.get("headers") or {})}["Retry-After"]) >= 1
    logged = [json.loads(line) for line in log_lines]
    refused = [line for line in logged if line.get("message") == "API request refused"]
    assert refused, logged
    assert refused[0]["aws_operation"] == "GetParameter"
    assert refused[0]["aws_error_code"] == "AccessDeniedException"
    everything = json.dumps(logged) + json.dumps(reply)
    assert email not in everything
    assert "not authorized" not in everything  # AWS's message (ARNs, names) stays out
