"""Invariants of the translated CloudFormation template, as functions that return what is wrong.

Each ``check_*`` takes the template SAM produced and returns a list of violations (empty when the
invariant holds), so a test can assert both that the real template passes and that a broken copy
does not. Parameters resolve to their defaults unless a check needs a bound (``MaxValue``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

Template = dict[str, Any]

ACTIONS = (
    "contact.upsert", "contact.delete", "event.create", "products.upsert", "products.stock", "products.price",
)  # fmt: skip
RESTRICTED_SERVICES = ("ssm", "sqs", "sns", "dynamodb")
# AWS-managed policies a role may carry: none grants anything on SSM, SQS, SNS or DynamoDB.
ALLOWED_MANAGED_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess",
    "service-role/AmazonAPIGatewayPushToCloudWatchLogs",
}
ASYNC_PRINCIPALS = {"sns.amazonaws.com", "events.amazonaws.com"}
SQS_CONSUMER_MIN_VISIBILITY_FACTOR = 6
DLQ_RETENTION_S = 14 * 24 * 3600
REQUIRED_GATEWAY_RESPONSES = {
    "INVALID_API_KEY": "403",
    "THROTTLED": "429",
    "QUOTA_EXCEEDED": "429",
    "INTEGRATION_TIMEOUT": "504",
    "REQUEST_TOO_LARGE": "413",
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
}
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


# ------------------------------------------------------------------ reading the template


def resources(cfn: Template, type_: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in cfn["Resources"].items() if value["Type"] == type_}


def props(cfn: Template, logical_id: str) -> dict[str, Any]:
    return cfn["Resources"][logical_id].get("Properties", {})


def resolve(
    cfn: Template, value: Any, *, bound: str = "Default", params: dict[str, Any] | None = None
) -> Any:
    """Resolve parameter Refs, Fn::FindInMap and a Fn::Sub of those to plain values; leave the rest.

    Args:
        bound: which attribute of a parameter to use when ``params`` does not name it
            (``Default``, ``MaxValue`` or ``MinValue``).
        params: parameter values that override the template's.
    """
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and arg in cfn.get("Parameters", {}):
            if params and arg in params:
                return params[arg]
            parameter = cfn["Parameters"][arg]
            return parameter.get(bound, parameter.get("Default"))
        if key == "Fn::FindInMap":
            name, top, second = (resolve(cfn, part, bound=bound, params=params) for part in arg)
            return cfn["Mappings"][name][top][second]
        if key == "Fn::Sub" and isinstance(arg, list):
            # ["${Name}...", {Name: <Ref or FindInMap>}]: a value made a string, e.g. for an environment.
            text, variables = arg
            for name, variable in variables.items():
                plain = resolve(cfn, variable, bound=bound, params=params)
                if isinstance(plain, dict):
                    return value
                text = text.replace(f"${{{name}}}", str(plain))
            return value if "${" in text else text
    return value


def as_number(value: Any) -> float:
    return float(value)


def referenced_ids(value: Any) -> set[str]:
    """Logical ids (resources or parameters) that a value refers to, through any intrinsic."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg.split(".")[0])
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                for name in _SUB_VARIABLE.findall(text):
                    root = name.split(".")[0]
                    if root in variables:
                        found |= referenced_ids(variables[root])
                    else:
                        found.add(root)
            else:
                found |= referenced_ids(arg)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_ids(item)
    return {name for name in found if not name.startswith("AWS::")}


def refers_to(value: Any, logical_id: str) -> bool:
    return logical_id in referenced_ids(value)


def queue_ids(cfn: Template) -> set[str]:
    return set(resources(cfn, "AWS::SQS::Queue"))


def single_queue(cfn: Template, value: Any) -> str | None:
    queues = referenced_ids(value) & queue_ids(cfn)
    return next(iter(queues)) if len(queues) == 1 else None


def functions(cfn: Template) -> dict[str, dict[str, Any]]:
    return resources(cfn, "AWS::Lambda::Function")


