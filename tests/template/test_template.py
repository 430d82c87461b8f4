"""Invariants of the deployed stack, checked on template.yaml as SAM translates it."""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import tomllib
from collections.abc import Callable
from typing import Any

import pytest
import template_checks as checks
from sam_translation import ROOT, translate

LAYER_PACKAGE = ROOT / "layers" / "shared" / "salesmanago_bridge"
DIRECT = {"BufferedIntake": "false"}
BUFFERED = {"BufferedIntake": "true"}
# The settings DESIGN.md lists (SALESMANAGO_GROUPS_FILE is for laptops only).
SETTINGS_VARIABLES = {
    "STAGE",
    "SALESMANAGO_PARAMETER_PREFIX",
    "SALESMANAGO_CONNECT_TIMEOUT_S",
    "SALESMANAGO_READ_TIMEOUT_S",
    "SALESMANAGO_MAX_RETRIES",
    "MAX_PARALLEL_REQUESTS",
    "CONTACT_BATCH_SIZE",
    "EVENT_BATCH_SIZE",
    "PRODUCT_BATCH_SIZE",
    "DEADLINE_MARGIN_MS",
    "IDEMPOTENCY_TABLE_NAME",
    "IDEMPOTENCY_TTL_S",
    "DEAD_LETTER_QUEUE_URL",
    "MAX_RECEIVE_COUNT",
}
POWERTOOLS_VARIABLES = {
    "POWERTOOLS_SERVICE_NAME": "salesmanago-bridge",
    "POWERTOOLS_METRICS_NAMESPACE": "SalesmanagoBridge",
    "POWERTOOLS_PARAMETERS_SSM_DECRYPT": "true",
    "POWERTOOLS_PARAMETERS_MAX_AGE": "300",
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def function_id(cfn: dict[str, Any], code_folder: str) -> str:
    (found,) = [
        key
        for key, function in checks.functions(cfn).items()
        if function["Properties"]["Code"]["S3Key"].rstrip("/").endswith(code_folder)
    ]
    return found


# ------------------------------------------------------------------ SQS path


def test_source_queues_redrive_after_max_receive_count(cfn: dict[str, Any]) -> None:
    # Given / When
    problems = checks.check_redrive_policies(cfn)

    # Then
    assert problems == []
    assert checks.source_queues(cfn) == {"CommandsQueue", "BackfillQueue"}
    for queue in checks.source_queues(cfn):
        assert checks.resolve(cfn, checks.props(cfn, queue)["RedrivePolicy"]["maxReceiveCount"]) == 5


def test_terminal_queues_keep_messages_14_days_and_go_nowhere(cfn: dict[str, Any]) -> None:
    assert checks.check_terminal_queues_are_dead_ends(cfn) == []
    assert checks.terminal_queues(cfn) == {"CommandsDeadLetterQueue", "FailureQueue"}


def test_visibility_timeout_covers_six_timeouts_and_the_largest_window(cfn: dict[str, Any]) -> None:
    assert checks.check_visibility_timeouts(cfn) == []


@pytest.mark.parametrize("batch_size", [1, 10, 11, 500, 10000])
@pytest.mark.parametrize("window", [0, 1, 5, 60])
def test_batches_above_ten_never_deploy_without_a_window(
    cfn: dict[str, Any], batch_size: int, window: int
) -> None:
    # Given
    params = {"SqsBatchSize": str(batch_size), "SqsBatchingWindowSeconds": str(window)}

    # When
    rejected_by_rules = checks.rule_failures(cfn, params)
    problems = checks.check_batch_windows(cfn, params)

    # Then: either CloudFormation's Rules stop the deploy, or the mappings are valid
    assert rejected_by_rules or problems == []
    assert bool(rejected_by_rules) == (batch_size > 10 and window == 0)


def test_default_batching_parameters(cfn: dict[str, Any]) -> None:
    parameters = cfn["Parameters"]
    assert parameters["SqsBatchSize"]["Default"] == 500
    assert parameters["SqsBatchingWindowSeconds"]["Default"] == 5
    assert checks.check_batch_windows(cfn) == []
    assert checks.rule_failures(cfn, {}) == []


def test_mappings_report_item_failures_and_cap_concurrency(cfn: dict[str, Any]) -> None:
    # Given / When
    problems = checks.check_mapping_settings(cfn)
    caps = {
        queue: properties["ScalingConfig"]["MaximumConcurrency"]
        for _, properties, queue, _ in checks.sqs_mappings(cfn)
    }

    # Then: the backfill has its own, lower cap so history loads do not starve live traffic
    assert problems == []
    assert caps == {
        "CommandsQueue": {"Ref": "ConsumerMaxConcurrency"},
        "BackfillQueue": {"Ref": "BackfillMaxConcurrency"},
    }
    assert checks.resolve(cfn, caps["BackfillQueue"]) < checks.resolve(cfn, caps["CommandsQueue"])
    assert {function for *_, function in checks.sqs_mappings(cfn)} == {function_id(cfn, "sqs_consumer")}


# ------------------------------------------------------------------ every function


def test_every_function_has_a_log_group_with_retention(cfn: dict[str, Any]) -> None:
    assert checks.check_log_groups(cfn) == []


def test_every_function_has_an_on_failure_path(cfn: dict[str, Any]) -> None:
    assert checks.check_on_failure_paths(cfn) == []
    assert checks.check_async_delivery_dead_letters(cfn) == []


def test_functions_share_runtime_architecture_tracing_and_layer(cfn: dict[str, Any]) -> None:
    assert checks.check_function_baseline(cfn) == []
    assert len(checks.functions(cfn)) == 4


def is_api(cfn: dict[str, Any], function: str) -> bool:
    return checks.invoke_principals(cfn, function) == {"apigateway.amazonaws.com"}


def test_functions_get_every_setting_and_the_powertools_environment(cfn: dict[str, Any]) -> None:
    for function in checks.functions(cfn):
        # Given
        variables = {name: checks.resolve(cfn, value) for name, value in checks.env(cfn, function).items()}

        # Then
        expected_settings = SETTINGS_VARIABLES - (
            set()
            if checks.env(cfn, function).get("DEAD_LETTER_QUEUE_URL") is not None or not is_api(cfn, function)
            else {"DEAD_LETTER_QUEUE_URL"}
        )
        assert set(variables) >= expected_settings, function
        for name, expected in POWERTOOLS_VARIABLES.items():
            assert str(variables[name]) == expected, (function, name)
        assert str(variables["MAX_RECEIVE_COUNT"]) == "5"
        assert variables["SALESMANAGO_PARAMETER_PREFIX"] == {"Fn::Sub": "/salesmanago/${Stage}"}
        assert variables["STAGE"] == "dev"


def test_template_sets_only_variables_the_code_reads(cfn: dict[str, Any]) -> None:
    # Given: the settings model's aliases, plus what Powertools itself reads
    from salesmanago_bridge.settings import Settings

    known = {field.alias for field in Settings.model_fields.values()} | set(POWERTOOLS_VARIABLES)

    # When
    unknown = {
        name for function in checks.functions(cfn) for name in checks.env(cfn, function) if name not in known
    }

    # Then
    assert unknown == set()


def test_dead_letters_go_where_design_says(cfn: dict[str, Any]) -> None:
    expected = {
        "sqs_consumer": "CommandsDeadLetterQueue",
        "sns_consumer": "FailureQueue",
        "eventbridge_consumer": "FailureQueue",
    }
    for folder, queue in expected.items():
        assert checks.env(cfn, function_id(cfn, folder))["DEAD_LETTER_QUEUE_URL"] == {"Ref": queue}
    # The API answers every failure to its caller and parks nothing: no queue, no grant to send.
    assert "DEAD_LETTER_QUEUE_URL" not in checks.env(cfn, function_id(cfn, "api"))


# ------------------------------------------------------------------ IAM


def test_no_statement_grants_star_on_ssm_sqs_sns_or_dynamodb(cfn: dict[str, Any]) -> None:
    assert checks.check_no_star_on_data_services(cfn) == []


def test_functions_read_only_their_stage_group_configs(cfn: dict[str, Any]) -> None:
    assert checks.check_group_config_access(cfn) == []


def test_functions_send_only_to_their_own_dead_letter_queues(cfn: dict[str, Any]) -> None:
    assert checks.check_send_targets(cfn) == []


def test_sqs_consumer_may_poll_only_its_two_queues(cfn: dict[str, Any]) -> None:
    # Given
    role = checks.function_role(cfn, function_id(cfn, "sqs_consumer"))

    # When
    polled = {
        queue
        for statement in checks.role_statements(cfn, role)
        if "sqs:ReceiveMessage" in checks.as_list(statement["Action"])
        for resource in checks.as_list(statement["Resource"])
        for queue in checks.referenced_ids(resource)
    }

    # Then
    assert polled == {"CommandsQueue", "BackfillQueue"}


# ------------------------------------------------------------------ queues, table, alarms


def test_every_dead_letter_queue_has_an_alarm(cfn: dict[str, Any]) -> None:
    assert checks.check_dead_letter_alarms(cfn) == []


def test_queues_use_sqs_managed_encryption_not_the_aws_managed_key(cfn: dict[str, Any]) -> None:
    assert checks.check_queue_encryption(cfn) == []


def test_idempotency_table_is_on_demand_with_ttl_and_pitr(cfn: dict[str, Any]) -> None:
    assert checks.check_idempotency_table(cfn) == []


def test_event_keys_outlive_the_dead_letter_queues(cfn: dict[str, Any]) -> None:
    # An event replayed from a dead-letter queue must still be recognised by its idempotency key.
    for function_id in checks.functions(cfn):
        ttl = checks.as_number(checks.env(cfn, function_id)["IDEMPOTENCY_TTL_S"])
        assert ttl > checks.DLQ_RETENTION_S, function_id


def test_alarms_cover_the_operations_list(cfn: dict[str, Any]) -> None:
    # Given
    alarms = checks.resources(cfn, "AWS::CloudWatch::Alarm").values()
    watched = {
        (
            alarm["Properties"]["Namespace"]
            if isinstance(alarm["Properties"]["Namespace"], str)
            else "custom",
            alarm["Properties"]["MetricName"],
        )
        for alarm in alarms
    }

    # Then
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/Lambda", "DestinationDeliveryFailures"),
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/ApiGateway", "Latency"),
        ("custom", "SalesmanagoAuthFailures"),
        ("custom", "OutcomeUnknown"),
        ("custom", "CommandsDeadLettered"),
    } <= watched
    for function in checks.functions(cfn):
        for metric in ("Errors", "Throttles"):
            assert any(
                alarm["Properties"]["MetricName"] == metric
                and checks.refers_to(alarm["Properties"].get("Dimensions"), function)
                for alarm in alarms
            ), (function, metric)


