"""cfn-lint with the serverless rules on template.yaml, and proof that the pinned cfn-lint lints SAM.

cfn-lint 1.54.0 stopped running the SAM translator and validates AWS::Serverless resources
against bundled schemas instead. Every release from 1.54.0 to 1.58.0 passes each broken template
below without a finding (checked by hand: 1.54.0, 1.55.1, 1.56.3, 1.57.2, 1.58.0); 1.53.3, the
last release that translates, catches them all. That is why pyproject.toml pins it, and why these
tests fail if someone upgrades it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import cfnlint.version
import pytest
from cfnlint.config import ConfigMixIn
from cfnlint.runner import Runner
from sam_translation import LINT_REGION, ROOT, TEMPLATE

PINNED_CFN_LINT = "1.53.3"
SERVERLESS_RULES = "cfn_lint_serverless.rules"

VALID_SAM = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: Production
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.lambda_handler
      Runtime: python3.13
      InlineCode: "def lambda_handler(event, context): return None"
      Events:
        Commands:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
        Contacts:
          Type: Api
          Properties:
            RestApiId: !Ref Api
            Path: /contacts
            Method: post
"""

# (name, text to replace in VALID_SAM, replacement, the finding 1.53.3 reports)
BROKEN_SAM = [
    ("api event without a path", "            Path: /contacts\n", "", "E0001"),
    ("sqs event on a queue that does not exist", "!GetAtt Queue.Arn", "!GetAtt Nope.Arn", "E1010"),
    (
        "misspelt batch item failures",
        "[ReportBatchItemFailures]",
        "[ReportBatchFailures]",
        "E3030",
    ),
    (
        "concurrency cap below the minimum",
        "            Queue: !GetAtt Queue.Arn\n",
        "            Queue: !GetAtt Queue.Arn\n"
        "            ScalingConfig:\n              MaximumConcurrency: 1\n",
        "E3034",
    ),
    (
        "batch size above the maximum",
        "            Queue: !GetAtt Queue.Arn\n",
        "            Queue: !GetAtt Queue.Arn\n            BatchSize: 20000\n",
        "E3034",
    ),
    (
        "async retries above the maximum",
        "      Events:\n",
        "      EventInvokeConfig:\n        MaximumRetryAttempts: 5\n      Events:\n",
        "E3034",
    ),
    (
        "policy template without its parameter",
        "      Events:\n",
        "      Policies:\n        - SQSSendMessagePolicy:\n            QueueNam: x\n      Events:\n",
        "E0001",
    ),
    (
        "dead-letter queue without a target",
        "      Events:\n",
        "      DeadLetterQueue:\n        Type: SQS\n      Events:\n",
        "E0001",
    ),
]


def lint(path: Path, *, serverless_rules: bool = True) -> list[tuple[str, str]]:
    """(rule id, message) of every finding; with the serverless rules, as `make lint-template` runs."""
    extra = ["--append-rules", SERVERLESS_RULES] if serverless_rules else []
    config = ConfigMixIn([*extra, "--regions", LINT_REGION, "--", str(path)])
    return [(match.rule.id, match.message) for match in Runner(config).run()]


def test_cfn_lint_is_the_pinned_version() -> None:
    # Given
    dev_extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "dev"
    ]

    # Then
    assert f"cfn-lint=={PINNED_CFN_LINT}" in dev_extras
    assert cfnlint.version.__version__ == PINNED_CFN_LINT


def test_template_has_no_findings() -> None:
    assert lint(TEMPLATE) == []


def test_every_suppression_says_why() -> None:
    # Given
    lines = TEMPLATE.read_text().splitlines()

    # When: every rule id listed under an ignore_checks key
    suppressed = []
    in_list = False
    for index, line in enumerate(lines):
        if line.strip() == "ignore_checks:":
            in_list = True
        elif in_list and re.fullmatch(r"\s*- [A-Z]+\d{4}", line):
            suppressed.append(index)
        elif in_list and not line.strip().startswith("#"):
            in_list = False

    # Then: each one has a comment right above it
    assert suppressed
    for index in suppressed:
        assert lines[index - 1].strip().startswith("#"), lines[index]


def test_serverless_rules_run(tmp_path: Path) -> None:
    # Given: the template with its ES1001 suppression swapped for a rule that does not fire
    text = TEMPLATE.read_text().replace("        - ES1001\n", "        - ES2000\n")
    unsuppressed = tmp_path / "template.yaml"
    unsuppressed.write_text(text)

    # When
    rules = {rule for rule, _ in lint(unsuppressed)}

    # Then: the rule from cfn-lint-serverless reports the two SQS mappings
    assert rules == {"ES1001"}


def test_valid_sam_template_has_no_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Core rules only: away from the repository's .cfnlintrc.yaml, which adds the serverless ones
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "valid.yaml"
    path.write_text(VALID_SAM)
    assert lint(path, serverless_rules=False) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"), [case[1:] for case in BROKEN_SAM], ids=[c[0] for c in BROKEN_SAM]
)
def test_pinned_cfn_lint_catches_broken_sam_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str, expected: str
) -> None:
    # Given: core rules only, as in test_valid_sam_template_has_no_findings
    monkeypatch.chdir(tmp_path)
    assert old in VALID_SAM
    path = tmp_path / "broken.yaml"
    path.write_text(VALID_SAM.replace(old, new, 1))

    # When
    rules = {rule for rule, _ in lint(path, serverless_rules=False)}

    # Then
    assert expected in rules