def aliases(cfn: Template) -> dict[str, str]:
    """Alias id -> the id of the function it belongs to (SAM's AutoPublishAlias makes one each)."""
    found = {}
    for key, alias in resources(cfn, "AWS::Lambda::Alias").items():
        (function,) = referenced_ids(alias["Properties"]["FunctionName"]) & set(functions(cfn))
        found[key] = function
    return found


def invoked_functions(cfn: Template, value: Any) -> set[str]:
    """The functions a target, endpoint or FunctionName reaches, directly or through an alias."""
    names = referenced_ids(value)
    by_alias = aliases(cfn)
    return {by_alias[name] for name in names if name in by_alias} | (names & set(functions(cfn)))


def invokes(cfn: Template, value: Any, function_id: str) -> bool:
    return function_id in invoked_functions(cfn, value)


def env(cfn: Template, function_id: str) -> dict[str, Any]:
    return props(cfn, function_id).get("Environment", {}).get("Variables", {})


def sqs_mappings(cfn: Template) -> Iterator[tuple[str, dict[str, Any], str, str]]:
    """(mapping id, its properties, source queue id, function id) for every SQS event source mapping."""
    for key, mapping in resources(cfn, "AWS::Lambda::EventSourceMapping").items():
        properties = mapping["Properties"]
        queue = single_queue(cfn, properties["EventSourceArn"])
        if queue is None:
            continue
        (function,) = invoked_functions(cfn, properties["FunctionName"])
        yield key, properties, queue, function


def source_queues(cfn: Template) -> set[str]:
    return {queue for _, _, queue, _ in sqs_mappings(cfn)}


def terminal_queues(cfn: Template) -> set[str]:
    """Queues nothing consumes automatically: dead-letter and failure queues."""
    return queue_ids(cfn) - source_queues(cfn)


def event_invoke_configs(cfn: Template) -> dict[str, dict[str, Any]]:
    """Function id -> its EventInvokeConfig properties."""
    configs = {}
    for config in resources(cfn, "AWS::Lambda::EventInvokeConfig").values():
        (function,) = invoked_functions(cfn, config["Properties"]["FunctionName"])
        configs[function] = config["Properties"]
    return configs


def invoke_principals(cfn: Template, function_id: str) -> set[str]:
    return {
        permission["Properties"]["Principal"]
        for permission in resources(cfn, "AWS::Lambda::Permission").values()
        if invokes(cfn, permission["Properties"]["FunctionName"], function_id)
    }


def policy_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(cfn: Template, role_id: str) -> list[dict[str, Any]]:
    """Every statement a role gets from its inline policies and the template's managed policies."""
    role = props(cfn, role_id)
    statements = [
        statement
        for policy in role.get("Policies", [])
        for statement in policy_statements(policy["PolicyDocument"])
    ]
    managed = resources(cfn, "AWS::IAM::ManagedPolicy")
    for arn in role.get("ManagedPolicyArns", []):
        for policy_id in referenced_ids(arn) & set(managed):
            statements += policy_statements(managed[policy_id]["Properties"]["PolicyDocument"])
    for policy in resources(cfn, "AWS::IAM::Policy").values():
        if any(refers_to(role_ref, role_id) for role_ref in policy["Properties"].get("Roles", [])):
            statements += policy_statements(policy["Properties"]["PolicyDocument"])
    return statements


def function_role(cfn: Template, function_id: str) -> str:
    (role,) = referenced_ids(props(cfn, function_id)["Role"])
    return role