def test_custom_metric_alarms_use_the_service_dimension(cfn: dict[str, Any]) -> None:
    for alarm_id in checks.custom_alarm_metrics(cfn):
        dimensions = checks.props(cfn, alarm_id)["Dimensions"]
        assert [(d["Name"], checks.resolve(cfn, d["Value"])) for d in dimensions] == [
            ("service", "salesmanago-bridge")
        ], alarm_id


def test_every_alarm_metric_is_emitted_by_the_layer(cfn: dict[str, Any]) -> None:
    # Given: every string literal in the layer package
    literals = set()
    for module in LAYER_PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                literals.add(node.value)

    # When
    watched = set().union(*checks.custom_alarm_metrics(cfn).values())

    # Then
    assert watched == {"SalesmanagoAuthFailures", "OutcomeUnknown", "CommandsDeadLettered"}
    assert watched - literals == set()


def test_alarms_notify_the_alarm_topic_when_there_is_one(cfn: dict[str, Any]) -> None:
    for alarm_id in checks.resources(cfn, "AWS::CloudWatch::Alarm"):
        properties = checks.props(cfn, alarm_id)
        for params, expected in (
            ({"AlarmTopicArn": "arn:aws:sns:eu-central-1:123456789012:ops"}, [{"Ref": "AlarmTopicArn"}]),
            ({"AlarmEmail": "ops@example.com"}, [{"Ref": "AlarmTopic"}]),
            ({}, {"Ref": "AWS::NoValue"}),
        ):
            assert checks.pick_if(cfn, properties["AlarmActions"], params) == expected, alarm_id


