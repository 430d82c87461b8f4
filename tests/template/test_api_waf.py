"""The optional WAF web ACL (ApiRateLimitPerIp): off by default, a rate-based rule per IP on the API stage."""

from __future__ import annotations

import re
from typing import Any

import pytest
import template_checks as checks

WAF_RESOURCES = {"ApiWebAcl", "ApiWebAclAssociation"}


def test_api_waf_is_off_by_default(cfn: dict[str, Any]) -> None:
    # Given / When
    active = checks.active_resources(cfn, {})

    # Then
    assert cfn["Parameters"]["ApiRateLimitPerIp"]["Default"] == "0"
    assert not WAF_RESOURCES & set(active)
    assert set(cfn["Resources"]) >= WAF_RESOURCES


def test_api_waf_limits_each_source_ip_on_the_api_stage(cfn: dict[str, Any]) -> None:
    # Given / When
    active = checks.active_resources(cfn, {"ApiRateLimitPerIp": "2000"})

    # Then: one rate-based rule keyed on the source IP, answering 429 in the API's error shape
    assert set(active) >= WAF_RESOURCES
    acl = active["ApiWebAcl"]["Properties"]
    (rule,) = acl["Rules"]
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    assert statement["Limit"] == {"Ref": "ApiRateLimitPerIp"}
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    block = rule["Action"]["Block"]["CustomResponse"]
    assert block["ResponseCode"] == 429
    assert '"code": "throttled"' in acl["CustomResponseBodies"][block["CustomResponseBodyKey"]]["Content"]
    # And: attached to the REST API's own stage
    arn = active["ApiWebAclAssociation"]["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("::/restapis/${BridgeApi}/stages/${BridgeApiStage}")
    assert cfn["Resources"]["BridgeApiStage"]["Type"] == "AWS::ApiGateway::Stage"


@pytest.mark.parametrize(
    ("value", "accepted"), [("0", True), ("10", True), ("2000", True), ("5", False), ("010", False)]
)
def test_api_waf_limit_is_zero_or_at_least_ten(cfn: dict[str, Any], value: str, accepted: bool) -> None:
    pattern = cfn["Parameters"]["ApiRateLimitPerIp"]["AllowedPattern"]

    assert bool(re.fullmatch(pattern, value)) is accepted