def resource_text(resource: Any) -> str:
    """A readable form of a policy Resource: the Sub text, ``ref:Id`` for a Ref/GetAtt, or the string."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        arg = resource["Fn::Sub"]
        return arg if isinstance(arg, str) else arg[0]
    return "ref:" + ",".join(sorted(referenced_ids(resource)))


def evaluate_condition(cfn: Template, expression: Any, params: dict[str, Any]) -> Any:
    """Evaluate a Conditions/Rules expression (Fn::Equals, Not, And, Or, Contains, Condition, Ref)."""
    if isinstance(expression, dict) and len(expression) == 1:
        ((key, arg),) = expression.items()
        if key == "Ref":
            return str(resolve(cfn, expression, params=params))
        if key == "Condition":
            return evaluate_condition(cfn, cfn["Conditions"][arg], params)
        if key == "Fn::Equals":
            left, right = (evaluate_condition(cfn, part, params) for part in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not evaluate_condition(cfn, arg[0], params)
        if key == "Fn::And":
            return all(evaluate_condition(cfn, part, params) for part in arg)
        if key == "Fn::Or":
            return any(evaluate_condition(cfn, part, params) for part in arg)
        if key == "Fn::Contains":
            values, needle = arg
            return str(evaluate_condition(cfn, needle, params)) in [str(v) for v in values]
        raise ValueError(f"unsupported intrinsic in a condition: {key}")
    return expression


def active_resources(cfn: Template, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation would create with these parameter values."""
    return {
        key: value
        for key, value in cfn["Resources"].items()
        if "Condition" not in value or evaluate_condition(cfn, {"Condition": value["Condition"]}, params)
    }


def pick_if(cfn: Template, value: Any, params: dict[str, Any]) -> Any:
    """Resolve Fn::If (recursively) the way CloudFormation would with these parameter values."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            chosen = when_true if evaluate_condition(cfn, {"Condition": condition}, params) else when_false
            return pick_if(cfn, chosen, params)
        return {key: pick_if(cfn, item, params) for key, item in value.items()}
    if isinstance(value, list):
        return [pick_if(cfn, item, params) for item in value]
    return value


def rule_failures(cfn: Template, params: dict[str, Any]) -> list[str]:
    """The AssertDescriptions of the template's Rules that these parameter values break."""
    failures = []
    for rule in cfn.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate_condition(cfn, rule["RuleCondition"], params):
            continue
        for assertion in rule["Assertions"]:
            if not evaluate_condition(cfn, assertion["Assert"], params):
                failures.append(assertion.get("AssertDescription", "assertion failed"))
    return failures


# ------------------------------------------------------------------ the invariants


def check_redrive_policies(cfn: Template) -> list[str]:
    """Every consumed queue redrives to a terminal queue after exactly MAX_RECEIVE_COUNT receives."""
    problems = []
    for _, _, queue, function in sqs_mappings(cfn):
        policy = props(cfn, queue).get("RedrivePolicy")
        if not policy:
            problems.append(f"{queue} has no RedrivePolicy")
            continue
        target = single_queue(cfn, policy.get("deadLetterTargetArn"))
        if target is None or target not in terminal_queues(cfn):
            problems.append(f"{queue} does not redrive to a dead-letter queue of this template")
        max_receive = resolve(cfn, policy.get("maxReceiveCount"))
        expected = resolve(cfn, env(cfn, function).get("MAX_RECEIVE_COUNT"))
        if expected is None or int(max_receive) != int(expected):
            problems.append(
                f"{queue} maxReceiveCount {max_receive} != {function} MAX_RECEIVE_COUNT {expected}"
            )
        if target is not None:
            source_retention = int(resolve(cfn, props(cfn, queue).get("MessageRetentionPeriod", 345600)))
            dlq_retention = int(resolve(cfn, props(cfn, target).get("MessageRetentionPeriod", 345600)))
            # A dead letter keeps its original enqueue time: the DLQ must keep messages longer.
            if dlq_retention < max(source_retention + 1, DLQ_RETENTION_S):
                problems.append(
                    f"{target} keeps messages {dlq_retention}s, not longer than {queue} or 14 days"
                )
    return problems


def check_terminal_queues_are_dead_ends(cfn: Template) -> list[str]:
    problems = []
    for queue in terminal_queues(cfn):
        if "RedrivePolicy" in props(cfn, queue):
            problems.append(f"terminal queue {queue} has a RedrivePolicy")
        if int(resolve(cfn, props(cfn, queue).get("MessageRetentionPeriod", 345600))) != DLQ_RETENTION_S:
            problems.append(f"terminal queue {queue} does not keep messages 14 days")
    return problems