def test_dashboard_is_valid_json_and_shows_our_metrics(cfn: dict[str, Any]) -> None:
    # Given
    body = checks.dashboard_body(cfn)
    text = json.dumps(body)

    # Then
    assert len(body["widgets"]) >= 10
    for metric in (
        "CommandsApplied",
        "CommandsRetried",
        "CommandsDeadLettered",
        "SalesmanagoLatency",
        "SalesmanagoRequests",
        "LocationMismatches",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Duration",
        "Throttles",
        "ConcurrentExecutions",
        "5XXError",
    ):
        assert metric in text
    assert "SalesmanagoBridge" in text


# ------------------------------------------------------------------ API


def test_api_requires_a_key_and_answers_in_the_error_shape(cfn: dict[str, Any]) -> None:
    assert checks.check_api(cfn) == []


def test_api_routes_match_the_public_contract(cfn: dict[str, Any]) -> None:
    # Given
    body = checks.rest_api_body(cfn, "BridgeApi")

    # When
    routes = {(method.upper(), path) for path, methods in body["paths"].items() for method in methods}

    # Then
    assert routes == {
        ("POST", "/contacts"),
        ("DELETE", "/contacts"),
        ("POST", "/events"),
        ("POST", "/products"),
        ("POST", "/products/stock"),
        ("POST", "/products/price"),
        ("GET", "/contact/{sm_id}"),
        ("GET", "/contact_by_email"),
    }
    (stage,) = checks.resources(cfn, "AWS::ApiGateway::Stage").values()
    assert checks.resolve(cfn, stage["Properties"]["StageName"]) == "Production"


