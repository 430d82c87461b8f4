"""Chaos on the AWS side: SSM, DynamoDB and the dead-letter queue fail, and still nothing is lost or doubled.

The faults are injected in botocore's event system (``tests/reliability/aws_faults.py``), so they reach
the clients the bridge and Powertools build for themselves. Scripted here, one failure class at a time
per source; the random run of ``test_chaos.py`` draws them at ``ChaosConfig.aws_fault_rate``.
"""

from __future__ import annotations

import pytest

from tests.reliability.chaos import ChaosRun
from tests.reliability.test_chaos import chaos_run, generator, play, violations

__all__ = ["chaos_run"]  # the module's environment, shared with test_chaos.py's scenarios


# ---- regressions of what the random run found ----------------------------------------------------
# DynamoDB calls of the scenario: the first delivery reads (1) and claims (2), then dies; the second
# reads (3), reads again before the takeover (4), and takes the claim over (5).
@pytest.mark.parametrize(
    ("operation", "kind", "after"),
    [
        ("PutItem", "throttling", 1),  # the takeover's write refused
        ("PutItem", "internal_error", 1),
        ("*", "timeout_after_apply", 4),  # the takeover's first write applied, its caller not told
    ],
)
def test_chaos_aws_takeover_that_fails_keeps_the_doubt(
    chaos_run: ChaosRun, operation: str, kind: str, after: int
):
    # Given an event SALESmanago accepted before the process died (its claim is left in progress),
    # and the next delivery's takeover of that claim fails in DynamoDB
    gen = generator()
    command = gen.single("sqs", "event.create")
    # When it is delivered until it ends
    aws = (("dynamodb", operation, kind, after),)
    played = play(chaos_run, gen, [command], crashes=("after_accept",), aws=aws)
    # Then the doubt survives the failed takeover: the event is looked up, not created twice
    assert played.events(command) == 1
    assert violations(played.verdict) == {}
    assert chaos_run.aws.drawn[("dynamodb", kind)] == 1