def check_visibility_timeouts(cfn: Template) -> list[str]:
    """Visibility >= 6 x the consumer's timeout + the largest batching window the parameters allow."""
    problems = []
    for mapping, properties, queue, function in sqs_mappings(cfn):
        timeout = as_number(resolve(cfn, props(cfn, function).get("Timeout", 3)))
        window = as_number(
            resolve(cfn, properties.get("MaximumBatchingWindowInSeconds", 0), bound="MaxValue")
        )
        visibility = as_number(resolve(cfn, props(cfn, queue).get("VisibilityTimeout", 30)))
        needed = SQS_CONSUMER_MIN_VISIBILITY_FACTOR * timeout + window
        if visibility < needed:
            problems.append(f"{queue} visibility {visibility:g}s < {needed:g}s needed by {mapping}")
    return problems


def check_batch_windows(cfn: Template, params: dict[str, Any] | None = None) -> list[str]:
    """With these parameter values, a mapping of more than 10 records has a window of at least 1 s."""
    problems = []
    for mapping, properties, _, _ in sqs_mappings(cfn):
        batch = as_number(resolve(cfn, properties.get("BatchSize", 10), params=params))
        window = as_number(resolve(cfn, properties.get("MaximumBatchingWindowInSeconds", 0), params=params))
        if batch > 10 and window < 1:
            problems.append(f"{mapping}: batch size {batch:g} with a {window:g}s window")
    return problems


def check_mapping_settings(cfn: Template) -> list[str]:
    problems = []
    for mapping, properties, _, function in sqs_mappings(cfn):
        if "ReportBatchItemFailures" not in properties.get("FunctionResponseTypes", []):
            problems.append(f"{mapping} does not report batch item failures")
        cap = properties.get("ScalingConfig", {}).get("MaximumConcurrency")
        if cap is None or not 2 <= int(resolve(cfn, cap)) <= 1000:
            problems.append(f"{mapping} has no ScalingConfig.MaximumConcurrency in 2..1000")
        if "ReservedConcurrentExecutions" in props(cfn, function):
            problems.append(f"{function} uses reserved concurrency instead of the mapping's cap")
    return problems


def log_groups_by_name(cfn: Template) -> dict[str, dict[str, Any]]:
    named = {}
    for key, group in resources(cfn, "AWS::Logs::LogGroup").items():
        named[resource_text(group["Properties"].get("LogGroupName", key))] = group["Properties"]
    return named


def check_log_groups(cfn: Template) -> list[str]:
    """Every function and API stage logs to a log group of this template that has a retention."""
    problems = []
    named = log_groups_by_name(cfn)
    for function in functions(cfn):
        custom = props(cfn, function).get("LoggingConfig", {}).get("LogGroup")
        group = None
        if custom is not None:
            ids = referenced_ids(custom) & set(resources(cfn, "AWS::Logs::LogGroup"))
            group = props(cfn, ids.pop()) if ids else None
        else:
            group = named.get(f"/aws/lambda/${{{function}}}")
        if group is None:
            problems.append(f"{function} has no log group in the template")
        elif "RetentionInDays" not in group:
            problems.append(f"{function}'s log group has no retention")
    for stage_id, stage in resources(cfn, "AWS::ApiGateway::Stage").items():
        destination = stage["Properties"].get("AccessLogSetting", {}).get("DestinationArn")
        ids = referenced_ids(destination) & set(resources(cfn, "AWS::Logs::LogGroup"))
        if not ids:
            problems.append(f"{stage_id} has no access log group in the template")
        elif "RetentionInDays" not in props(cfn, ids.pop()):
            problems.append(f"{stage_id}'s access log group has no retention")
    return problems