def test_custom_domain_maps_v1_to_the_api_stage(cfn: dict[str, Any]) -> None:
    # Given
    mapping = checks.props(cfn, "ApiBasePathMapping")

    # Then
    assert mapping["BasePath"] == "v1"
    assert mapping["RestApiId"] == {"Ref": "BridgeApi"}
    assert checks.refers_to(mapping["Stage"], "BridgeApiStage")
    assert cfn["Resources"]["ApiBasePathMapping"]["Condition"] == "HasCustomDomain"
    assert checks.evaluate_condition(cfn, {"Condition": "HasCustomDomain"}, {}) is False
    assert checks.evaluate_condition(cfn, {"Condition": "HasCustomDomain"}, {"DomainName": "api.example.com"})
    assert checks.rule_failures(cfn, {"DomainName": "api.example.com"}) == [
        "DomainName needs CertificateArn."
    ]


# ------------------------------------------------------------------ intake modes


@pytest.mark.parametrize(
    ("params", "topic_target", "bus_target"),
    [
        (DIRECT, "SnsConsumerFunction", "EventBridgeConsumerFunction"),
        (BUFFERED, "CommandsQueue", "CommandsQueue"),
    ],
)
def test_topic_and_bus_each_feed_exactly_one_consumer(
    cfn: dict[str, Any], params: dict[str, str], topic_target: str, bus_target: str
) -> None:
    # Given
    active = checks.active_resources(cfn, params)

    # When
    subscriptions = [r["Properties"] for r in active.values() if r["Type"] == "AWS::SNS::Subscription"]
    rules = [r["Properties"] for r in active.values() if r["Type"] == "AWS::Events::Rule"]

    # Then: one path per source, so no command is applied twice
    def reached(value: object) -> set[str]:
        return checks.invoked_functions(cfn, value) or checks.referenced_ids(value)

    assert [reached(s["Endpoint"]) for s in subscriptions] == [{topic_target}]
    assert [[reached(t["Arn"]) for t in rule["Targets"]] for rule in rules] == [[{bus_target}]]
    (rule,) = rules
    assert sorted(checks.pick_if(cfn, rule["EventPattern"], params)["detail-type"]) == sorted(checks.ACTIONS)
    if params is BUFFERED:
        assert subscriptions[0]["RawMessageDelivery"] is True
        assert "CommandsQueuePolicy" in active


