"""Chaos: the real consumers against a misbehaving SALESmanago, judged by an oracle built from the inputs.

The harness is ``tests/reliability/chaos.py`` (also ``make chaos N=… RATE=… AWS_RATE=…``). Here: the
default random run (2,000 commands, 20 % SALESmanago faults, 2 % AWS faults, crashes at every named
point), then scripted scenarios for
each failure class per source, each crash point, the last receive and the time budget; the
regressions of what the suite found (a late reply's stale write, a refused lookup, a replay after a
delete); and three sabotaged runs that prove the oracle sees a lost message, a duplicate event and a
stale write.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.sandbox import Fault
from tests.reliability.chaos import (
    CRASH_POINTS,
    ChaosConfig,
    ChaosRun,
    Command,
    DeadLetter,
    Oracle,
    Verdict,
    WorkloadGenerator,
    run_chaos,
)

DEFAULT_COMMANDS = int(os.environ.get("CHAOS_COMMANDS", "2000"))
DEFAULT_FAULT_RATE = float(os.environ.get("CHAOS_FAULT_RATE", "0.2"))
DEFAULT_SEED = int(os.environ.get("CHAOS_SEED", str(ChaosConfig.seed)))
SOURCES = ("sqs", "fifo", "sns", "eventbridge")
SCENARIO = ChaosConfig(
    commands=200, fault_rate=0.0, crash_rate=0.0, duplicate_rate=0.0, aws_fault_rate=0.0, replay=False
)
_first_seq = itertools.count(1_000_000, 10_000)  # scenarios share one sandbox: their commands never meet

# Transient failure classes, each met up to three times in a row: the in-call retries absorb some (a
# status), the source's redelivery the rest (a request sent without a reply is never repeated in-call).
TRANSIENT_FAULTS = {
    "500": Fault("status", status=500, times=3),
    "502_after_apply": Fault("status", status=502, times=3, apply=True),
    "503_retry_after": Fault("status", status=503, retry_after=1, times=3),
    "504_after_apply": Fault("status", status=504, times=3, apply=True),
    "429_retry_after": Fault("status", status=429, retry_after=2, times=3),
    "429_longer_than_allowed": Fault("status", status=429, retry_after=60, times=3),
    "timeout": Fault("slow", delay_s=0.3),
    "timeout_after_apply": Fault("slow", delay_s=0.3, apply=True),
    "timeout_in_body": Fault("slow_body", delay_s=0.3),
    "drop": Fault("drop", times=3),
    "drop_after_apply": Fault("drop", times=3, apply=True),
    "non_json": Fault("non_json", times=3),
}


@dataclass
class Played:
    run: ChaosRun
    commands: list[Command]
    oracle: Oracle
    verdict: Verdict
    dead_letters: list[DeadLetter]

    def letters(self, command: Command) -> list[DeadLetter]:
        return [letter for letter in self.dead_letters if letter.seq == command.seq]

    def events(self, command: Command) -> int:
        return len(self.oracle.events.get(command.seq, []))


@pytest.fixture(scope="module")
def chaos_run() -> Iterator[ChaosRun]:
    with ChaosRun(SCENARIO) as run:
        yield run


def generator() -> WorkloadGenerator:
    first = next(_first_seq)
    return WorkloadGenerator(SCENARIO, random.Random(first), first_seq=first)


def commands_for(source: str, gen: WorkloadGenerator) -> list[Command]:
    """An event and a contact through ``source`` (a FIFO family also writes products, in order)."""
    if source == "fifo":
        return gen.family(["event.create", "contact.upsert", "products.upsert", "contact.upsert"])
    return [gen.single(source, "event.create"), gen.single(source, "contact.upsert")]


def play(
    run: ChaosRun,
    gen: WorkloadGenerator,
    commands: list[Command],
    *,
    faults: tuple[Fault, ...] = (),
    crashes: tuple[str | None, ...] = (),
    aws: tuple[tuple[str, str, str, int], ...] = (),
    replay: bool = False,
) -> Played:
    """Run ``commands`` with these SALESmanago faults, crash points and AWS faults
    ((service, operation, kind, calls to let pass first), see ``AwsFaultDraw.inject``)."""
    run.reset()
    run.scripted_faults.extend(faults)
    for service, operation, kind, after in aws:
        run.aws.inject(service, operation, kind, after=after)
    run.crashes.script.extend(crashes)
    oracle, verdict, letters = run.play(gen.workload(commands, spread=False), replay=replay)
    run.sandbox.clear_faults()
    return Played(run, commands, oracle, verdict, letters)


def violations(verdict: Verdict) -> dict[str, list[str]]:
    return {kind: examples for kind, examples in verdict.violations.items() if examples}


# ---- the random run -----------------------------------------------------------------------------
def test_chaos_random_run_loses_and_doubles_nothing():
    # Given 2,000 commands over four sources, 20 % of SALESmanago requests faulted, 2 % of the AWS calls
    # (SSM, DynamoDB, the dead-letter queue) faulted, 3 % of invocations crashing at a named point
    config = ChaosConfig(commands=DEFAULT_COMMANDS, fault_rate=DEFAULT_FAULT_RATE, seed=DEFAULT_SEED)
    # When every command has ended somewhere, and every dead letter was replayed
    report = run_chaos(config)
    # Then each is applied (once, for events; in arrival order, for upserts) or dead-lettered with a
    # reason that fits, never both without an unknown outcome or a second delivery, never neither
    summary = report.render()
    print(summary)
    assert report.verdict.clean, summary
    assert sum(report.oracle.faults_seen.values()) > 0.15 * report.oracle.requests
    assert len(report.oracle.faults_seen) >= 8, report.oracle.faults_seen
    assert sum(report.run.crashes.happened.values()) >= 10
    assert report.run.metrics["OutcomeUnknown"] > 0
    assert report.run.outcome_flags["reconciled"] > 0  # an unknown outcome found, not sent twice
    # The guard's suppression of a completed event is shown per source by the after_record crash
    # test: here it depends on thread timing (a redelivery may find its event's record in progress).
    assert report.verdict.dead_lettered_by, "no dead letter at all: the oracle judged nothing parked"
    # AWS failed too, at a low rate (each service and kind is scripted in test_chaos_aws.py), and
    # records were handed back because of it
    assert report.run.aws.drawn[("dynamodb", "throttling")] > 0, report.run.aws.drawn
    assert sum(report.run.handed_back.values()) > 0


def test_chaos_command_line_runs_outside_pytest():
    # Given the environment of `make chaos`: no test configuration, so no loopback endpoints allowed
    env = {k: v for k, v in os.environ.items() if k != "SALESMANAGO_ALLOW_LOOPBACK"}
    # When the harness runs from the command line, a few commands with every fault on
    argv = ["--commands", "60", "--fault-rate", "0.3", "--aws-fault-rate", "0.1", "--seed", "3"]
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.reliability.chaos", *argv],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Then it reaches its summary, clean (its sandbox's tenants are loopback hosts, and allowed)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = dict(line.split(maxsplit=1) for line in done.stdout.splitlines() if line[:1].isalpha())
    assert rows["violations"] == "none", done.stdout


# ---- every transient failure class, per source ------------------------------------------------------
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("fault_name", list(TRANSIENT_FAULTS))
def test_chaos_transient_fault_per_source_is_survived(chaos_run: ChaosRun, source: str, fault_name: str):
    # Given SALESmanago fails the first requests in one transient way
    gen = generator()
    commands = commands_for(source, gen)
    # When the source delivers the commands (and redelivers or retries what was handed back)
    played = play(chaos_run, gen, commands, faults=(TRANSIENT_FAULTS[fault_name],))
    # Then everything is applied, each event once, nothing is dead-lettered
    assert violations(played.verdict) == {}
    assert not played.dead_letters
    for command in commands:
        if command.action == "event.create":
            assert played.events(command) == 1
    assert played.oracle.faults_seen, "the fault was never met"


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "fault_name", ["timeout_after_apply", "timeout_in_body", "drop_after_apply", "504_after_apply"]
)
def test_chaos_event_applied_without_reply_is_reconciled_per_source(
    chaos_run: ChaosRun, source: str, fault_name: str
):
    # Given SALESmanago creates an event but the reply is lost (a timeout, before the reply or in its
    # body, a dropped connection, a 504)
    gen = generator()
    event = gen.single("fifo" if source == "fifo" else source, "event.create")
    if source == "fifo":
        event.family = f"fam-{event.seq}"
    fault = TRANSIENT_FAULTS[fault_name]
    # When the source brings it back
    played = play(
        chaos_run, gen, [event], faults=(Fault(fault.kind, status=fault.status, apply=True, delay_s=0.3),)
    )
    # Then the retry looked it up, found it, and did not send it again
    assert violations(played.verdict) == {}
    assert played.events(event) == 1
    assert played.run.metrics["OutcomeUnknown"] >= 1
    assert played.run.outcome_flags["reconciled"] == 1


def test_chaos_event_received_but_started_late_is_reconciled_not_doubled(
    chaos_run: ChaosRun, monkeypatch: pytest.MonkeyPatch
):
    # Given SALESmanago receives an event but starts on it only after the client gave up (its
    # connection's thread not scheduled for a second, as on a loaded host), with no fault injected
    from local.sandbox import server

    read_body = server._Handler._read_body
    held: list[str] = []

    def late_read(handler: Any) -> bytes:
        if "ContactExtEvent" in handler.path and not held:
            held.append(handler.path)
            time.sleep(1.0)
        return read_body(handler)

    monkeypatch.setattr(server._Handler, "_read_body", late_read)
    gen = generator()
    event = gen.single("sqs", "event.create")
    event.wrapper = None
    # When the queue brings it back minutes later (in fake time: at once in real time)
    played = play(chaos_run, gen, [event])
    # Then the retry waited for SALESmanago to take every request sent, found the event, sent it once
    assert held, "the event's request was never held"
    assert played.run.metrics["OutcomeUnknown"] >= 1
    assert played.run.outcome_flags["reconciled"] == 1
    assert played.events(event) == 1
    assert [request.path for request, _ in played.run.wire].count(held[0]) == 1


def test_chaos_refused_lookup_hands_the_doubtful_event_back(chaos_run: ChaosRun):
    # Given an event SALESmanago created without a reply, and a lookup it then refuses (success:false)
    gen = generator()
    event = gen.single("sqs", "event.create")
    event.wrapper = None
    faults = (Fault("drop", path="ContactExtEvent", apply=True), Fault("success_false", path="contact/list"))
    # When the queue brings the event back, twice
    played = play(chaos_run, gen, [event], faults=faults)
    # Then the refused lookup handed it back like any failed lookup; the next one found it
    assert played.events(event) == 1
    assert played.dead_letters == []


@pytest.mark.xfail(
    strict=True,
    reason="documented limit (README, 'What no client can close'): SALESmanago's reads hide a deleted "
    "contact and its events, so a parked doubtful event replayed after its contact was deleted is sent again",
)
def test_chaos_replay_after_the_contact_was_deleted_sends_nothing_twice(chaos_run: ChaosRun):
    # Given an event created without a reply, whose lookups fail until it is parked on its last receive
    gen = generator()
    event = gen.single("sqs", "event.create")
    event.wrapper = None
    faults = (
        Fault("drop", path="ContactExtEvent", apply=True),
        Fault("status", status=503, path="list", times=99),
    )
    played = play(chaos_run, gen, [event], faults=faults)
    assert [(d.error_type, d.reason["receive_count"]) for d in played.dead_letters] == [
        ("outcome_unknown", 5)
    ]
    assert played.events(event) == 1
    # And its contact deleted afterwards
    delete = gen.single("sqs", "contact.delete")
    delete.wrapper, delete.data, delete.emails = None, {"email": event.emails[0]}, event.emails
    chaos_run.run(gen.workload([delete], spread=False))
    # When an operator replays the dead letter
    chaos_run.workload = gen.workload([event, delete], spread=False)
    chaos_run.replay(played.dead_letters)
    # Then the event is not created twice, and the deleted contact stays deleted
    copies = [e for e in chaos_run.sandbox.events() if e["contactEvent"]["value"] == event.data["value"]]
    assert chaos_run.sandbox.contact(event.emails[0])["deleted"] is True, "the replay revived the contact"
    assert len(copies) == 1, "the replay created the event a second time"


@pytest.mark.parametrize("action_in_body", [True, False], ids=["action-in-body", "action-attribute"])
def test_chaos_cli_redrive_of_a_raw_event_sends_nothing_twice(chaos_run: ChaosRun, action_in_body: bool):
    # Given an event without date or id (its action in the body or in a message attribute), created,
    # whose invocation dies before completing its record on every receive, so that the queue's
    # redrive policy moves it, raw, to the dead-letter queue
    gen = generator()
    event = gen.single("sqs", "event.create")
    event.wrapper, event.id, event.event_date_ms = None, None, None
    event.action_in_body = action_in_body
    event.data.pop("date", None)
    played = play(chaos_run, gen, [event], crashes=("after_accept",) * SCENARIO.max_receive_count)
    assert [(d.where, d.crashed_last) for d in played.dead_letters] == [("redrive", True)]
    assert played.events(event) == 1
    # When an operator redrives the dead-letter queue as docs/deploy.md says: `bridge dlq redrive`, which
    # fills the event date from the original enqueue time SQS kept (a native move task would not: it
    # makes new messages with a new SentTimestamp, so a new date and a new idempotency key)
    chaos_run.clock.advance_to(chaos_run.clock.time() + 3600)
    chaos_run.replay(played.dead_letters)
    # Then the event is recognised, not created again, and the replay parked nothing
    copies = [e for e in chaos_run.sandbox.events() if e["contactEvent"]["value"] == event.data["value"]]
    assert len(copies) == 1
    assert [letter for letter in chaos_run.dead_letters() if letter.where != "redrive"] == []


# ---- failures that do not pass --------------------------------------------------------------------
@pytest.mark.parametrize("source", SOURCES)
def test_chaos_persistent_failure_is_parked_with_reason_per_source(chaos_run: ChaosRun, source: str):
    # Given SALESmanago answers 503 to everything, for as long as it takes
    gen = generator()
    commands = (
        gen.family(["contact.upsert", "contact.upsert"])
        if source == "fifo"
        else [gen.single(source, "contact.upsert")]
    )
    # When the source has given up
    played = play(chaos_run, gen, commands, faults=(Fault("status", status=503, times=100_000),))
    # Then SQS records were parked by the consumer on their last receive, with their reason;
    # SNS and EventBridge events went to the on-failure destination after Lambda's 2 retries
    assert violations(played.verdict) == {}
    for command in commands:
        [letter] = played.letters(command)
        if source in ("sqs", "fifo"):
            assert letter.where == "dlq"
            assert letter.reason["receive_count"] == SCENARIO.max_receive_count
            assert letter.reason["source"] == "sqs"
        else:
            assert letter.where == "on_failure"
            assert letter.error_type == "UnavailableError"
    if source == "fifo":  # the later command of the group waited behind the failing one
        assert [played.letters(c)[0].error_type for c in commands] == ["unavailable", "held_for_order"]
    elif source == "sqs":
        assert played.letters(commands[0])[0].error_type == "unavailable"


@pytest.mark.parametrize("source", SOURCES)
def test_chaos_refusal_is_parked_at_once_per_source(chaos_run: ChaosRun, source: str):
    # Given SALESmanago refuses the request (success:false), a permanent failure
    gen = generator()
    command = gen.single("sqs" if source == "fifo" else source, "contact.upsert")
    command.stream, command.wrapper = source, None
    if source == "fifo":
        command.family = f"fam-{command.seq}"
    # When
    played = play(chaos_run, gen, [command], faults=(Fault("success_false", message="Invalid contact data"),))
    # Then it is parked by the bridge on its first delivery, with SALESmanago's reason, never retried
    assert violations(played.verdict) == {}
    [letter] = played.letters(command)
    assert (letter.where, letter.error_type, letter.reason["receive_count"]) == (
        "dlq",
        "salesmanago_rejected",
        1,
    )
    assert "Invalid contact data" in letter.reason["error_message"]
    assert played.run.invocations == 1


@pytest.mark.parametrize("source", ["sqs", "sns", "eventbridge"])
def test_chaos_invalid_input_is_parked_naming_the_field_per_source(chaos_run: ChaosRun, source: str):
    gen = generator()
    commands = [
        gen.invalid(source, kind) for kind in ("bad_email", "unknown_group", "unmapped", "missing", "bad_url")
    ]
    played = play(chaos_run, gen, commands)
    assert violations(played.verdict) == {}
    assert played.verdict.outcomes["dead-lettered (invalid input)"] == len(commands)
    assert played.oracle.requests == 0


def test_chaos_poison_contact_in_a_bulk_batch_is_isolated(chaos_run: ChaosRun):
    # Given a batch of contacts and events, one of whose e-mails SALESmanago always refuses
    gen = generator()
    commands = [gen.single("sqs", "contact.upsert") for _ in range(7)]
    commands += [gen.single("sqs", "event.create") for _ in range(7)]
    commands += [
        gen.single("sqs", "contact.upsert", poison=True),
        gen.single("sqs", "event.create", poison=True),
    ]
    for command in commands:
        command.wrapper = None
    # When
    played = play(chaos_run, gen, commands)
    # Then only the poison commands are parked; their neighbours are applied
    assert violations(played.verdict) == {}
    assert {c.seq for c in commands if played.letters(c)} == {c.seq for c in commands[-2:]}
    assert played.verdict.outcomes["applied"] == 14


# ---- crashes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_chaos_crash_at_each_point_per_source_loses_and_doubles_nothing(
    chaos_run: ChaosRun, source: str, point: str
):
    # Given the process dies at `point` in its first invocation
    gen = generator()
    commands = commands_for(source, gen)
    # When the source redelivers (SQS: the whole batch, after the visibility timeout; SNS, EventBridge:
    # Lambda's async retry) to a new process
    played = play(chaos_run, gen, commands, crashes=(point,))
    # Then each command is applied, and each event exactly once
    assert played.run.crashes.happened[point] == 1
    assert violations(played.verdict) == {}
    assert not played.dead_letters
    for command in commands:
        if command.action == "event.create":
            assert played.events(command) == 1
    if point == "after_record" and any(c.action == "event.create" for c in commands):
        # the redelivered events found their completed records: suppressed, not sent again
        assert played.run.metrics["DuplicatesSuppressed"] > 0


@pytest.mark.parametrize("source", ["sqs", "fifo"])
def test_chaos_crash_on_every_receive_ends_in_the_redrive(chaos_run: ChaosRun, source: str):
    # Given an invocation that dies before sending, on every receive
    gen = generator()
    commands = gen.family(["contact.upsert"]) if source == "fifo" else [gen.single("sqs", "contact.upsert")]
    # When the queue has received it MAX_RECEIVE_COUNT times
    played = play(chaos_run, gen, commands, crashes=("before_send",) * SCENARIO.max_receive_count)
    # Then the queue's redrive moved it (no consumer could park it), and the oracle accepts exactly that
    assert violations(played.verdict) == {}
    [letter] = played.letters(commands[0])
    assert (letter.where, letter.crashed_last) == ("redrive", True)


@pytest.mark.parametrize("source", ["sns", "eventbridge"])
def test_chaos_crash_on_every_attempt_ends_in_the_on_failure_destination(chaos_run: ChaosRun, source: str):
    gen = generator()
    command = gen.single(source, "event.create")
    played = play(chaos_run, gen, [command], crashes=("after_accept",) * 3)
    assert violations(played.verdict) == {}
    [letter] = played.letters(command)
    assert (letter.where, letter.error_type) == ("on_failure", "Runtime.ExitError")
    # The event was created by the first attempt (its record never completed): Lambda's retries
    # reconciled it instead of sending it again; the dead letter is the honest "maybe applied"
    assert played.events(command) == 1


# ---- the time budget -------------------------------------------------------------------------------
def test_chaos_long_retry_after_never_outlives_the_invocation(chaos_run: ChaosRun):
    # Given a FIFO group of six upserts (six rounds) and SALESmanago throttling with Retry-After 9 s
    gen = generator()
    commands = gen.family(["contact.upsert"] * 6)
    # When the waits add up past the invocation's time left (30 s, minus DEADLINE_MARGIN_MS)
    played = play(chaos_run, gen, commands, faults=(Fault("status", status=429, retry_after=9, times=12),))
    # Then no invocation ran past its deadline, the rest was handed back, and all ended applied in order
    assert played.run.overruns == []
    assert violations(played.verdict) == {}
    assert played.run.clock.slept_s > 0
    assert played.verdict.outcomes["applied"] == 6


# ---- a reply that comes after the client gave up ---------------------------------------------------------
@pytest.mark.parametrize(
    "actions",
    [["contact.upsert", "contact.delete"], ["contact.upsert", "contact.upsert"], ["products.upsert"] * 2],
)
def test_chaos_late_reply_never_overwrites_a_later_write(chaos_run: ChaosRun, actions: list[str]):
    # Given a FIFO group's two writes to one contact (or product) in one batch, and SALESmanago applying
    # the first request 0.6 s after it arrived: after the client's read timeout (0.2 s) and its retry
    gen = generator()
    commands = gen.family(actions)
    for command in commands:
        if command.action == "products.upsert":
            command.data = [product | {"id": f"late{commands[0].seq}"} for product in command.data[:1]]
            command.product_ids = (f"late{commands[0].seq}",)
        elif command.action == "contact.upsert":
            command.data |= {"company": f"Company {command.seq}", "city": f"City {command.seq}"}
    # When the batch is done and the late request has landed
    played = play(chaos_run, gen, commands, faults=(Fault("slow", delay_s=0.6),))
    chaos_run.sandbox.wait_idle()
    verdict = Oracle(chaos_run, played.oracle.workload, played.dead_letters).judge()
    # Then the last write in arrival order is what SALESmanago keeps
    assert violations(verdict) == {}


# ---- the oracle sees what it must see ------------------------------------------------------------------
def test_chaos_oracle_flags_a_lost_message(chaos_run: ChaosRun, monkeypatch: pytest.MonkeyPatch):
    # Given a dead-letter queue that silently drops what it is given
    from salesmanago_bridge.deadletters import DeadLetterSink

    monkeypatch.setattr(DeadLetterSink, "park", lambda self, body, reason: True)
    gen = generator()
    command = gen.single("sqs", "contact.upsert")
    played = play(chaos_run, gen, [command], faults=(Fault("success_false"),))
    assert played.verdict.count("lost") == 1


def test_chaos_oracle_flags_a_duplicate_event(chaos_run: ChaosRun, monkeypatch: pytest.MonkeyPatch):
    # Given an idempotency guard that forgets everything
    from salesmanago_bridge.idempotency import Claim, ClaimKind, EventGuard

    monkeypatch.setattr(
        EventGuard, "claim_all", lambda self, commands, ms: [Claim(ClaimKind.NEW)] * len(commands)
    )
    gen = generator()
    event = gen.single("sqs", "event.create")
    played = play(chaos_run, gen, [event], faults=(Fault("drop", apply=True),))
    assert played.verdict.count("duplicated") == 1


def test_chaos_oracle_flags_a_stale_write(chaos_run: ChaosRun, monkeypatch: pytest.MonkeyPatch):
    # Given a dispatcher that runs a FIFO group's commands in reverse
    from salesmanago_bridge import dispatch

    def reversed_rounds(works: list[Any]) -> list[list[Any]]:
        return [[work] for work in sorted(works, key=lambda w: -w.position)]

    monkeypatch.setattr(dispatch, "plan_rounds", reversed_rounds)
    gen = generator()
    commands = gen.family(["contact.upsert", "products.upsert", "contact.upsert", "products.upsert"])
    for command in commands:
        if command.action == "contact.upsert":
            command.data |= {"company": f"Company {command.seq}", "city": f"City {command.seq}"}
        else:
            command.data = [p | {"id": "shared"} for p in command.data[:1]]
            command.product_ids = ("shared",)
    played = play(chaos_run, gen, commands)
    assert played.verdict.count("order") == 2
