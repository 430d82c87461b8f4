"""What a consumer's cold start loads: with priming off, only its common path (issue 3); with
priming on (the default), also what a first invocation would load, and nothing of the API's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_AT_IMPORT = (
    "boto3",  # SSM, DynamoDB and SQS clients are built when first used
    "aws_lambda_powertools.utilities.idempotency",  # only for the first batch holding an event
    "aws_lambda_powertools.utilities.parameters",  # only for the first group lookup (SSM)
    "aws_lambda_powertools.event_handler",  # the API's
    "aws_lambda_powertools.utilities.parser",
    "email_validator",  # only for an address the fast check does not settle
)
PRIMED_FOR_EVENTS = ("boto3", "aws_lambda_powertools.utilities.idempotency")
PRIMED_FOR_SSM = ("aws_lambda_powertools.utilities.parameters",)


def loaded_at_init(function: str, **extra_env: str) -> list[str]:
    """The modules of NOT_AT_IMPORT that the import (with its priming) and the dispatcher load."""
    probe = (
        "import json, sys, app\n"
        "from salesmanago_bridge.dispatch import get_dispatcher\n"
        "get_dispatcher()\n"
        f"print(json.dumps([m for m in {NOT_AT_IMPORT!r} if m in sys.modules]))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "shared"), str(ROOT)]),
        "AWS_REGION": "eu-central-1",
        "IDEMPOTENCY_TABLE_NAME": "salesmanago-bridge-idempotency",  # configured, as deployed
        "SALESMANAGO_GROUPS_FILE": str(ROOT / "local" / "groups.sample.json"),
        # the pseudonym key is configured as deployed; it is read on the first pseudonym, not here
        "PSEUDONYM_KEY_SECRET_ID": "salesmanago/dev/pseudonym-key",
        **extra_env,
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", probe],
        cwd=ROOT / "functions" / function,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize("function", ["sqs_consumer", "sns_consumer", "eventbridge_consumer"])
def test_cold_start_without_priming_leaves_rare_paths_unloaded(function: str) -> None:
    # The import, then the dispatcher a first invocation builds (its guard stays a factory)
    assert loaded_at_init(function, BRIDGE_PRIMING="false") == []


@pytest.mark.parametrize("function", ["sqs_consumer", "sns_consumer", "eventbridge_consumer"])
def test_priming_builds_the_event_guard_when_the_function_is_set_up_for_events(function: str) -> None:
    # With a table: the guard and its DynamoDB client at init; groups from a file: no SSM client
    assert loaded_at_init(function) == list(PRIMED_FOR_EVENTS)
    # Without a table: nothing of idempotency, and boto3 only for the SSM client when groups are in SSM
    assert loaded_at_init(function, IDEMPOTENCY_TABLE_NAME="") == []
    ssm = loaded_at_init(function, IDEMPOTENCY_TABLE_NAME="", SALESMANAGO_GROUPS_FILE="")
    assert ssm == ["boto3", *PRIMED_FOR_SSM]