def async_sources(cfn: Template, function_id: str) -> list[str]:
    """SNS subscriptions and EventBridge rules that deliver to a function (any condition)."""
    found = []
    for key, subscription in resources(cfn, "AWS::SNS::Subscription").items():
        if invokes(cfn, subscription["Properties"].get("Endpoint"), function_id):
            found.append(key)
    for key, rule in resources(cfn, "AWS::Events::Rule").items():
        if any(
            invokes(cfn, target.get("Arn"), function_id) for target in rule["Properties"].get("Targets", [])
        ):
            found.append(key)
    return found


def check_on_failure_paths(cfn: Template) -> list[str]:
    """SQS-fed functions: the queue redrives; async functions: OnFailure to a queue; API: synchronous."""
    problems = []
    configs = event_invoke_configs(cfn)
    fed_by_sqs = {function for _, _, _, function in sqs_mappings(cfn)}
    for function in functions(cfn):
        principals = invoke_principals(cfn, function)
        is_async = bool(principals & ASYNC_PRINCIPALS or async_sources(cfn, function))
        if function in fed_by_sqs:
            for _, _, queue, consumer in sqs_mappings(cfn):
                if consumer == function and "RedrivePolicy" not in props(cfn, queue):
                    problems.append(f"{function} reads {queue}, which has no dead-letter queue")
        if is_async or (function not in fed_by_sqs and principals != {"apigateway.amazonaws.com"}):
            config = configs.get(function)
            destination = (config or {}).get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if destination is None or single_queue(cfn, destination) is None:
                problems.append(f"{function} is invoked asynchronously without an OnFailure queue")
            elif int(config.get("MaximumRetryAttempts", 2)) != 2:
                problems.append(f"{function} retries {config['MaximumRetryAttempts']} times, not 2")
        if principals == {"apigateway.amazonaws.com"} and "DEAD_LETTER_QUEUE_URL" in env(cfn, function):
            # The API raises every failure to its caller: a queue here would be an unused grant.
            problems.append(f"{function} (API) has a DEAD_LETTER_QUEUE_URL it never uses")
    return problems


def check_async_delivery_dead_letters(cfn: Template) -> list[str]:
    """Deliveries that fail before Lambda runs (SNS subscriptions, EventBridge targets) go to a queue."""
    problems = []
    for key, subscription in resources(cfn, "AWS::SNS::Subscription").items():
        policy = subscription["Properties"].get("RedrivePolicy", {})
        if single_queue(cfn, policy.get("deadLetterTargetArn")) is None:
            problems.append(f"{key} has no dead-letter queue")
    for key, rule in resources(cfn, "AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            if single_queue(cfn, target.get("DeadLetterConfig", {}).get("Arn")) is None:
                problems.append(f"{key} target {target.get('Id')} has no dead-letter queue")
            if "RetryPolicy" not in target:
                problems.append(f"{key} target {target.get('Id')} has no RetryPolicy")
    return problems


def iam_statements(cfn: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, role in resources(cfn, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy_statements(policy["PolicyDocument"]):
                yield key, statement
    for type_ in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
        for key, policy in resources(cfn, type_).items():
            for statement in policy_statements(policy["Properties"]["PolicyDocument"]):
                yield key, statement


def check_no_star_on_data_services(cfn: Template) -> list[str]:
    """No Allow statement grants SSM, SQS, SNS or DynamoDB actions on "*" (or "service:*" actions)."""
    problems = []
    for owner, statement in iam_statements(cfn):
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(action) for action in as_list(statement.get("Action", []))]
        touched = {action.split(":")[0] for action in actions} & set(RESTRICTED_SERVICES)
        if "*" in actions:
            problems.append(f"{owner}: Action '*'")
        for action in actions:
            if action.split(":")[0] in RESTRICTED_SERVICES and action.endswith(":*"):
                problems.append(f"{owner}: Action {action}")
        if touched or "*" in actions:
            for resource in as_list(statement.get("Resource", [])):
                text = resource_text(resource)
                if text == "*" or text.endswith(":*"):
                    problems.append(f"{owner}: {sorted(touched)} on {text}")
    for key, role in resources(cfn, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = resource_text(arn)
            if ":iam::aws:policy/" in text and text.split(":policy/")[1] not in ALLOWED_MANAGED_POLICIES:
                problems.append(f"{key}: AWS-managed policy {text.split(':policy/')[1]}")
    return problems


def check_group_config_access(cfn: Template) -> list[str]:
    """SSM reads only under /salesmanago/${Stage}/groups/ and .../api-keys/; KMS only through SSM."""
    problems = []
    readable = (":parameter/salesmanago/${Stage}/groups/", ":parameter/salesmanago/${Stage}/api-keys/")
    for owner, statement in iam_statements(cfn):
        actions = [str(action) for action in as_list(statement.get("Action", []))]
        if any(action.startswith("ssm:") for action in actions):
            if set(actions) != {"ssm:GetParameter"}:
                problems.append(f"{owner}: SSM actions other than GetParameter: {sorted(actions)}")
            for resource in as_list(statement.get("Resource", [])):
                if not any(path in resource_text(resource) for path in readable):
                    problems.append(f"{owner}: SSM access outside the groups path: {resource_text(resource)}")
        if any(action.startswith("kms:") for action in actions):
            via = statement.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
            if via is None or "ssm." not in resource_text(via):
                problems.append(f"{owner}: KMS access not limited to SSM (kms:ViaService)")
    for function in functions(cfn):
        for statement in role_statements(cfn, function_role(cfn, function)):
            actions = [str(action) for action in as_list(statement.get("Action", []))]
            if any(action.startswith("ssm:") for action in actions):
                break
        else:
            problems.append(f"{function} cannot read its group configs")
    return problems


def check_send_targets(cfn: Template) -> list[str]:
    """A function may send to its DEAD_LETTER_QUEUE_URL queue and its OnFailure queue, and nowhere else."""
    problems = []
    configs = event_invoke_configs(cfn)
    for function in functions(cfn):
        own_dlq = single_queue(cfn, env(cfn, function).get("DEAD_LETTER_QUEUE_URL"))
        allowed = {own_dlq} - {None}
        destination = (
            configs.get(function, {}).get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        )
        if destination is not None:
            allowed.add(single_queue(cfn, destination))
        sendable: set[str] = set()
        for statement in role_statements(cfn, function_role(cfn, function)):
            actions = [str(action) for action in as_list(statement.get("Action", []))]
            if not any(action.startswith(("sqs:SendMessage", "sns:Publish")) for action in actions):
                continue
            for resource in as_list(statement.get("Resource", [])):
                targets = referenced_ids(resource) & (queue_ids(cfn) | set(resources(cfn, "AWS::SNS::Topic")))
                if not targets:
                    problems.append(f"{function} may send to {resource_text(resource)}")
                sendable |= targets
        if sendable - allowed:
            problems.append(f"{function} may send to {sorted(sendable - allowed)}")
        if own_dlq is None and invoke_principals(cfn, function) != {"apigateway.amazonaws.com"}:
            problems.append(f"{function} has no DEAD_LETTER_QUEUE_URL queue")
        elif own_dlq is not None and own_dlq not in sendable:
            problems.append(f"{function} may not send to its DEAD_LETTER_QUEUE_URL queue {own_dlq}")
    return problems


def check_dead_letter_alarms(cfn: Template) -> list[str]:
    """Every terminal queue has an alarm on its first visible message."""
    problems = []
    alarms = resources(cfn, "AWS::CloudWatch::Alarm").values()
    for queue in terminal_queues(cfn):
        for alarm in alarms:
            properties = alarm["Properties"]
            if (
                properties.get("Namespace") == "AWS/SQS"
                and properties.get("MetricName") == "ApproximateNumberOfMessagesVisible"
                and any(
                    dimension["Name"] == "QueueName" and refers_to(dimension["Value"], queue)
                    for dimension in properties.get("Dimensions", [])
                )
                and (
                    (
                        properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
                        and properties["Threshold"] <= 1
                    )
                    or (
                        properties["ComparisonOperator"] == "GreaterThanThreshold"
                        and properties["Threshold"] < 1
                    )
                )
            ):
                break
        else:
            problems.append(f"{queue} has no alarm on ApproximateNumberOfMessagesVisible >= 1")
    return problems


def check_queue_encryption(cfn: Template) -> list[str]:
    problems = []
    for queue, definition in resources(cfn, "AWS::SQS::Queue").items():
        properties = definition.get("Properties", {})
        if properties.get("KmsMasterKeyId") is not None:
            problems.append(f"{queue} uses KMS key {resource_text(properties['KmsMasterKeyId'])}")
        if properties.get("SqsManagedSseEnabled") is not True:
            problems.append(f"{queue} does not use SQS-managed encryption")
    return problems


def rest_api_body(cfn: Template, api_id: str) -> dict[str, Any]:
    return props(cfn, api_id)["Body"]


def gateway_response_problems(responses: dict[str, Any]) -> list[str]:
    problems = []
    for kind, status in REQUIRED_GATEWAY_RESPONSES.items():
        response = responses.get(kind)
        if response is None:
            problems.append(f"no gateway response for {kind}")
            continue
        if status is not None and str(response.get("statusCode")) != status:
            problems.append(f"{kind} answers {response.get('statusCode')}, not {status}")
    for kind, response in responses.items():
        template = response.get("responseTemplates", {}).get("application/json")
        if template is None:
            problems.append(f"{kind} has no application/json template")
            continue
        try:
            body = json.loads(template.replace("$context.error.messageString", '"message"'))
        except ValueError:
            problems.append(f"{kind} template is not JSON")
            continue
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
            problems.append(f"{kind} body is not {{'error': {{code, message, details}}}}")
    return problems


def check_api(cfn: Template) -> list[str]:
    """Every method requires an API key; API Gateway's own answers have the handler's error shape."""
    problems = []
    for api_id in resources(cfn, "AWS::ApiGateway::RestApi"):
        body = rest_api_body(cfn, api_id)
        schemes = body.get("components", {}).get("securitySchemes", {}) or body.get("securityDefinitions", {})
        api_key_schemes = {
            name
            for name, scheme in schemes.items()
            if scheme.get("type") == "apiKey" and scheme.get("name") == "x-api-key"
        }
        if not api_key_schemes:
            problems.append(f"{api_id} defines no x-api-key security scheme")
        for path, methods in body.get("paths", {}).items():
            for method, operation in methods.items():
                if method == "options":
                    continue
                required = {name for requirement in operation.get("security", []) for name in requirement}
                if not required & api_key_schemes:
                    problems.append(f"{api_id} {method.upper()} {path} does not require an API key")
        problems += gateway_response_problems(body.get("x-amazon-apigateway-gateway-responses", {}))
        plans = [
            plan
            for plan in resources(cfn, "AWS::ApiGateway::UsagePlan").values()
            if any(refers_to(stage.get("ApiId"), api_id) for stage in plan["Properties"].get("ApiStages", []))
        ]
        if not plans:
            problems.append(f"{api_id} has no usage plan")
        for plan in plans:
            if "Throttle" not in plan["Properties"] or "Quota" not in plan["Properties"]:
                problems.append(f"{api_id}: usage plan without throttle and quota")
    for stage_id, stage in resources(cfn, "AWS::ApiGateway::Stage").items():
        properties = stage["Properties"]
        if properties.get("TracingEnabled") is not True:
            problems.append(f"{stage_id} has no tracing")
        defaults = [
            setting
            for setting in properties.get("MethodSettings", [])
            if setting.get("HttpMethod") == "*" and setting.get("ResourcePath") == "/*"
        ]
        if not defaults or not {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(defaults[0]):
            problems.append(f"{stage_id} has no stage-wide throttling")
        if defaults and defaults[0].get("DataTraceEnabled"):
            problems.append(f"{stage_id} logs full requests (DataTraceEnabled)")
        log_format = properties.get("AccessLogSetting", {}).get("Format", "")
        try:
            json.loads(re.sub(r"\$context\.[A-Za-z.]+", "0", log_format))
        except ValueError:
            problems.append(f"{stage_id} access log format is not JSON")
        if re.search(r"querystring|\$context\.path\b|\$input", log_format, re.IGNORECASE):
            problems.append(f"{stage_id} access log may carry query strings (e-mails)")
    return problems


def check_idempotency_table(cfn: Template) -> list[str]:
    problems = []
    tables = resources(cfn, "AWS::DynamoDB::Table")
    for function in functions(cfn):
        table_ref = env(cfn, function).get("IDEMPOTENCY_TABLE_NAME")
        ids = referenced_ids(table_ref) & set(tables)
        if not ids:
            problems.append(f"{function} has no IDEMPOTENCY_TABLE_NAME of this template")
    for table_id, table in tables.items():
        properties = table["Properties"]
        if properties.get("BillingMode") != "PAY_PER_REQUEST":
            problems.append(f"{table_id} is not on-demand")
        ttl = properties.get("TimeToLiveSpecification", {})
        # Powertools Idempotency writes its expiry to "expiration" and keys on "id".
        if ttl.get("Enabled") is not True or ttl.get("AttributeName") != "expiration":
            problems.append(f"{table_id} has no TTL on 'expiration'")
        if (
            properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
            is not True
        ):
            problems.append(f"{table_id} has no point-in-time recovery")
        if properties.get("KeySchema") != [{"AttributeName": "id", "KeyType": "HASH"}]:
            problems.append(f"{table_id} is not keyed on 'id'")
    return problems


def check_function_baseline(cfn: Template) -> list[str]:
    problems = []
    layers = set(resources(cfn, "AWS::Lambda::LayerVersion"))
    for function, definition in functions(cfn).items():
        properties = definition["Properties"]
        if properties.get("Runtime") != "python3.13":
            problems.append(f"{function} runtime {properties.get('Runtime')}")
        if properties.get("Architectures") != ["arm64"]:
            problems.append(f"{function} is not arm64")
        if properties.get("TracingConfig", {}).get("Mode") != "Active":
            problems.append(f"{function} has no active tracing")
        if properties.get("LoggingConfig", {}).get("LogFormat") != "JSON":
            problems.append(f"{function} does not log JSON")
        if not any(referenced_ids(layer) & layers for layer in properties.get("Layers", [])):
            problems.append(f"{function} does not use the shared layer")
        if properties.get("Handler") != "app.lambda_handler":
            problems.append(f"{function} handler {properties.get('Handler')}")
    return problems


def custom_alarm_metrics(cfn: Template) -> dict[str, set[str]]:
    """Alarm id -> metric names it watches in our own (EMF) namespace."""
    namespace = cfn["Mappings"]["Bridge"]["Powertools"]["MetricsNamespace"]
    watched: dict[str, set[str]] = {}
    for key, alarm in resources(cfn, "AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        names = set()
        if resolve(cfn, properties.get("Namespace")) == namespace:
            names.add(properties["MetricName"])
        for query in properties.get("Metrics", []):
            stat = query.get("MetricStat", {}).get("Metric", {})
            if resolve(cfn, stat.get("Namespace")) == namespace:
                names.add(stat["MetricName"])
        if names:
            watched[key] = names
    return watched


def dashboard_body(cfn: Template, dashboard_id: str = "Dashboard") -> dict[str, Any]:
    """The dashboard JSON with every ${...} placeholder replaced by a dummy name."""
    sub = props(cfn, dashboard_id)["DashboardBody"]["Fn::Sub"]
    text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
    resolved = {name: resolve(cfn, value) for name, value in variables.items()}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        value = resolved.get(name, f"<{name}>")
        return value if isinstance(value, str) else f"<{name}>"

    return json.loads(_SUB_VARIABLE.sub(fill, text))
