"""Chaos on the AWS side: SSM, DynamoDB and the dead-letter queue fail, and still nothing is lost or doubled.

The faults are injected in botocore's event system (``tests/reliability/aws_faults.py``), so they reach
the clients the bridge and Powertools build for themselves. Scripted here, one failure class at a time
per source; the random run of ``test_chaos.py`` draws them at ``ChaosConfig.aws_fault_rate``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from local.sandbox import Fault
from tests.reliability.chaos import DATE_BASE_MS, ChaosRun
from tests.reliability.test_chaos import SOURCES, chaos_run, commands_for, generator, play, violations

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


# ---- the HTTP API: a failing AWS dependency is a 503 with Retry-After, never a 500 -------------------
API_KINDS = {"ssm": ("throttling", "internal_error", "timeout")}
API_KINDS["dynamodb"] = ("throttling", "internal_error", "timeout_after_apply")
# POST /events with an Idempotency-Key makes these DynamoDB calls, in order: the key's record (put,
# then completed), the event's claim (batch read, conditional put) and its completion (batch write).
EVENT_CALLS = ("PutItem", "UpdateItem", "BatchGetItem", "PutItem", "BatchWriteItem")
API_ATTEMPTS = 40
# The request's time left: a key's in-progress record holds this long (real time, Powertools' clock),
# and the dispatcher has 3 s of it past its deadline margin, enough on a busy machine.
API_TIME_LEFT_S = 6.0


def post_until_answered(run: ChaosRun, path: str, body: dict[str, Any], key: str) -> list[int]:
    """A client that honours Retry-After: the statuses it met, the last one final (not a 503)."""
    statuses: list[int] = []
    for _ in range(API_ATTEMPTS):
        status, reply = run.call_api(
            "POST",
            path,
            json.dumps(body),
            headers={"Idempotency-Key": key},
            request_guard=True,
            time_left_s=API_TIME_LEFT_S,
        )
        statuses.append(status)
        if status != 503:
            return statuses
        assert int(run.api_headers.get("Retry-After", 0)) >= 1, (reply, run.api_headers)
        run.clock.sleep(int(run.api_headers["Retry-After"]))
        time.sleep(0.25)  # a key's record left in progress expires in real time
    return statuses


@pytest.mark.parametrize(
    ("service", "operation", "kind", "after"),
    [("ssm", "*", kind, after) for kind in API_KINDS["ssm"] for after in (0, 1)]
    + [
        ("dynamodb", operation, kind, EVENT_CALLS[:position].count(operation))
        for position, operation in enumerate(EVENT_CALLS)
        for kind in API_KINDS["dynamodb"]
    ],
)
def test_chaos_aws_api_answers_503_with_retry_after_and_creates_the_event_once(
    chaos_run: ChaosRun, service: str, operation: str, kind: str, after: int
):
    # Given an event posted with an Idempotency-Key, the group configs not cached, and one AWS call
    # of the request failing
    from aws_lambda_powertools.utilities.parameters import clear_caches

    chaos_run.reset()
    clear_caches()
    chaos_run.aws.inject(service, operation, kind, after=after)
    gen = generator()
    command = gen.single("api", "event.create", group="demo-shop")
    # When the client sends it until it gets an answer other than 503
    body = {"group_key": command.group_key, "data": command.data}
    statuses = post_until_answered(chaos_run, "/events", body, key=f"key-{command.seq}")
    # Then the failure was a 503 (with Retry-After), never a 500, and the event exists once
    assert chaos_run.aws.drawn[(service, kind)] == 1, (statuses, chaos_run.aws.calls, chaos_run.aws.script)
    assert statuses[-1] == 200, statuses
    assert 500 not in statuses
    assert statuses[0] == 503 or (operation, after) == ("BatchWriteItem", 0), statuses
    events = [e for e in chaos_run.sandbox.events() if e["contactEvent"].get("value") == command.seq / 100]
    assert len(events) == 1


# ---- every AWS failure class, per source -------------------------------------------------------------
# (service, operation, kind): met once by the first such call. The group configs are read cold.
CONSUMER_FAULTS = [
    *(("ssm", "GetParameter", kind) for kind in API_KINDS["ssm"]),
    *(("dynamodb", op, kind) for op in ("BatchGetItem", "PutItem") for kind in API_KINDS["dynamodb"]),
    ("dynamodb", "BatchWriteItem", "throttling"),  # the completion: applied, not recorded
]
DEAD_LETTER_FAULTS = ("refused", "throttling", "internal_error", "timeout_after_accept")


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("service", "operation", "kind"), CONSUMER_FAULTS)
def test_chaos_aws_fault_per_source_is_survived(
    chaos_run: ChaosRun, source: str, service: str, operation: str, kind: str
):
    # Given an event and a contact (a FIFO family: with products) and one failing AWS call
    from aws_lambda_powertools.utilities.parameters import clear_caches

    gen = generator()
    clear_caches()
    # When they are delivered until each ends
    played = play(chaos_run, gen, commands_for(source, gen), aws=((service, operation, kind, 0),))
    # Then each is applied once, nothing parked, the fault met and the record handed back once
    assert chaos_run.aws.drawn[(service, kind)] == 1
    assert violations(played.verdict) == {}
    assert all(not played.letters(command) for command in played.commands)
    assert all(played.events(c) == 1 for c in played.commands if c.action == "event.create")


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("kind", DEAD_LETTER_FAULTS)
def test_chaos_aws_dead_letter_queue_fault_per_source_loses_nothing(
    chaos_run: ChaosRun, source: str, kind: str
):
    # Given an invalid command, and the dead-letter queue failing its first SendMessage
    gen = generator()
    command = gen.invalid(source, "bad_email")
    # When it is delivered until it ends
    played = play(chaos_run, gen, [command], aws=(("sqs", "SendMessage", kind, 0),))
    # Then it is parked with its reason, on a later delivery: twice if SQS took the first one
    letters = played.letters(command)
    assert chaos_run.aws.drawn[("sqs", kind)] == 1
    assert violations(played.verdict) == {}
    assert {letter.error_type for letter in letters} == {"validation"}, letters
    assert len(letters) == (2 if kind == "timeout_after_accept" else 1)
    assert chaos_run.handed_back["dead-letter queue"] == 1


@pytest.mark.parametrize("source", ["sqs", "fifo"])
def test_chaos_aws_dead_letter_queue_down_on_the_last_receive_ends_in_the_redrive(
    chaos_run: ChaosRun, source: str
):
    # Given a contact SALESmanago never accepts (503 every time), and the dead-letter queue refusing
    # the consumer's park on the last receive
    gen = generator()
    command = gen.single(source, "contact.upsert")
    fault = Fault("status", status=503, times=100_000)
    # When it is delivered until it ends
    played = play(chaos_run, gen, [command], faults=(fault,), aws=(("sqs", "SendMessage", "refused", 0),))
    chaos_run.sandbox.clear_faults()
    # Then the queue's redrive policy parks it (no reason: the consumer's own park failed), nothing lost
    assert [letter.where for letter in played.letters(command)] == ["redrive"]
    assert violations(played.verdict) == {}


def test_chaos_aws_fifo_message_held_back_before_it_was_understood_holds_back_its_group(chaos_run: ChaosRun):
    # Given two upserts of one contact in one FIFO group, delivered in one batch, and the first one's
    # group config read from SSM throttled (the second one's read succeeds)
    from aws_lambda_powertools.utilities.parameters import clear_caches

    gen = generator()
    commands = gen.family(["contact.upsert", "contact.upsert"])
    clear_caches()
    # When they are delivered until each ends
    played = play(chaos_run, gen, commands, aws=(("ssm", "GetParameter", "throttling", 0),))
    # Then the second waits for the first: the contact ends as the second upsert wrote it
    assert chaos_run.aws.drawn[("ssm", "throttling")] == 1
    assert violations(played.verdict) == {}


def test_chaos_aws_refused_command_the_dead_letter_queue_cannot_take_holds_back_its_group(
    chaos_run: ChaosRun,
):
    # Given an upsert and then a delete of one contact in one FIFO group, delivered in one batch: the
    # upsert refused once by SALESmanago, and the dead-letter queue refusing to take it
    gen = generator()
    commands = gen.family(["contact.upsert", "contact.upsert", "contact.delete"])
    refusal = Fault("success_false", path="contact/upsert", message="refused once")
    # When they are delivered until each ends
    played = play(chaos_run, gen, commands, faults=(refusal,), aws=(("sqs", "SendMessage", "refused", 0),))
    # Then the upsert kept at its source holds back the delete: the contact ends deleted, not revived
    assert chaos_run.aws.drawn[("sqs", "refused")] == 1
    assert violations(played.verdict) == {}


@pytest.mark.parametrize("source", ["sqs", "fifo"])
@pytest.mark.parametrize("dated", [False, True], ids=["undated", "dated"])
def test_chaos_aws_event_parked_before_it_was_understood_is_replayed_once(
    chaos_run: ChaosRun, source: str, dated: bool
):
    # Given an event whose action is a message attribute (not in the body), and its group config
    # unreadable (SSM throttled) on every receive, so it is parked on its last receive before it
    # ever became a command (found by make chaos N=100000: #92879 and #97960, both FIFO)
    from aws_lambda_powertools.utilities.parameters import clear_caches

    gen = generator()
    command = gen.family(["event.create"])[0] if source == "fifo" else gen.single(source, "event.create")
    command.action_in_body, command.id, command.wrapper = False, None, None
    command.event_date_ms = DATE_BASE_MS + command.seq * 1000 if dated else None
    command.data.pop("date", None)
    if dated:
        command.data["date"] = command.event_date_ms
    clear_caches()
    receives = chaos_run.config.max_receive_count
    ssm = tuple(("ssm", "GetParameter", "throttling", 0) for _ in range(receives))
    # When it is delivered until it ends, and its dead letter is replayed as an operator would
    played = play(chaos_run, gen, [command], aws=ssm, replay=True)
    # Then the dead letter names its action and keeps its date, and the replay creates the event once
    [letter] = played.letters(command)
    assert (letter.where, letter.error_type) == ("dlq", "unavailable")
    assert letter.body["action"] == "event.create"
    assert letter.body["data"]["date"] in (command.sent_ms, command.data.get("date"))
    assert chaos_run.aws.drawn[("ssm", "throttling")] == receives
    assert violations(played.verdict) == {}
    events = [e for e in chaos_run.sandbox.events() if e["contactEvent"].get("value") == command.seq / 100]
    assert len(events) == 1
    assert events[0]["contactEvent"]["date"] == command.expected_date_ms


@pytest.mark.parametrize("source", ["sqs", "fifo"])
def test_chaos_aws_invalid_command_whose_group_is_unreadable_on_its_last_receive_is_parked_unavailable(
    chaos_run: ChaosRun, source: str
):
    # Given a command for a group that does not exist, the dead-letter queue refusing its park on
    # the first four receives, and SSM throttled on the fifth (found by make chaos N=10000
    # AWS_RATE=0.25 SEED=101: #2159)
    from aws_lambda_powertools.utilities.parameters import clear_caches

    gen = generator()
    command = gen.invalid(source, "unknown_group")
    if source == "fifo":
        command.family = f"fam-{command.seq}"
    clear_caches()
    receives = chaos_run.config.max_receive_count
    refusals = tuple(("sqs", "SendMessage", "refused", 0) for _ in range(receives - 1))
    # When it is delivered until it ends
    played = play(
        chaos_run, gen, [command], aws=(*refusals, ("ssm", "GetParameter", "throttling", receives - 1))
    )
    # Then it is parked on its last receive for what the bridge could know then (SSM unavailable), not
    # lost: a replay names the unknown group
    [letter] = played.letters(command)
    assert (letter.error_type, letter.reason["receive_count"]) == ("unavailable", receives)
    assert chaos_run.aws.drawn[("ssm", "throttling")] == 1
    assert violations(played.verdict) == {}


@pytest.mark.parametrize("source", ["sns", "eventbridge"])
def test_chaos_aws_invalid_command_the_dead_letter_queue_never_takes_ends_in_the_on_failure_destination(
    chaos_run: ChaosRun, source: str
):
    # Given an invalid command through an asynchronous source, and the dead-letter queue refusing its
    # park on every attempt (found by make chaos N=10000 AWS_RATE=0.25 SEED=103: #4486)
    gen = generator()
    command = gen.invalid(source, "unmapped")
    refusals = (("sqs", "SendMessage", "throttling", 0),) * 3  # the first attempt and Lambda's two retries
    # When it is delivered until it ends
    played = play(chaos_run, gen, [command], aws=refusals)
    # Then Lambda's on-failure destination keeps it, with the dead-letter queue's failure: not lost
    assert [(letter.where, letter.error_type) for letter in played.letters(command)] == [
        ("on_failure", "DeadLetterUnavailableError")
    ]
    assert violations(played.verdict) == {}
