"""Intake only its publishers reach (issue 16), proven on the translated template's own policies.

A small evaluator applies the topic's and the queues' resource policies the way IAM does for a
resource policy (an explicit Deny wins; otherwise an Allow must match), to the requests that must
keep working (SNS into SQS, EventBridge into SQS, Lambda's on-failure destination, the redrive of
``bridge dlq redrive``, the event source mapping's polling) and to the ones that must not (a
publisher outside the account or the list, any request without TLS). Requests by principals of
the account are also allowed by their IAM policies, so for them the test is that nothing denies.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from typing import Any

import pytest
import template_checks as checks
from sam_translation import ROOT

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
DIRECT = {"BufferedIntake": "false"}
BUFFERED = {"BufferedIntake": "true"}
PUBLISHER = f"arn:aws:iam::{ACCOUNT}:role/shop-publisher"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/operator"
STRANGER = f"arn:aws:iam::{OTHER_ACCOUNT}:role/stranger"
QUEUES = ("CommandsQueue", "BackfillQueue", "CommandsDeadLetterQueue", "FailureQueue")


def arn_of(logical_id: str) -> str:
    return f"arn-of:{logical_id}"


def render(cfn: dict[str, Any], value: Any, params: dict[str, Any]) -> Any:
    """Template values as concrete ones: parameters, the account id, ``arn-of:<Id>`` for resources."""
    value = checks.pick_if(cfn, value, params)
    if isinstance(value, list):  # an Fn::If branch of AWS::NoValue leaves no item
        return [render(cfn, item, params) for item in value if item != {"Ref": "AWS::NoValue"}]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            if arg in cfn.get("Parameters", {}):
                return checks.resolve(cfn, value, params=params)
            return {"AWS::AccountId": ACCOUNT}.get(arg, arn_of(arg))
        if key == "Fn::GetAtt":
            return arn_of(arg[0] if isinstance(arg, list) else arg.split(".")[0])
        if key == "Fn::Sub" and isinstance(arg, str):
            return arg.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Partition}", "aws")
        if key == "Fn::Split":
            separator, text = arg
            return str(render(cfn, text, params)).split(separator)
    return {key: render(cfn, item, params) for key, item in value.items()}


@dataclass(frozen=True)
class Request:
    principal: str  # an ARN, or a service principal such as sns.amazonaws.com
    action: str
    source_arn: str | None = None
    secure: bool = True

    @property
    def account(self) -> str | None:
        return self.principal.split(":")[4] if self.principal.startswith("arn:") else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*" or principal == {"AWS": "*"}:
        return True
    services = _as_list(principal.get("Service", []))
    if request.principal in services:
        return True
    for entry in _as_list(principal.get("AWS", [])):
        root = entry if entry.endswith(":root") else f"arn:aws:iam::{entry}:root" if entry.isdigit() else None
        if root is not None and request.account == root.split(":")[4]:
            return True
        if entry == request.principal:
            return True
    return False


def _condition_holds(condition: dict[str, Any], request: Request) -> bool:
    context = {
        "aws:sourcearn": request.source_arn,
        "aws:securetransport": "true" if request.secure else "false",
        "aws:principalarn": request.principal if request.principal.startswith("arn:") else None,
    }
    for operator, tests in condition.items():
        for key, wanted in tests.items():
            actual = context[key.lower()]
            wanted_values = [str(w).lower() if operator == "Bool" else str(w) for w in _as_list(wanted)]
            if operator in ("ArnEquals", "ArnLike", "StringEquals"):
                if actual is None or not any(fnmatch.fnmatchcase(actual, w) for w in wanted_values):
                    return False
            elif operator in ("ArnNotEquals", "ArnNotLike", "StringNotEquals"):
                # As IAM: a key absent from the request makes a Not operator true.
                if actual is not None and any(fnmatch.fnmatchcase(actual, w) for w in wanted_values):
                    return False
            elif operator == "Bool":
                if actual not in wanted_values:
                    return False
            else:
                raise AssertionError(f"the evaluator does not know the condition operator {operator}")
    return True


def _matches(statement: dict[str, Any], request: Request) -> bool:
    actions = [a.lower() for a in _as_list(statement["Action"])]
    return (
        any(fnmatch.fnmatchcase(request.action.lower(), a) for a in actions)
        and _principal_matches(statement["Principal"], request)
        and _condition_holds(statement.get("Condition", {}), request)
    )


def decide(cfn: dict[str, Any], resource_id: str, request: Request, params: dict[str, Any]) -> str:
    """``deny`` (an explicit Deny), ``allow`` (an Allow matches) or ``none`` (the policy is silent)."""
    statements = []
    for policy in checks.active_resources(cfn, params).values():
        properties = policy.get("Properties", {})
        attached = properties.get("Queues") or properties.get("Topics") or []
        if policy["Type"] in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy") and any(
            checks.refers_to(target, resource_id) for target in attached
        ):
            statements += _as_list(render(cfn, properties["PolicyDocument"], params)["Statement"])
    verdicts = [s["Effect"] for s in statements if _matches(s, request)]
    return "deny" if "Deny" in verdicts else "allow" if "Allow" in verdicts else "none"


def works_for_the_account(
    cfn: dict[str, Any], resource_id: str, request: Request, params: dict[str, Any]
) -> bool:
    """A principal of the account is allowed by its IAM policy unless the resource policy denies."""
    return decide(cfn, resource_id, request, params) != "deny"


# ---- the deliveries that must keep working ---------------------------------------------------------
def test_sns_into_the_commands_queue_still_works(cfn: dict[str, Any]) -> None:
    request = Request("sns.amazonaws.com", "sqs:SendMessage", arn_of("CommandsTopic"))
    assert decide(cfn, "CommandsQueue", request, BUFFERED) == "allow"


def test_eventbridge_into_the_commands_queue_still_works(cfn: dict[str, Any]) -> None:
    request = Request("events.amazonaws.com", "sqs:SendMessage", arn_of("BufferedCommandsRule"))
    assert decide(cfn, "CommandsQueue", request, BUFFERED) == "allow"


@pytest.mark.parametrize(("params", "rule"), [(DIRECT, "CommandsRule"), (BUFFERED, "BufferedCommandsRule")])
def test_delivery_dead_letters_still_reach_the_failure_queue(
    cfn: dict[str, Any], params: Any, rule: str
) -> None:
    topic = Request("sns.amazonaws.com", "sqs:SendMessage", arn_of("CommandsTopic"))
    bus = Request("events.amazonaws.com", "sqs:SendMessage", arn_of(rule))
    assert decide(cfn, "FailureQueue", topic, params) == "allow"
    assert decide(cfn, "FailureQueue", bus, params) == "allow"


@pytest.mark.parametrize("params", [DIRECT, BUFFERED])
@pytest.mark.parametrize("function", ["SnsConsumerFunction", "EventBridgeConsumerFunction"])
def test_lambda_on_failure_destination_still_works(cfn: dict[str, Any], params: Any, function: str) -> None:
    # Lambda sends the on-failure record with the function's execution role, over TLS
    role = f"arn:aws:iam::{ACCOUNT}:role/{checks.function_role(cfn, function)}"
    assert works_for_the_account(cfn, "FailureQueue", Request(role, "sqs:SendMessage"), params)


@pytest.mark.parametrize("params", [DIRECT, BUFFERED])
def test_bridge_dlq_redrive_still_works(cfn: dict[str, Any], params: Any) -> None:
    # bridge dlq redrive: receive and delete on a dead-letter queue, send to a source queue
    for queue in ("CommandsDeadLetterQueue", "FailureQueue"):
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
            assert works_for_the_account(cfn, queue, Request(OPERATOR, action), params), (queue, action)
    for queue in ("CommandsQueue", "BackfillQueue"):
        assert works_for_the_account(cfn, queue, Request(OPERATOR, "sqs:SendMessage"), params), queue


@pytest.mark.parametrize("params", [DIRECT, BUFFERED])
def test_the_consumer_still_polls_its_queues(cfn: dict[str, Any], params: Any) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/{checks.function_role(cfn, 'SqsConsumerFunction')}"
    for queue in ("CommandsQueue", "BackfillQueue"):
        assert works_for_the_account(cfn, queue, Request(role, "sqs:ReceiveMessage"), params)


# ---- what must not reach the intake ------------------------------------------------------------------
@pytest.mark.parametrize("params", [DIRECT, BUFFERED])
@pytest.mark.parametrize("queue", QUEUES)
def test_every_queue_denies_requests_without_tls(cfn: dict[str, Any], params: Any, queue: str) -> None:
    for principal in (OPERATOR, "sns.amazonaws.com", "events.amazonaws.com"):
        request = Request(principal, "sqs:SendMessage", arn_of("CommandsTopic"), secure=False)
        assert decide(cfn, queue, request, params) == "deny", principal


@pytest.mark.parametrize("params", [DIRECT, BUFFERED, {"TopicPublishers": PUBLISHER}])
def test_topic_denies_publishing_without_tls(cfn: dict[str, Any], params: Any) -> None:
    assert decide(cfn, "CommandsTopic", Request(PUBLISHER, "sns:Publish", secure=False), params) == "deny"


def test_topic_allows_publish_to_the_account_only_by_default(cfn: dict[str, Any]) -> None:
    assert decide(cfn, "CommandsTopic", Request(PUBLISHER, "sns:Publish"), {}) == "allow"
    assert decide(cfn, "CommandsTopic", Request(STRANGER, "sns:Publish"), {}) == "none"  # cross-account: no


def test_topic_allows_publish_only_to_listed_principals(cfn: dict[str, Any]) -> None:
    params = {"TopicPublishers": f"{PUBLISHER},{STRANGER}"}
    assert decide(cfn, "CommandsTopic", Request(PUBLISHER, "sns:Publish"), params) == "allow"
    assert decide(cfn, "CommandsTopic", Request(STRANGER, "sns:Publish"), params) == "allow"
    # Another principal of the account, even with an IAM policy that allows sns:Publish
    assert decide(cfn, "CommandsTopic", Request(OPERATOR, "sns:Publish"), params) == "deny"


# ---- the bus's rules ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", ["CommandsRule", "BufferedCommandsRule"])
def test_rules_on_an_existing_bus_match_the_allowed_sources(cfn: dict[str, Any], rule: str) -> None:
    params = {"EventBusName": "shared-bus", "AllowedEventSources": "com.example.shop,com.example.erp"}
    pattern = render(cfn, checks.props(cfn, rule)["EventPattern"], params)
    assert pattern["source"] == ["com.example.shop", "com.example.erp"]
    assert sorted(pattern["detail-type"]) == sorted(checks.ACTIONS)


def test_rules_on_the_stacks_own_bus_match_any_source_unless_listed(cfn: dict[str, Any]) -> None:
    assert "source" not in render(cfn, checks.props(cfn, "CommandsRule")["EventPattern"], {})
    listed = render(cfn, checks.props(cfn, "CommandsRule")["EventPattern"], {"AllowedEventSources": "a.b"})
    assert listed["source"] == ["a.b"]


def test_an_existing_bus_without_allowed_sources_never_deploys(cfn: dict[str, Any]) -> None:
    failures = checks.rule_failures(cfn, {"EventBusName": "shared-bus"})
    assert any("AllowedEventSources" in failure for failure in failures)
    assert not checks.rule_failures(
        cfn, {"EventBusName": "shared-bus", "AllowedEventSources": "com.example.shop"}
    )


# ---- production protects the account and tells someone -----------------------------------------------------
def test_prod_without_an_alarm_target_never_deploys(cfn: dict[str, Any]) -> None:
    assert any("AlarmEmail" in failure for failure in checks.rule_failures(cfn, {"Stage": "prod"}))
    assert not checks.rule_failures(cfn, {"Stage": "prod", "AlarmEmail": "ops@example.com"})
    assert not checks.rule_failures(cfn, {"Stage": "prod", "AlarmTopicArn": "arn:aws:sns:eu-central-1:1:t"})
    assert not checks.rule_failures(cfn, {"Stage": "dev"})


def test_prod_config_buffers_the_topic_and_the_bus(cfn: dict[str, Any]) -> None:
    # Given the prod deploy settings
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = dict(
        item.split("=", 1) for item in config["prod"]["deploy"]["parameters"]["parameter_overrides"]
    )
    # Then a burst on the topic or the bus waits in the commands queue, whose mapping caps the
    # consumer's concurrency, instead of fanning out to the account's whole concurrency
    assert overrides["BufferedIntake"] == "true"
    active = checks.active_resources(cfn, overrides)
    assert "SnsConsumerSubscription" not in active and "CommandsRule" not in active
    mapping = checks.props(cfn, "SqsConsumerFunctionCommandsQueue")
    cap = checks.resolve(cfn, mapping["ScalingConfig"]["MaximumConcurrency"], params=overrides)
    assert 2 <= int(cap) <= 50
