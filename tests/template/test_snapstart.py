"""SnapStart wiring: the parameters and conditions, the alias, and every entry point on the alias."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest
import template_checks as checks
from sam_translation import ROOT, translate

ALIAS = "live"
API = "ApiFunction"
CONSUMERS = ("SqsConsumerFunction", "SnsConsumerFunction", "EventBridgeConsumerFunction")
SNAPSTART_RUNTIMES = ("python3.12", "python3.13")  # SnapStart for Python: 3.12 and later
MAX_SNAPSTART_EPHEMERAL_MB = 512
ALL_ON = {"ApiSnapStart": "true", "ConsumersSnapStart": "true"}


def snapstart_apply_on(cfn: dict[str, Any], function_id: str, params: dict[str, str]) -> str:
    """What ApplyOn a function gets with these parameter values (None when absent)."""
    snapstart = checks.pick_if(cfn, checks.props(cfn, function_id).get("SnapStart", {}), params)
    return str(snapstart.get("ApplyOn", "None"))


def alias_of(cfn: dict[str, Any], function_id: str) -> str:
    (alias,) = [key for key, function in checks.aliases(cfn).items() if function == function_id]
    return alias


def entry_points_not_on_alias(cfn: dict[str, Any]) -> list[str]:
    """Every way in (API integration, mappings, subscriptions, rules, permissions, invoke configs)
    that reaches a function without its alias: SnapStart would never be used there."""
    problems = []
    by_alias = checks.aliases(cfn)

    def check(where: str, value: Any) -> None:
        names = checks.referenced_ids(value)
        direct = names & set(checks.functions(cfn))
        if direct and not names & set(by_alias):
            problems.append(f"{where} invokes {sorted(direct)} without its alias")

    for path, methods in checks.rest_api_body(cfn, "BridgeApi")["paths"].items():
        for method, operation in methods.items():
            integration = operation.get("x-amazon-apigateway-integration")
            if integration:
                check(f"{method.upper()} {path}", integration["uri"])
    for key, mapping in checks.resources(cfn, "AWS::Lambda::EventSourceMapping").items():
        check(key, mapping["Properties"]["FunctionName"])
    for key, subscription in checks.resources(cfn, "AWS::SNS::Subscription").items():
        check(key, subscription["Properties"]["Endpoint"])
    for key, rule in checks.resources(cfn, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            check(f"{key} target {target['Id']}", target["Arn"])
    for key, permission in checks.resources(cfn, "AWS::Lambda::Permission").items():
        check(key, permission["Properties"]["FunctionName"])
    for key, config in checks.resources(cfn, "AWS::Lambda::EventInvokeConfig").items():
        if config["Properties"].get("Qualifier") != ALIAS:
            problems.append(f"{key} applies to {config['Properties'].get('Qualifier')}, not the alias")
    return problems


# ------------------------------------------------------------------ the parameters


def test_snapstart_is_off_unless_a_parameter_turns_it_on(cfn: dict[str, Any]) -> None:
    # Given: the template's defaults
    defaults: dict[str, str] = {}

    # When / Then
    for function in (API, *CONSUMERS):
        assert snapstart_apply_on(cfn, function, defaults) == "None", function
    assert snapstart_apply_on(cfn, API, {"ApiSnapStart": "true"}) == "PublishedVersions"
    for function in CONSUMERS:  # the API's parameter is the API's alone
        assert snapstart_apply_on(cfn, function, {"ApiSnapStart": "true"}) == "None", function
        assert snapstart_apply_on(cfn, function, {"ConsumersSnapStart": "true"}) == "PublishedVersions"
    assert snapstart_apply_on(cfn, API, {"ConsumersSnapStart": "true"}) == "None"


def test_conditions_follow_their_parameters(cfn: dict[str, Any]) -> None:
    for condition, parameter in (
        ("ApiSnapStartOn", "ApiSnapStart"),
        ("ConsumersSnapStartOn", "ConsumersSnapStart"),
    ):
        # Given
        expression = {"Condition": condition}

        # When / Then
        assert checks.evaluate_condition(cfn, expression, {parameter: "true"}) is True
        assert checks.evaluate_condition(cfn, expression, {parameter: "false"}) is False
        assert cfn["Parameters"][parameter]["AllowedValues"] == ["true", "false"]


@pytest.mark.parametrize(("environment", "api_on"), [("prod", "true"), ("dev", None)])
def test_prod_configuration_turns_snapstart_on_for_the_api_only(environment: str, api_on: str | None) -> None:
    # Given
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())

    # When
    overrides = dict(
        item.split("=", 1) for item in config[environment]["deploy"]["parameters"]["parameter_overrides"]
    )

    # Then: on in prod; the consumers keep the template's default (off)
    assert overrides.get("ApiSnapStart") == api_on
    assert "ConsumersSnapStart" not in overrides


def test_snapstart_functions_meet_its_limits(cfn: dict[str, Any]) -> None:
    # Given: every function with SnapStart on
    for function in (API, *CONSUMERS):
        properties = checks.props(cfn, function)

        # When / Then: a runtime SnapStart supports; no EFS, no large ephemeral storage
        assert snapstart_apply_on(cfn, function, ALL_ON) == "PublishedVersions"
        assert properties["Runtime"] in SNAPSTART_RUNTIMES
        assert "FileSystemConfigs" not in properties
        assert properties.get("EphemeralStorage", {}).get("Size", 512) <= MAX_SNAPSTART_EPHEMERAL_MB
    # ... and no provisioned concurrency anywhere (SnapStart and it exclude each other)
    for alias in checks.resources(cfn, "AWS::Lambda::Alias").values():
        assert "ProvisionedConcurrencyConfig" not in alias["Properties"]
    for version in checks.resources(cfn, "AWS::Lambda::Version").values():
        assert "ProvisionedConcurrencyConfig" not in version["Properties"]


# ------------------------------------------------------------------ the alias


def test_every_function_publishes_versions_behind_the_live_alias(cfn: dict[str, Any]) -> None:
    for function in (API, *CONSUMERS):
        # Given
        alias = checks.props(cfn, alias_of(cfn, function))

        # When
        (version_id,) = checks.referenced_ids(alias["FunctionVersion"])

        # Then: whatever the SnapStart parameters say, the alias and its version exist
        assert alias["Name"] == ALIAS
        assert checks.resources(cfn, "AWS::Lambda::Version")[version_id]["Properties"]["FunctionName"] == {
            "Ref": function
        }
        assert "Condition" not in cfn["Resources"][alias_of(cfn, function)]


def test_a_new_layer_publishes_a_new_version_of_every_function(sam_template: dict[str, Any]) -> None:
    # Given: the code lives in the layer; only its content changes
    changed = copy.deepcopy(sam_template)
    changed["Resources"]["SharedLayer"]["Properties"]["ContentUri"] = "layers/shared-changed/"

    # When
    before = set(checks.resources(translate(sam_template), "AWS::Lambda::Version"))
    after = set(checks.resources(translate(changed), "AWS::Lambda::Version"))

    # Then: the alias moves to versions with the new layer
    assert len(before) == 4
    assert before.isdisjoint(after)


def test_api_integration_and_event_sources_point_at_the_alias(cfn: dict[str, Any]) -> None:
    # Given / When
    problems = entry_points_not_on_alias(cfn)

    # Then
    assert problems == []
    uris = [
        operation["x-amazon-apigateway-integration"]["uri"]
        for methods in checks.rest_api_body(cfn, "BridgeApi")["paths"].values()
        for operation in methods.values()
        if "x-amazon-apigateway-integration" in operation
    ]
    assert len(uris) == 8  # every route (test_template.py lists them)
    assert all(checks.referenced_ids(uri) == {alias_of(cfn, API)} for uri in uris)
    for function in CONSUMERS:
        entry_points = [
            *(p for _, p, _, f in checks.sqs_mappings(cfn) if f == function),
            *checks.async_sources(cfn, function),
        ]
        assert entry_points, f"{function} has no event source"


def _sns_to_function(cfn: dict[str, Any]) -> None:
    checks.props(cfn, "SnsConsumerSubscription")["Endpoint"] = {"Fn::GetAtt": ["SnsConsumerFunction", "Arn"]}


def _rule_to_function(cfn: dict[str, Any]) -> None:
    checks.props(cfn, "CommandsRule")["Targets"][0]["Arn"] = {
        "Fn::GetAtt": ["EventBridgeConsumerFunction", "Arn"]
    }


def _mapping_to_function(cfn: dict[str, Any]) -> None:
    checks.props(cfn, "SqsConsumerFunctionCommandsQueue")["FunctionName"] = {"Ref": "SqsConsumerFunction"}


def _api_to_function(cfn: dict[str, Any]) -> None:
    operation = checks.rest_api_body(cfn, "BridgeApi")["paths"]["/events"]["post"]
    operation["x-amazon-apigateway-integration"]["uri"] = {
        "Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        "${ApiFunction.Arn}/invocations"
    }


def _invoke_config_on_latest(cfn: dict[str, Any]) -> None:
    checks.props(cfn, "SnsConsumerFunctionEventInvokeConfig")["Qualifier"] = "$LATEST"


@pytest.mark.parametrize(
    "break_it",
    [_sns_to_function, _rule_to_function, _mapping_to_function, _api_to_function, _invoke_config_on_latest],
)
def test_the_alias_check_catches_an_entry_point_past_the_alias(cfn: dict[str, Any], break_it: Any) -> None:
    # Given
    break_it(cfn)

    # When / Then
    assert entry_points_not_on_alias(cfn) != []
