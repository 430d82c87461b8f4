"""A consumer's cold start loads only what its common path uses (issue 3: import only what it needs)."""

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


@pytest.mark.parametrize("function", ["sqs_consumer", "sns_consumer", "eventbridge_consumer"])
def test_cold_start_consumer_import_leaves_rare_paths_unloaded(function: str):
    # The import, then the dispatcher a first invocation builds (its guard stays a factory)
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
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", probe],
        cwd=ROOT / "functions" / function,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == []
