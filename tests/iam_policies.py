"""IAM as deployed, offline: each function's policies from the SAM-translated template, resolved
for one fixed account, and every AWS call a handler makes, judged by moto's policy evaluator.

moto enforces no IAM, so a handler test passes whatever the template grants. Here the calls are
recorded at botocore's level (the sessions Powertools makes for itself included) and each is
checked against the policies of the function that made it, with the resource ARN it touched.
The resolver below knows only the intrinsic functions our template uses; the policy logic is
moto's ``IAMPolicy``, not ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "eu-central-1"
PARTITION = "aws"
STACK = "bridge"
QUEUE_URL_BASE = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()


class Unresolvable(Exception):
    """An intrinsic function the resolver does not know: extend it rather than guess."""


@dataclass
class Template:
    """A translated template resolved for one account; each resource's physical name is its id.

    Except where AWS makes the name up: ``physical_ids`` gives those (a secret's ARN ends in a
    random suffix, so the test takes it from moto).
    """

    cfn: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)
    physical_ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        defaults = {
            name: str(spec.get("Default", "")) for name, spec in self.cfn.get("Parameters", {}).items()
        }
        self.parameters = {**defaults, **self.parameters}

    @property
    def resources(self) -> dict[str, Any]:
        return self.cfn["Resources"]

    # ---- intrinsic functions
    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.cfn["Conditions"][name]))

    def ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical_ids:
            return self.physical_ids[name]
        kind = self.resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"{QUEUE_URL_BASE}/{name}"
        if kind in ("AWS::SNS::Topic", "AWS::IAM::ManagedPolicy"):
            return self.arn(name)
        return name

    def arn(self, name: str) -> str:
        kind = self.resources[name]["Type"]
        prefix = f"arn:{PARTITION}"
        arns = {
            "AWS::SQS::Queue": f"{prefix}:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::DynamoDB::Table": f"{prefix}:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::SNS::Topic": f"{prefix}:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::Events::EventBus": f"{prefix}:events:{REGION}:{ACCOUNT}:event-bus/{name}",
            "AWS::IAM::ManagedPolicy": f"{prefix}:iam::{ACCOUNT}:policy/{name}",
            "AWS::IAM::Role": f"{prefix}:iam::{ACCOUNT}:role/{name}",
            "AWS::Lambda::Function": f"{prefix}:lambda:{REGION}:{ACCOUNT}:function:{name}",
        }
        if kind not in arns:
            raise Unresolvable(f"no ARN rule for {kind} ({name})")
        return arns[kind]

    def get_att(self, name: str, attribute: str) -> Any:
        if attribute == "Arn":
            return self.arn(name)
        if attribute in ("QueueName", "TopicName", "Name"):
            return name
        raise Unresolvable(f"Fn::GetAtt {name}.{attribute}")

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token and token.split(".", 1)[0] in self.resources:
                return str(self.get_att(*token.split(".", 1)))
            return str(self.ref(token))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [value for value in (self.resolve(item) for item in node) if value is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref", "Condition")):
            return {
                key: value
                for key, value in ((k, self.resolve(v)) for k, v in node.items())
                if value is not NO_VALUE
            }
        ((function, argument),) = node.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(name, attribute)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(text, variables)
        if function == "Fn::Join":
            separator, values = argument
            return separator.join(str(value) for value in self.resolve(values))
        if function == "Fn::If":
            name, then, otherwise = argument
            return self.resolve(then if self.condition(name) else otherwise)
        if function == "Fn::FindInMap":
            table, key, item = (self.resolve(part) for part in argument)
            return self.cfn["Mappings"][table][key][item]
        if function == "Fn::Equals":
            left, right = (self.resolve(part) for part in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self.resolve(argument[0])
        if function == "Fn::And":
            return all(self.resolve(part) for part in argument)
        if function == "Fn::Or":
            return any(self.resolve(part) for part in argument)
        if function == "Condition":
            return self.condition(argument)
        raise Unresolvable(function)

    # ---- what a function runs with
    def function_ids(self) -> list[str]:
        return sorted(k for k, r in self.resources.items() if r["Type"] == "AWS::Lambda::Function")

    def environment(self, function_id: str) -> dict[str, str]:
        """The function's environment variables as CloudFormation would set them."""
        properties = self.resources[function_id]["Properties"]
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        return {key: str(value) for key, value in self.resolve(variables).items()}

    def policies(self, function_id: str) -> dict[str, dict[str, Any]]:
        """The role's policy documents by name; AWS-managed policies by ARN, not expanded."""
        role_arn = self.resources[function_id]["Properties"]["Role"]
        role_id = role_arn["Fn::GetAtt"][0]
        role = self.resources[role_id]["Properties"]
        documents: dict[str, dict[str, Any]] = {}
        for policy in role.get("Policies") or []:
            documents[policy["PolicyName"]] = self.resolve(policy["PolicyDocument"])
        for reference in role.get("ManagedPolicyArns") or []:
            if isinstance(reference, dict) and "Ref" in reference:
                managed = self.resources[reference["Ref"]]["Properties"]["PolicyDocument"]
                documents[reference["Ref"]] = self.resolve(managed)
            else:
                documents[str(self.resolve(reference))] = {}  # AWS-managed: named, not expanded
        return documents


# ---- recording -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One AWS API call: its IAM action and the ARNs it touched."""

    action: str
    resources: tuple[str, ...]


def _parameter_arn(name: str) -> str:
    return f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:parameter{name if name.startswith('/') else '/' + name}"


def call_resources(service: str, params: dict[str, Any]) -> tuple[str, ...]:
    """The ARNs a call acts on, as IAM evaluates them."""
    if service == "ssm":
        names = params.get("Names") or [params.get("Name") or params.get("Path")]
        return tuple(_parameter_arn(str(name)) for name in names)
    if service == "dynamodb":
        tables = list(params.get("RequestItems") or []) or [params.get("TableName")]
        return tuple(f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{table}" for table in tables)
    if service == "sqs":
        queue = str(params.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        return (f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{queue}",)
    if service == "secretsmanager":
        secret = str(params.get("SecretId", ""))
        return (
            secret
            if secret.startswith("arn:")
            else f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}",
        )
    return ("*",)


@contextmanager
def recording_aws_calls() -> Iterator[list[Call]]:
    """Every AWS call made by any botocore session created inside the block.

    The hook goes where moto's own goes (botocore's built-in handlers), so clients that Powertools
    or boto3 build for themselves are recorded too.
    """
    import boto3
    from botocore import handlers

    calls: list[Call] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.signing_name
        calls.append(Call(f"{service}:{model.name}", call_resources(service, params)))

    entry = ("before-parameter-build", record)
    handlers.BUILTIN_HANDLERS.append(entry)
    boto3.DEFAULT_SESSION = None  # a session made earlier would not have the hook
    try:
        yield calls
    finally:
        handlers.BUILTIN_HANDLERS.remove(entry)
        boto3.DEFAULT_SESSION = None


# ---- judging ------------------------------------------------------------------------------------
def permitted(documents: dict[str, dict[str, Any]], action: str, resource: str) -> bool:
    """IAM's rule through moto's evaluator: some Allow matches and no Deny does."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    results = [
        IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)
        for document in documents.values()
        if document.get("Statement")
    ]
    return PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results


@dataclass(frozen=True)
class Grant:
    """One (action, resource) pair an Allow statement grants."""

    policy: str
    action: str
    resource: str


def grants(documents: dict[str, dict[str, Any]]) -> list[Grant]:
    found = []
    for name, document in documents.items():
        statements = document.get("Statement") or []
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            found.extend(Grant(name, action, resource) for action in actions for resource in resources)
    return found


def exercised(grant: Grant, calls: list[Call]) -> bool:
    single = {"Statement": [{"Effect": "Allow", "Action": grant.action, "Resource": grant.resource}]}
    return any(permitted({"one": single}, call.action, arn) for call in calls for arn in call.resources)