def test_failure_queue_accepts_dead_letters_from_the_active_rule(cfn: dict[str, Any]) -> None:
    for params, rule in ((DIRECT, "CommandsRule"), (BUFFERED, "BufferedCommandsRule")):
        # Given
        statements = checks.props(cfn, "FailureQueuePolicy")["PolicyDocument"]["Statement"]

        # When
        (events,) = [s for s in statements if s["Principal"] == {"Service": "events.amazonaws.com"}]
        source = checks.pick_if(cfn, events["Condition"]["ArnEquals"]["aws:SourceArn"], params)

        # Then
        assert source == {"Fn::GetAtt": [rule, "Arn"]}


def test_own_event_bus_unless_one_is_named(cfn: dict[str, Any]) -> None:
    rule = checks.props(cfn, "CommandsRule")
    assert checks.pick_if(cfn, rule["EventBusName"], {}) == {"Ref": "CommandsEventBus"}
    assert checks.pick_if(cfn, rule["EventBusName"], {"EventBusName": "shop"}) == {"Ref": "EventBusName"}
    assert "CommandsEventBus" not in checks.active_resources(cfn, {"EventBusName": "shop"})


# ------------------------------------------------------------------ the layer as sam build sees it


def test_layer_is_built_from_the_package_folder(sam_template: dict[str, Any]) -> None:
    # Given
    layer = sam_template["Resources"]["SharedLayer"]
    content = ROOT / layer["Properties"]["ContentUri"]

    # Then: BuildMethod python3.13 installs requirements.txt and the package under python/
    assert layer["Metadata"]["BuildMethod"] in {"python3.13", "makefile"}
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert (content / "requirements.txt").is_file()
    assert (content / "salesmanago_bridge" / "__init__.py").is_file()


def test_layer_ships_bytecode_and_not_what_the_runtime_provides(sam_template: dict[str, Any]) -> None:
    # Given the layer's build recipe (BuildMethod makefile)
    assert sam_template["Resources"]["SharedLayer"]["Metadata"]["BuildMethod"] == "makefile"
    recipe = (ROOT / "layers" / "shared" / "Makefile").read_text()
    # Then it builds arm64 wheels for 3.13, drops boto3/botocore and compiles unchecked-hash bytecode
    assert "build-SharedLayer:" in recipe
    assert "--python-version 3.13" in recipe
    assert "--platform manylinux2014_aarch64 " in layer_make().stdout
    assert "botocore" in recipe.split("RUNTIME_PROVIDED =")[1].splitlines()[0]
    assert "compileall" in recipe and "--invalidation-mode unchecked-hash" in recipe
    # from the hashed lock only (tests/unit/test_dependency_locks.py checks the lock itself)
    assert "--require-hashes -r requirements.lock" in recipe


def layer_make(*overrides: str) -> subprocess.CompletedProcess[str]:
    """What sam build would run for the layer (make -n), with these make variables."""
    command = ["make", "-n", "-C", str(ROOT / "layers" / "shared"), "build-SharedLayer", "ARTIFACTS_DIR=out"]
    return subprocess.run([*command, *overrides], capture_output=True, text=True, check=False)  # noqa: S603


