"""The pseudonym key in the template: made at deploy, named as the CLI expects, read and nothing more."""

from __future__ import annotations

from typing import Any

import template_checks as checks

from salesmanago_bridge.settings import Settings

READ = "secretsmanager:GetSecretValue"


def test_pseudonym_key_is_generated_at_deploy_under_the_name_the_cli_reads(
    sam_template: dict[str, Any],
) -> None:
    # Given
    secret = sam_template["Resources"]["PseudonymKey"]

    # When
    name = secret["Properties"]["Name"]["Fn::Sub"]

    # Then: a value AWS makes (never in the template or a parameter), found by stage
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert "SecretString" not in secret["Properties"]
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert name == Settings.model_construct(stage="${Stage}").pseudonym_key_secret_name


def test_every_function_is_told_where_the_key_is(cfn: dict[str, Any]) -> None:
    for function in checks.functions(cfn):
        assert checks.env(cfn, function)["PSEUDONYM_KEY_SECRET_ID"] == {"Ref": "PseudonymKey"}, function


def test_every_function_may_read_the_key_and_no_other_secret(cfn: dict[str, Any]) -> None:
    for function in checks.functions(cfn):
        # Given
        statements = checks.role_statements(cfn, checks.function_role(cfn, function))

        # When
        secret_statements = [
            statement
            for statement in statements
            if any(str(a).startswith("secretsmanager:") for a in checks.as_list(statement["Action"]))
        ]

        # Then: exactly the read the code makes (privacy.py), on this stack's key only
        assert [(s["Action"], s["Resource"]) for s in secret_statements] == [
            (READ, {"Ref": "PseudonymKey"})
        ], function