def test_layer_architecture_can_be_overridden_for_a_local_run() -> None:
    # make e2e builds for this machine: ARCH=x86_64 picks x86_64 wheels, anything else is refused
    assert "--platform manylinux2014_x86_64 " in layer_make("ARCH=x86_64").stdout
    refused = layer_make("ARCH=sparc")
    assert refused.returncode != 0 and "ARCH must be arm64 or x86_64" in refused.stderr


def test_every_function_code_folder_has_its_handler(sam_template: dict[str, Any]) -> None:
    for key, resource in sam_template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert (ROOT / resource["Properties"]["CodeUri"] / "app.py").is_file(), key


def test_no_machine_paths_in_deploy_files() -> None:
    for name in ("template.yaml", "samconfig.toml", "docs/deploy.md", "docs/architecture.md"):
        path = ROOT / name
        if path.exists():
            assert not re.search(r"/work/|/home/|/root/|/tmp/", path.read_text()), name


def test_outputs_name_every_entry_point(cfn: dict[str, Any]) -> None:
    assert {
        "ApiUrl",
        "CustomDomainApiUrl",
        "CommandsQueueUrl",
        "BackfillQueueUrl",
        "CommandsDeadLetterQueueUrl",
        "FailureQueueUrl",
        "CommandsTopicArn",
        "EventBusName",
        "DashboardUrl",
        "GroupConfigPath",
    } <= set(cfn["Outputs"])
    assert cfn["Outputs"]["GroupConfigPath"]["Value"] == {"Fn::Sub": "/salesmanago/${Stage}/groups/"}
    assert cfn["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"].endswith("/${ApiStageName}/")


# ------------------------------------------------------------------ the checks can fail


def _first_mapping(cfn: dict[str, Any]) -> dict[str, Any]:
    return next(properties for _, properties, _, _ in checks.sqs_mappings(cfn))


def _set_receive_count(cfn: dict[str, Any]) -> None:
    checks.props(cfn, "BackfillQueue")["RedrivePolicy"]["maxReceiveCount"] = 3


def _shrink_visibility(cfn: dict[str, Any]) -> None:
    checks.props(cfn, "CommandsQueue")["VisibilityTimeout"] = 360


def _drop_item_failures(cfn: dict[str, Any]) -> None:
    _first_mapping(cfn)["FunctionResponseTypes"] = []


def _drop_concurrency_cap(cfn: dict[str, Any]) -> None:
    del _first_mapping(cfn)["ScalingConfig"]


def _drop_dlq_alarm(cfn: dict[str, Any]) -> None:
    del cfn["Resources"]["FailureQueueAlarm"]


def _aws_managed_queue_key(cfn: dict[str, Any]) -> None:
    checks.props(cfn, "CommandsQueue")["KmsMasterKeyId"] = "alias/aws/sqs"


def _drop_event_invoke_config(cfn: dict[str, Any]) -> None:
    del cfn["Resources"]["SnsConsumerFunctionEventInvokeConfig"]


def _star_on_sqs(cfn: dict[str, Any]) -> None:
    statements = checks.props(cfn, "SqsConsumerRole")["Policies"][0]["PolicyDocument"]["Statement"]
    statements[0]["Resource"] = "*"


def _ssm_outside_groups(cfn: dict[str, Any]) -> None:
    statement = checks.props(cfn, "BridgeFunctionsPolicy")["PolicyDocument"]["Statement"][0]
    statement["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/*"
    }


def _api_key_not_required(cfn: dict[str, Any]) -> None:
    checks.rest_api_body(cfn, "BridgeApi")["paths"]["/events"]["post"]["security"] = []


def _plain_text_gateway_response(cfn: dict[str, Any]) -> None:
    responses = checks.rest_api_body(cfn, "BridgeApi")["x-amazon-apigateway-gateway-responses"]
    responses["THROTTLED"]["responseTemplates"]["application/json"] = "Too many requests"


def _no_ttl(cfn: dict[str, Any]) -> None:
    checks.props(cfn, "IdempotencyTable")["TimeToLiveSpecification"]["Enabled"] = False


def _send_to_commands_queue(cfn: dict[str, Any]) -> None:
    statements = checks.props(cfn, "SqsConsumerRole")["Policies"][0]["PolicyDocument"]["Statement"]
    statements[1]["Resource"] = {"Fn::GetAtt": ["CommandsQueue", "Arn"]}


def _log_query_strings(cfn: dict[str, Any]) -> None:
    stage = checks.props(cfn, "BridgeApiStage")
    stage["AccessLogSetting"]["Format"] = '{"path": "$context.path", "query": "$input.params().querystring"}'


def _no_log_retention(cfn: dict[str, Any]) -> None:
    del checks.props(cfn, "ApiFunctionLogGroup")["RetentionInDays"]


MUTATIONS: list[tuple[Callable[[dict[str, Any]], None], Callable[[dict[str, Any]], list[str]]]] = [
    (_set_receive_count, checks.check_redrive_policies),
    (_shrink_visibility, checks.check_visibility_timeouts),
    (_drop_item_failures, checks.check_mapping_settings),
    (_drop_concurrency_cap, checks.check_mapping_settings),
    (_drop_dlq_alarm, checks.check_dead_letter_alarms),
    (_aws_managed_queue_key, checks.check_queue_encryption),
    (_drop_event_invoke_config, checks.check_on_failure_paths),
    (_star_on_sqs, checks.check_no_star_on_data_services),
    (_ssm_outside_groups, checks.check_group_config_access),
    (_api_key_not_required, checks.check_api),
    (_plain_text_gateway_response, checks.check_api),
    (_no_ttl, checks.check_idempotency_table),
    (_send_to_commands_queue, checks.check_send_targets),
    (_log_query_strings, checks.check_api),
    (_no_log_retention, checks.check_log_groups),
]


@pytest.mark.parametrize(("mutate", "check"), MUTATIONS, ids=[m.__name__.strip("_") for m, _ in MUTATIONS])
def test_check_catches_a_broken_template(
    cfn: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
    check: Callable[[dict[str, Any]], list[str]],
) -> None:
    # Given: the real template passes
    assert check(cfn) == []

    # When
    mutate(cfn)

    # Then
    assert check(cfn) != []


def test_batch_window_check_needs_the_template_rule(cfn: dict[str, Any]) -> None:
    # Given: the Rules section removed
    del cfn["Rules"]["LargeBatchesNeedAWindow"]
    params = {"SqsBatchSize": "500", "SqsBatchingWindowSeconds": "0"}

    # When / Then: nothing stops a deploy that Lambda would reject
    assert checks.rule_failures(cfn, params) == []
    assert checks.check_batch_windows(cfn, params) != []


def test_sam_default_role_for_sqs_events_grants_star_on_sqs(sam_template: dict[str, Any]) -> None:
    # Given: the SQS consumer without its own role, so SAM builds one
    function = sam_template["Resources"]["SqsConsumerFunction"]["Properties"]
    del function["Role"]
    function["Policies"] = [{"Ref": "BridgeFunctionsPolicy"}]

    # When
    problems = checks.check_no_star_on_data_services(translate(copy.deepcopy(sam_template)))

    # Then: SAM's AWSLambdaSQSQueueExecutionRole (sqs:* actions on "*") is caught
    assert any("AWSLambdaSQSQueueExecutionRole" in problem for problem in problems)


# ------------------------------------------------------------------ samconfig.toml


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_samconfig_deploys_each_stage_with_known_parameters(cfn: dict[str, Any], environment: str) -> None:
    # Given
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())

    # When
    deploy = config[environment]["deploy"]["parameters"]
    overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])

    # Then
    assert overrides["Stage"] == environment
    assert set(overrides) <= set(cfn["Parameters"])
    for name, value in overrides.items():
        allowed = cfn["Parameters"][name].get("AllowedValues")
        assert allowed is None or value in [str(v) for v in allowed], name
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    assert config[environment]["global"]["parameters"]["stack_name"] == f"salesmanago-bridge-{environment}"
