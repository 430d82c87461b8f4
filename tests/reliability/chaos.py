"""Chaos harness: the real consumers against a misbehaving SALESmanago, with the sources simulated.

    python -m tests.reliability.chaos --commands 100000 --fault-rate 0.3 --aws-fault-rate 0.1
    (make chaos N=… RATE=… AWS_RATE=…)

Real: the three consumers (``functions/*/app.py``) and the whole layer under them, the sandbox over
HTTP, the group configs in moto's SSM (read through Powertools Parameters, as deployed), the
idempotency records on moto's DynamoDB and the dead-letter queue on moto's SQS, each through the
AWS clients the bridge and Powertools build for themselves.

Simulated, from one seed:

- **SALESmanago misbehaving.** Each request meets a fault with probability ``fault_rate``: 5xx
  (500/502/504 sometimes after applying the call, 503 never), 429 with a ``Retry-After`` (sometimes
  longer than the bridge may wait), a reply slower than the client's read timeout (the call applied
  before the late reply or, with ``late_replies``, only after the client gave up), a dropped
  connection (with and without applying), a non-JSON 200, and the permanent refusals:
  ``success:false`` on v2, a bare 400 on v3. Some e-mails are poison (``reject_email``): SALESmanago
  refuses them every time.
- **AWS misbehaving** (``aws_faults.py``, hooks in botocore's event system): each SSM read, each
  idempotency call to DynamoDB and each ``SendMessage`` to the dead-letter queue meets a fault with
  probability ``aws_fault_rate``: throttling, an internal error, a timeout, and the ambiguous ones,
  a DynamoDB write applied or a dead letter accepted before the caller's timeout.
- **The process dying** at three named points (``CRASH_POINTS``), with ``crash_rate`` per invocation;
  the container is gone afterwards, so the next invocation builds a new dispatcher.
- **The sources.** A standard SQS queue (batches, ``batchItemFailures``, a crash returns the whole batch,
  rare duplicate deliveries) and a FIFO queue (message groups stay in order, a group waits while one of
  its messages is in flight); both redeliver after the visibility timeout with
  ``ApproximateReceiveCount`` + 1 and move a message to their redrive queue when it would be received a
  ``MAX_RECEIVE_COUNT + 1``-th time. SNS and EventBridge invoke asynchronously: an error is retried
  twice (after 1 and 2 minutes), then the event goes to the on-failure destination; rare duplicate
  deliveries too.
- **Time.** One fake clock (real time plus every skipped wait) for backoff, ``Retry-After``, deadlines,
  visibility timeouts and retry delays; in-progress idempotency claims expire with it. Real time is
  not skipped for SALESmanago: before the clock jumps, the sandbox finishes what it is answering.

The oracle is built from the inputs alone. Every command carries a marker SALESmanago keeps (a contact
property ``u<seq>``, an event's unique ``value``, a product's ``detail1``), so the sandbox's final
state says which commands took effect, and every dead letter (ours with its ``bridge-failure`` reason,
the on-failure destination's error, a redrive) says which command it holds. For each command:

- **applied**: its effect is there, exactly once for an event; contacts and products end in the state
  of their last write in arrival order (each entity is written by one ordered stream: a FIFO message
  group, or a single command);
- **dead-lettered**: in a dead-letter queue, with a reason that fits (a permanent reason needs a
  permanent cause: invalid input, a poison e-mail, an injected refusal; a transient reason needs the
  last receive on SQS or the third attempt on SNS and EventBridge; a redrive needs a crash on the last
  receive, or a park the dead-letter queue failed; an invalid command is parked on its first receive
  unless an AWS fault held it back, naming its problem unless its last receive could not read its
  group config either: then for that transient reason; if the dead-letter queue refused every park,
  where its source gives up: the on-failure destination, the redrive);
- never **neither** (lost). **Both** is a violation, unless the bridge could not have known better:
  a call of that command ended without a definite answer before it was parked (a timeout, a dropped
  connection, a 5xx, a non-JSON reply: SALESmanago may have applied it; also an attempt applied by
  SALESmanago that urllib3 retried away inside the call), or the source delivered it
  again after the bridge had decided (a crash lost the decision, or an at-least-once duplicate) and
  the two deliveries decided differently (one applied it, the other met a refusal), or the
  dead-letter queue took the message while the bridge heard a timeout (the next delivery applied
  it; ``dead letters written twice`` counts the parked twice). Each delivery
  decides alone; correlating them would need a record of every parking, and the cost of "both" is
  low: the dead letter is safe to replay (upserts are idempotent; an event's idempotency record makes
  the replay find it first), which the replay phase proves. A products command is applied product by
  product (v3 has no transaction across requests), so it may be parked *partly* applied when one of
  its products is refused; the reason names that product.

A write undone by an earlier write SALESmanago applied after its client gave up is its own violation,
``late write`` (see ``test_chaos_late_reply_*``). Unknown outcomes are counted (``OutcomeUnknown``) and
reconciled (``OutcomeReconciled``). After the run every dead letter is replayed with faults off, and
every valid event must then exist exactly once (but for events of a contact deleted meanwhile: the
reconciliation cannot see a deleted contact's events, a limit the summary counts).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import heapq
import io
import itertools
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.sandbox import Fault, RecordedRequest, Sandbox
from tests.reliability.aws_faults import AwsFaultDraw, aws_faults

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_GROUPS = ROOT / "local" / "groups.sample.json"
REGION = "eu-central-1"
ACCOUNT = "123456789012"
TABLE = "salesmanago-bridge-chaos-idempotency"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:salesmanago-bridge-chaos-commands"
FIFO_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:salesmanago-bridge-chaos-commands.fifo"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:salesmanago-bridge-chaos-commands"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/salesmanago-bridge-chaos-bus/commands"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:salesmanago-bridge-chaos"

EMAIL_DOMAIN = "chaos-customer.example.com"
# Distinctive surnames: the personal-data watch looks for them in everything the bridge writes.
FIRST_NAMES = ("Jadwiga", "Bożena", "Grzegorz", "Zdzisław", "Małgorzata", "Henryk")
LAST_NAMES = ("Przybylska", "Brzęczyszczykiewicz", "Szczebrzeszyńska", "Chaosińska", "Wąsowicz")
PHONE_PREFIX = "+48 600 "
EVENT_TYPES = ("PURCHASE", "CART", "VISIT", "LOGIN", "RETURN", "OTHER")
DATE_BASE_MS = 1_764_000_000_000

STREAMS = ("sqs", "fifo", "sns", "eventbridge", "api")
API_ROUTES = {
    "contact.upsert": ("POST", "/contacts"),
    "event.create": ("POST", "/events"),
    "products.upsert": ("POST", "/products"),
    "contact.delete": ("DELETE", "/contacts"),
}
API_ATTEMPTS = 30  # a client honouring Retry-After sends a request this many times before giving up
FUNCTION_OF = {"sqs": "sqs_consumer", "fifo": "sqs_consumer", "sns": "sns_consumer"}
FUNCTION_OF["eventbridge"] = "eventbridge_consumer"
CRASH_POINTS = ("before_send", "after_accept", "after_record")
CRASH_POINT_TEXT = {
    "before_send": "before sending",
    "after_accept": "after SALESmanago accepted, before the idempotency record completed",
    "after_record": "after the record completed, before returning",
}
APPLY = "apply"
POISON = "poison"
PERMANENT_TYPES = frozenset(
    {
        "validation",
        "unmapped_field",
        "unknown_group",
        "invalid_group_config",
        "auth",
        "salesmanago_rejected",
        "idempotency_conflict",
    }
)
TRANSIENT_ERROR_CLASSES = frozenset(
    {
        "TransientError",
        "ThrottledError",
        "UnavailableError",
        "SalesmanagoTimeoutError",
        "OutcomeUnknownError",
        "DeadLetterUnavailableError",
        "DeadlineError",
        "HeldForOrderError",
        "EventInFlightError",
        "RequestInProgressError",
        "InternalError",
    }
)
CRASH_ERROR_TYPE = "Runtime.ExitError"  # what Lambda reports when the process dies
TICK_S = 10.0  # the pollers look at the queues this often (fake time)
SEED_ATTEMPTS = 5  # the contacts the deletes remove are created before the faults start
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)  # Lambda's async retries: after 1, then 2 minutes
ORDERED_FIELDS = ("name", "phone", "company", "city")  # the contact fields the order check compares
PRODUCT_MARKER = re.compile(r"^s(\d+)$")
CONTACT_MARKER = re.compile(r"^u(\d+)$")


# ---------------------------------------------------------------------------------------- settings
@dataclass
class ChaosConfig:
    """One run; the defaults are the run of ``make test``."""

    commands: int = 2000
    fault_rate: float = 0.2
    seed: int = 20251125
    crash_rate: float = 0.03  # per invocation
    invalid_rate: float = 0.01  # commands that break the contract
    poison_rate: float = 0.005  # commands whose e-mail SALESmanago always refuses
    duplicate_rate: float = 0.005  # at-least-once deliveries of standard SQS, SNS and EventBridge
    # sqs, fifo, sns, eventbridge, api
    stream_weights: tuple[float, ...] = (0.38, 0.3, 0.14, 0.14, 0.04)
    publish_per_s: float = 5.0  # arrival rate of new commands (fake time)
    sqs_batch_size: int = 50
    fifo_batch_size: int = 10
    max_receive_count: int = 5
    lambda_timeout_s: float = 30.0
    visibility_timeout_s: float = 60.0
    read_timeout_s: float = 0.2
    slow_delay_s: float = 0.3
    max_retry_after_s: float = 10.0
    max_parallel_requests: int = 4
    replay: bool = True
    log_level: str = "INFO"
    progress_every_s: float = 0.0  # > 0: a progress line on stderr this often (real time)
    # A "timeout" fault: SALESmanago applies the call after the client gave up (True), or before
    # answering late (False). Late replies expose the bug test_chaos_late_reply_* pins.
    late_replies: bool = True
    aws_fault_rate: float = 0.02  # per AWS call the bridge makes (SSM, DynamoDB, the dead-letter queue)
    groups_in: str = "ssm"  # where the group configs live: "ssm" (as deployed) or "file"


# Fault mix: (name, weight). The slow ones cost real time (the read timeout), so they are rare.
FAULT_WEIGHTS = (
    ("5xx", 3.0),
    ("5xx_after_apply", 1.5),
    ("503", 2.0),
    ("429", 3.0),
    ("timeout", 0.25),
    ("timeout_after_apply", 0.25),
    ("timeout_in_body", 0.25),  # applied; the reply's head in time, its body past the read timeout
    ("drop", 1.5),
    ("drop_after_apply", 1.5),
    ("non_json", 1.5),
    ("refused", 1.0),  # success:false on v2, a 400 on v3: permanent
)
RETRY_AFTER_CHOICES = (0, 1, 2, 5, 30)  # 30 > SALESMANAGO_MAX_RETRY_AFTER_S: handed back at once


# ---------------------------------------------------------------------------------------- time
class ChaosClock:
    """Real time plus everything the simulation skips: backoff, Retry-After, visibility timeouts.

    Never behind the real clock, so DynamoDB's real-time expiries and the guard's fake-time checks agree
    that a claim older than its invocation's time left has expired.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self.slept_s = 0.0

    def time(self) -> float:
        return time.time() + self._offset

    def monotonic(self) -> float:
        return time.monotonic() + self._offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._offset += max(0.0, seconds)
            self.slept_s += max(0.0, seconds)

    def advance_to(self, moment: float) -> None:
        with self._lock:
            self._offset += max(0.0, moment - self.time())


class ChaosContext:
    """A LambdaContext whose remaining time runs on the chaos clock."""

    function_name = "salesmanago-bridge-chaos"
    function_version = "$LATEST"
    invoked_function_arn = FUNCTION_ARN
    memory_limit_in_mb = 512
    log_group_name = "/aws/lambda/salesmanago-bridge-chaos"
    log_stream_name = "chaos"

    def __init__(self, clock: ChaosClock, timeout_s: float, request_id: str) -> None:
        self.clock = clock
        self.aws_request_id = request_id
        self.deadline = clock.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock.monotonic()) * 1000))


# ---------------------------------------------------------------------------------------- faults
class FaultDraw:
    """Draws a fault for a request with probability ``rate``; counts what it drew."""

    def __init__(self, rate: float, seed: int, config: ChaosConfig) -> None:
        self.rate = rate
        self._rng = random.Random(seed)
        self._config = config
        self._names = [name for name, _ in FAULT_WEIGHTS]
        self._weights = [weight for _, weight in FAULT_WEIGHTS]
        self.drawn: Counter[str] = Counter()

    def __call__(self, path: str) -> tuple[str, Fault] | None:
        if self.rate <= 0 or self._rng.random() >= self.rate:
            return None
        name = self._rng.choices(self._names, self._weights)[0]
        self.drawn[name] += 1
        delay = self._config.slow_delay_s
        match name:
            case "5xx":
                return name, Fault("status", status=self._rng.choice((500, 502, 504)))
            case "5xx_after_apply":
                return name, Fault("status", status=self._rng.choice((500, 502, 504)), apply=True)
            case "503":
                return name, Fault("status", status=503, retry_after=self._rng.choice((None, 1)))
            case "429":
                return name, Fault("status", status=429, retry_after=self._rng.choice(RETRY_AFTER_CHOICES))
            case "timeout":
                return name, Fault("slow", delay_s=delay, apply=not self._config.late_replies)
            case "timeout_after_apply":
                return name, Fault("slow", delay_s=delay, apply=True)
            case "timeout_in_body":
                return name, Fault("slow_body", delay_s=delay)
            case "drop":
                return name, Fault("drop")
            case "drop_after_apply":
                return name, Fault("drop", apply=True)
            case "non_json":
                return name, Fault("non_json")
            case _:  # "refused": what each API answers when it refuses a request
                if path.startswith("/v3/"):
                    return name, Fault("status", status=400, message="Bad Request")
                return name, Fault("success_false", message="Internal error")


@dataclass
class Injected:
    """A fault the sandbox applied to one request."""

    name: str
    fault: Fault

    @property
    def permanent(self) -> bool:
        """A refusal: ``success:false`` on v2, a 400 on v3."""
        return self.fault.kind == "success_false" or (
            self.fault.kind == "status" and self.fault.status == 400
        )

    @property
    def applied_anyway(self) -> bool:
        """Whether SALESmanago changed state although the client got no good answer."""
        return self.fault.kind in ("slow", "slow_body") or (
            self.fault.kind in ("status", "drop") and self.fault.apply
        )


class ChaosSandbox(Sandbox):
    """The sandbox, drawing a random fault per request and indexing events per contact.

    Reaches into internals of ``Sandbox``: ``_process`` (to know when nothing is in flight),
    ``_take_fault`` (called under its lock, right after the request was recorded) and ``_full_view``
    (``contact/list`` scans every event ever stored, which a 100,000-command run cannot afford within a
    0.2 s read timeout).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.draw: FaultDraw | None = None
        self._injected: dict[int, Injected] = {}
        self._events_by_contact: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._in_flight = 0
        self._idle = threading.Condition()
        self.sent = 0  # requests the bridge finished writing to this sandbox (``count_sends``)
        self._answered = 0  # requests whose answer ended (or that were never read: see wait_idle)
        super().__init__(*args, **kwargs)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> ChaosSandbox:
        super().start(host, port)
        assert self._server is not None
        # A client that gives up on a slow reply resets its connection: expected here, not worth a trace.
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        return self

    def reset(self) -> None:
        super().reset()
        self._injected = {}
        self._events_by_contact = defaultdict(list)

    def _process(self, *args: Any) -> Any:
        with self._idle:
            self._in_flight += 1
        try:
            return super()._process(*args)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._answered += 1
                self._idle.notify_all()

    def note_sent(self) -> None:
        with self._idle:
            self.sent += 1

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Let every request the bridge sent be answered: one still being answered (a slow reply the
        client gave up on), and one received but not started on yet (its connection's thread not
        scheduled yet on a loaded host: it would apply an event after the retry looked for it).

        The fake clock skips minutes between a delivery and its redelivery; real time must not be
        skipped for SALESmanago, or a retry would look for an event a late request has yet to create.
        """
        with self._idle:
            done = self._idle.wait_for(
                lambda: self._in_flight == 0 and self._answered >= self.sent, timeout=timeout_s
            )
            if not done:  # a request the sandbox never read (its connection reset): stop waiting for it
                self._answered = max(self._answered, self.sent - self._in_flight)

    def _take_fault(self, path: str) -> Fault | None:
        fault = super()._take_fault(path)
        name = f"scripted_{fault.kind}" if fault is not None else None
        if fault is None and self.draw is not None:
            drawn = self.draw(path)
            if drawn is not None:
                name, fault = drawn
        if fault is not None and name is not None:
            self._injected[id(self._requests[-1])] = Injected(name, fault)
        return fault

    def _add_event(self, state: Any, item: dict[str, Any], prefix: str) -> str:
        event_id = super()._add_event(state, item, prefix)
        stored = self._events[-1]
        self._events_by_contact[stored["contactId"]].append(stored)
        return event_id

    def _full_view(self, contact: dict[str, Any]) -> dict[str, Any]:
        everything = self._events
        self._events = self._events_by_contact.get(contact["id"], [])  # type: ignore[assignment]
        try:
            return super()._full_view(contact)
        finally:
            self._events = everything

    def drain(self) -> list[tuple[RecordedRequest, Injected | None]]:
        """Hand over (and forget) the requests received so far, each with the fault it met."""
        with self._lock:
            requests, self._requests = self._requests, []
            injected, self._injected = self._injected, {}
        return [(request, injected.get(id(request))) for request in requests]


@contextlib.contextmanager
def count_sends(sandbox: ChaosSandbox) -> Iterator[None]:
    """Count each request (every attempt urllib3 makes) written in full to ``sandbox``."""
    from urllib3.connection import HTTPConnection

    original = HTTPConnection.request
    port = int(sandbox.url.rsplit(":", 1)[1])

    def request(self: HTTPConnection, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.port == port:
            sandbox.note_sent()

    HTTPConnection.request = request  # type: ignore[method-assign]
    try:
        yield
    finally:
        HTTPConnection.request = original  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------- workload
@dataclass
class Command:
    """One producer command, with what the oracle needs to recognise it and judge its fate."""

    seq: int
    stream: str
    action: str
    group_key: str
    data: Any
    id: str | None = None
    family: str | None = None  # FIFO message group
    expect: str = APPLY  # APPLY, POISON, or the error_type of an invalid command
    expect_field: str | None = None
    emails: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()
    action_in_body: bool = True
    wrapper: str | None = None  # standard SQS only: "sns" or "eventbridge" (a topic or bus buffered)
    publish_at: float = 0.0
    sent_ms: int = 0
    event_date_ms: int | None = None

    @property
    def valid(self) -> bool:
        return self.expect in (APPLY, POISON)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"group_key": self.group_key, "data": self.data}
        if self.action_in_body:
            body["action"] = self.action
        if self.id is not None:
            body["id"] = self.id
        return body

    @property
    def expected_date_ms(self) -> int:
        return self.event_date_ms if self.event_date_ms is not None else self.sent_ms


API_KINDS = ("contact.upsert", "event.create", "products.upsert", "contact.delete")


def _email(local: str) -> str:
    return f"{local}@{EMAIL_DOMAIN}"


class Workload:
    """The commands of a run, and the indexes the oracle reads them by."""

    def __init__(
        self,
        commands: Iterable[Command],
        seeded: Iterable[tuple[str, str]] = (),
        poison_emails: Iterable[str] = (),
    ) -> None:
        self.commands = list(commands)
        self.seeded = list(seeded)  # (e-mail, group): the contacts the single-touch deletes remove
        self.poison_emails = list(poison_emails)
        self.by_seq = {c.seq: c for c in self.commands}
        self.delete_seq = {c.emails[0]: c.seq for c in self.commands if c.action == "contact.delete"}

    # ---- recognising a command in what SALESmanago stored or a dead letter holds
    def seqs_in_request(self, body: Any) -> set[int]:
        """The commands a SALESmanago request body (v2 or v3) carries."""
        if not isinstance(body, dict):
            return set()
        found: set[int] = set()
        items = body.get("upsertDetails") or body.get("events") or body.get("products") or [body]
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            for key in item.get("properties") or {}:
                if match := CONTACT_MARKER.match(str(key)):
                    found.add(int(match.group(1)))
            event = item.get("contactEvent")
            if isinstance(event, dict) and isinstance(event.get("value"), int | float):
                found.add(round(event["value"] * 100))
            detail = (item.get("customDetails") or {}).get("detail1")
            if isinstance(detail, str) and (match := PRODUCT_MARKER.match(detail)):
                found.add(int(match.group(1)))
        email = body.get("email")
        if "permanently" in body and isinstance(email, str) and email.lower() in self.delete_seq:
            found.add(self.delete_seq[email.lower()])
        return found

    def seq_of_command(self, body: Any) -> int | None:
        """The command a command body (as produced, or normalized by the bridge) is."""
        if not isinstance(body, dict):
            return None
        identifier = body.get("id")
        if isinstance(identifier, str) and identifier.startswith("invalid-"):
            return int(identifier.removeprefix("invalid-"))
        data = body.get("data")
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict):
                continue
            for key in item.get("properties") or {}:
                if match := CONTACT_MARKER.match(str(key)):
                    return int(match.group(1))
            if isinstance(item.get("value"), int | float) and "contactExtEventType" in item:
                return round(item["value"] * 100)
            if isinstance(item.get("detail1"), str) and (match := PRODUCT_MARKER.match(item["detail1"])):
                return int(match.group(1))
            email = item.get("email")
            if isinstance(email, str) and email.lower() in self.delete_seq:
                return self.delete_seq[email.lower()]
        return None


class WorkloadGenerator:
    """Builds commands: a random mix for a run, or chosen ones for a scenario.

    Single-touch commands (standard SQS, SNS, EventBridge) each write their own entity; a FIFO family is
    one contact and three products written in order by one message group.
    """

    def __init__(self, config: ChaosConfig, rng: random.Random, first_seq: int = 1) -> None:
        self.config = config
        self.rng = rng
        self._seq = itertools.count(first_seq)
        self.seeded: list[tuple[str, str]] = []
        self.poison_emails: list[str] = []
        self.pool = [_email(f"pool.{n}") for n in range(max(20, config.commands // 25))]

    def workload(self, commands: Iterable[Command], *, spread: bool = True) -> Workload:
        """The run of ``commands``: spread over time (or all published at once, for scenarios)."""
        commands = list(commands)
        if spread:
            schedule(commands, self.config)
        emails = {email for c in commands for email in c.emails}
        seeded = [(email, group) for email, group in self.seeded if email in emails]
        return Workload(commands, seeded, [e for e in self.poison_emails if e in emails])

    def generate(self) -> Workload:
        """The random mix of ``config.commands`` commands over the four streams."""
        weights = self.config.stream_weights
        total = self.config.commands
        counts = {s: int(total * w / sum(weights)) for s, w in zip(STREAMS, weights, strict=True)}
        counts["sqs"] += total - sum(counts.values())
        commands = [
            self._any(stream)
            for stream in ("sqs", "sns", "eventbridge", "api")
            for _ in range(counts[stream])
        ]
        return self.workload(commands + self._families(counts["fifo"]))

    def _any(self, stream: str) -> Command:
        roll = self.rng.random()
        if stream == "api":  # the caller hears a refusal itself: only valid commands, each with a date
            return self.single(stream, self.rng.choices(API_KINDS, (35, 35, 15, 10))[0])
        if roll < self.config.invalid_rate:
            return self.invalid(stream)
        if roll < self.config.invalid_rate + self.config.poison_rate:
            return self.single(stream, self.rng.choice(("contact.upsert", "event.create")), poison=True)
        return self.single(stream, self.rng.choices(API_KINDS, (35, 35, 15, 10))[0])

    def single(self, stream: str, action: str, *, poison: bool = False, group: str | None = None) -> Command:
        """One valid command that writes an entity nothing else writes (events: a shared pool contact)."""
        rng, seq = self.rng, next(self._seq)
        group = group or rng.choice(("demo-shop", "outlet"))
        command = Command(seq, stream, action, group, None, expect=POISON if poison else APPLY)
        if poison:
            email = _email(f"poison.{seq}")
            self.poison_emails.append(email)
        elif action == "event.create":
            email = rng.choice(self.pool)
        else:
            email = _email(f"{'seed' if action == 'contact.delete' else 'c'}.{seq}")
        if action == "contact.upsert":
            command.data, command.emails = self._contact(seq, email, group), (email,)
        elif action == "event.create":
            command.data, command.emails = self._event(command, email, group), (email,)
        elif action == "products.upsert":
            ids = tuple(f"sku{seq}-{n}" for n in range(rng.randint(1, 3)))
            command.data, command.product_ids = [self._product(seq, pid, group) for pid in ids], ids
        else:
            self.seeded.append((email, group))
            command.data = {"email": email, "permanently": rng.random() < 0.5}
            command.emails = (email,)
        return self._dress(command)

    def _dress(self, command: Command) -> Command:
        """How the producer sends it: action in the body or an attribute, an id or not, a wrapper."""
        rng = self.rng
        command.action_in_body = rng.random() < 0.7
        if command.id is None and rng.random() < 0.4:
            command.id = f"{command.action.split('.')[0]}-{command.seq}"
        if command.stream == "sqs":
            command.wrapper = rng.choices((None, "sns", "eventbridge"), (8, 1, 1))[0]
        if command.stream == "api":
            command.id = None  # an API body has no id; an event's Idempotency-Key gives it one
        return command

    def invalid(self, stream: str, kind: str | None = None) -> Command:
        """A command that breaks the contract: it must be parked at once, naming the culprit."""
        rng, seq = self.rng, next(self._seq)
        email = _email(f"invalid.{seq}")
        kind = kind or rng.choice(("bad_email", "unknown_group", "unmapped", "missing", "bad_url"))
        contact = self._contact(seq, email, "outlet")
        if kind == "bad_email":
            contact["email"] = f"not-an-email-{seq}"
            command = Command(seq, stream, "contact.upsert", "outlet", contact, expect="validation")
            command.expect_field = "data.email"
        elif kind == "unknown_group":
            command = Command(seq, stream, "contact.upsert", "no-such-group", contact, expect="unknown_group")
            command.expect_field = "group_key"
        elif kind == "unmapped":
            contact["favourite_colour"] = "teal"
            command = Command(seq, stream, "contact.upsert", "outlet", contact, expect="unmapped_field")
            command.expect_field = "data.favourite_colour"
        elif kind == "missing":
            command = Command(seq, stream, "event.create", "outlet", None, expect="validation")
            command.data = self._event(command, email, "outlet")
            del command.data["contactExtEventType"]
            command.expect_field = "data.contactExtEventType"
        else:
            product = self._product(seq, f"bad{seq}", "outlet")
            product["url"] = "not a url"
            command = Command(seq, stream, "products.upsert", "outlet", [product], expect="validation")
            command.expect_field = "data[0].url"
        command.emails = (email,)
        command.id = f"invalid-{seq}"
        return command

    def family(self, actions: Iterable[str], group: str | None = None) -> list[Command]:
        """One FIFO message group's commands, in order: its contact, events and three products."""
        rng = self.rng
        group = group or rng.choice(("demo-shop", "outlet"))
        first = next(self._seq)
        email = _email(f"fam.{first}")
        products = tuple(f"fam{first}-p{n}" for n in range(3))
        commands = []
        for position, action in enumerate(actions):
            seq = first if position == 0 else next(self._seq)
            command = Command(seq, "fifo", action, group, None, family=f"fam-{first}", emails=(email,))
            if action == "contact.upsert":
                command.data = self._contact(seq, email, group, partial=True)
            elif action == "event.create":
                command.data = self._event(command, email, group)
            elif action == "products.upsert":
                ids = tuple(sorted(rng.sample(products, rng.randint(1, 3))))
                command.data = [self._product(seq, pid, group) for pid in ids]
                command.product_ids, command.emails = ids, ()
            else:
                command.data = {"email": email}
            commands.append(self._dress(command))
        return commands

    def _families(self, total: int) -> list[Command]:
        rng = self.rng
        streams: list[deque[Command]] = []
        made = 0
        while made < total:
            size = min(total - made, rng.randint(3, 12))
            made += size
            kinds = ("contact.upsert", "event.create", "products.upsert")
            actions = [rng.choices(kinds, (55, 25, 20))[0] for _ in range(size)]
            if size > 3 and rng.random() < 0.3:
                actions[-1] = "contact.delete"  # only last: an event would revive a deleted contact
            streams.append(deque(self.family(actions)))
        merged: list[Command] = []
        while streams:  # interleave the families, each in its own order
            index = rng.randrange(len(streams))
            merged.append(streams[index].popleft())
            if not streams[index]:
                streams.pop(index)
        return merged

    # ---- payloads
    def _contact(self, seq: int, email: str, group: str, partial: bool = False) -> dict[str, Any]:
        rng = self.rng
        data: dict[str, Any] = {
            "email": email,
            "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {seq}",
            "phone": f"{PHONE_PREFIX}{seq:06d}",
            "properties": {f"u{seq}": "1"},
        }
        if not partial or rng.random() < 0.5:
            data["company"] = f"Company {seq}"
        if not partial or rng.random() < 0.5:
            data["city"] = f"City {seq}"
        if rng.random() < 0.3:
            data["tags"] = [f"T{seq % 7}"]
        if group == "demo-shop" and rng.random() < 0.2:
            data["loyalty_tier"] = "gold"  # routed by the group's field_map to properties.loyalty
        return data

    def _event(self, command: Command, email: str, group: str) -> dict[str, Any]:
        rng, seq = self.rng, command.seq
        data: dict[str, Any] = {
            "email": email,
            "contactExtEventType": rng.choice(EVENT_TYPES),
            "value": seq / 100,  # unique: it names the command, also for the reconciliation lookup
            "description": f"Order {seq}",
        }
        if rng.random() < 0.5:
            data["externalId"] = f"ext-{seq}"
        if rng.random() < 0.3:
            data["products"] = [f"sku{seq}", "sku-common"]
        # Through the API always dated: its Idempotency-Key records (which fix a missing date) are
        # left to test_chaos_aws.py, their in-progress lock runs on the real clock.
        if command.stream == "api" or rng.random() < 0.4:
            command.event_date_ms = DATE_BASE_MS + seq * 1000
            data["date"] = (
                command.event_date_ms
                if rng.random() < 0.5
                else datetime.fromtimestamp(command.event_date_ms / 1000, UTC).isoformat()
            )
        if group == "demo-shop" and rng.random() < 0.2:
            data["order_channel"] = "mobile"  # routed to detail5
        return data

    def _product(self, seq: int, product_id: str, group: str) -> dict[str, Any]:
        rng = self.rng
        data: dict[str, Any] = {
            "id": product_id,
            "name": f"Product {product_id} v{seq}",
            "description": f"Version {seq}",
            "category": "Shoes",
            "brand": "Acme",
            "url": f"https://shop.example.com/p/{product_id}",
            "image_url": f"https://shop.example.com/i/{product_id}.jpg",
            "price": seq / 100,
            "detail1": f"s{seq}",
            "stock_available": seq % 5,
        }
        if group == "demo-shop" and rng.random() < 0.2:
            data["ean"] = "5901234123457"  # routed to detail4
        if group == "outlet" and rng.random() < 0.1:
            data["colour_code"] = "RAL9005"  # no map takes it: ignored and listed
        return data


def schedule(commands: list[Command], config: ChaosConfig) -> None:
    """Arrival times: every stream publishes in its own order, spread over the run."""
    for stream in STREAMS:
        members = [c for c in commands if c.stream == stream]
        share = len(members) / max(1, len(commands))
        rate = max(0.01, config.publish_per_s * share)
        for position, command in enumerate(members):
            command.publish_at = position / rate


# ---------------------------------------------------------------------------------------- sources
def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def sns_notification(command: Command, rng: random.Random) -> dict[str, Any]:
    """The ``Sns`` object of a notification (also the body SNS puts in a subscribed queue)."""
    attributes = {} if command.action_in_body else {"action": {"Type": "String", "Value": command.action}}
    return {
        "Type": "Notification",
        "MessageId": _uuid(rng),
        "TopicArn": TOPIC_ARN,
        "Subject": None,
        "Message": json.dumps(command.body()),
        "Timestamp": _iso(command.sent_ms),
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertUrl": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-0.pem",
        "UnsubscribeUrl": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": attributes,
    }


def eventbridge_event(command: Command, rng: random.Random) -> dict[str, Any]:
    body = command.body()
    body.pop("action", None)
    return {
        "version": "0",
        "id": _uuid(rng),
        "detail-type": command.action,
        "source": "com.example.shop",
        "account": ACCOUNT,
        "time": _iso(command.sent_ms)[:19] + "Z",
        "region": REGION,
        "resources": [RULE_ARN],
        "detail": body,
    }


@dataclass(eq=False)
class QueuedMessage:
    message_id: str
    body: str
    seq: int
    sent_ms: int
    action_attribute: str | None
    group: str | None = None
    sequence_number: int = 0
    receive_count: int = 0
    visible_at: float = 0.0
    first_receive_ms: int | None = None
    crashed: bool = False  # its last receive ended in a crash
    park_failed: bool = False  # its last receive tried to park it and the dead-letter queue failed

    def record(self, arn: str) -> dict[str, Any]:
        attributes = {
            "ApproximateReceiveCount": str(self.receive_count),
            "SentTimestamp": str(self.sent_ms),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(self.first_receive_ms),
        }
        if self.group is not None:
            attributes |= {
                "SequenceNumber": str(self.sequence_number),
                "MessageGroupId": self.group,
                "MessageDeduplicationId": hashlib.sha256(self.body.encode()).hexdigest(),
            }
        message_attributes = {}
        if self.action_attribute:
            message_attributes["action"] = {
                "stringValue": self.action_attribute,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        return {
            "messageId": self.message_id,
            "receiptHandle": f"rh-{self.message_id}-{self.receive_count}",
            "body": self.body,
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": hashlib.md5(self.body.encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": arn,
            "awsRegion": REGION,
        }


class SqsQueue:
    """A standard or FIFO queue feeding a Lambda event source mapping, with a redrive policy."""

    def __init__(self, arn: str, config: ChaosConfig, clock: ChaosClock, rng: random.Random) -> None:
        self.arn = arn
        self.fifo = arn.endswith(".fifo")
        self.config = config
        self.clock = clock
        self.rng = rng
        self.batch_size = config.fifo_batch_size if self.fifo else config.sqs_batch_size
        self._heap: list[tuple[float, int, QueuedMessage]] = []  # standard: by visibility
        self._groups: dict[str, deque[QueuedMessage]] = {}  # FIFO: per message group, in order
        self._order = itertools.count()
        self.in_flight = 0
        self.redriven: list[QueuedMessage] = []
        self.receives = 0
        self.redeliveries = 0
        self.duplicated: set[int] = set()  # commands delivered once more after their message was deleted

    def send(self, message: QueuedMessage) -> None:
        message.visible_at = self.clock.time()
        if self.fifo:
            message.sequence_number = next(self._order)
            self._groups.setdefault(message.group or "", deque()).append(message)
        else:
            heapq.heappush(self._heap, (message.visible_at, next(self._order), message))

    def pending(self) -> bool:
        return bool(self._heap) or any(self._groups.values()) or self.in_flight > 0

    def receive(self) -> list[QueuedMessage]:
        """One batch for one invocation; a message received MAX_RECEIVE_COUNT times is redriven instead."""
        now = self.clock.time()
        batch: list[QueuedMessage] = []
        if self.fifo:
            for group, messages in list(self._groups.items()):
                while (
                    messages
                    and messages[0].visible_at <= now
                    and messages[0].receive_count >= self.config.max_receive_count
                ):
                    self.redriven.append(messages.popleft())
                if not messages:
                    del self._groups[group]
                    continue
                if messages[0].visible_at > now:
                    continue  # the group waits while a message of it is in flight
                for message in messages:
                    if len(batch) >= self.batch_size or message.visible_at > now:
                        break
                    batch.append(message)
                if len(batch) >= self.batch_size:
                    break
        else:
            while self._heap and self._heap[0][0] <= now and len(batch) < self.batch_size:
                message = heapq.heappop(self._heap)[2]
                if message.receive_count >= self.config.max_receive_count:
                    self.redriven.append(message)
                else:
                    batch.append(message)
        for message in batch:
            if message.receive_count:
                self.redeliveries += 1
            message.receive_count += 1
            message.first_receive_ms = message.first_receive_ms or int(now * 1000)
            message.visible_at = now + self.config.visibility_timeout_s
            message.crashed = message.park_failed = False
        self.receives += len(batch)
        self.in_flight += len(batch)
        return batch

    def settle(
        self, batch: list[QueuedMessage], failed: set[str] | None, crashed: bool, park_failed: set[str]
    ) -> None:
        """After the invocation: delete what succeeded; the rest reappears after the visibility timeout."""
        self.in_flight -= len(batch)
        for message in batch:
            keep = failed is None or message.message_id in failed
            message.crashed = crashed
            message.park_failed = message.message_id in park_failed
            if keep:
                if not self.fifo:
                    heapq.heappush(self._heap, (message.visible_at, next(self._order), message))
                continue
            if self.fifo:
                group = self._groups.get(message.group or "")
                if group is not None:
                    group.remove(message)
            elif self.rng.random() < self.config.duplicate_rate:  # at-least-once: a copy comes back
                self.duplicated.add(message.seq)
                message.visible_at = self.clock.time() + self.rng.uniform(1, self.config.visibility_timeout_s)
                heapq.heappush(self._heap, (message.visible_at, next(self._order), message))


@dataclass(eq=False)
class AsyncInvocation:
    event: dict[str, Any]
    seq: int
    attempt: int = 1
    errors: list[str] = field(default_factory=list)


class AsyncSource:
    """Lambda's asynchronous invocation (SNS, EventBridge): 2 retries, then the on-failure destination."""

    def __init__(self, function: str, config: ChaosConfig, clock: ChaosClock, rng: random.Random) -> None:
        self.function = function
        self.config = config
        self.clock = clock
        self.rng = rng
        self._heap: list[tuple[float, int, AsyncInvocation]] = []
        self._order = itertools.count()
        self.on_failure: list[dict[str, Any]] = []
        self.attempts = 0
        self.retries = 0
        self.duplicated: set[int] = set()

    def publish(self, event: dict[str, Any], seq: int) -> None:
        now = self.clock.time()
        heapq.heappush(self._heap, (now, next(self._order), AsyncInvocation(event, seq)))
        if self.rng.random() < self.config.duplicate_rate:  # at-least-once delivery
            self.duplicated.add(seq)
            later = now + self.rng.uniform(1, 300)
            heapq.heappush(self._heap, (later, next(self._order), AsyncInvocation(event, seq)))

    def pending(self) -> bool:
        return bool(self._heap)

    def due(self) -> AsyncInvocation | None:
        if self._heap and self._heap[0][0] <= self.clock.time():
            return heapq.heappop(self._heap)[2]
        return None

    def settle(self, invocation: AsyncInvocation, error: BaseException | None) -> None:
        self.attempts += 1
        if error is None:
            return
        error_type = CRASH_ERROR_TYPE if isinstance(error, Crash) else type(error).__name__
        invocation.errors.append(error_type)
        if invocation.attempt <= len(ASYNC_RETRY_DELAYS_S):
            self.retries += 1
            due = self.clock.time() + ASYNC_RETRY_DELAYS_S[invocation.attempt - 1]
            invocation.attempt += 1
            heapq.heappush(self._heap, (due, next(self._order), invocation))
            return
        self.on_failure.append(
            {
                "version": "1.0",
                "timestamp": _iso(int(self.clock.time() * 1000)),
                "requestContext": {
                    "requestId": _uuid(self.rng),
                    "functionArn": f"{FUNCTION_ARN}-{self.function}:$LATEST",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": invocation.attempt,
                },
                "requestPayload": invocation.event,
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled",
                },
                "responsePayload": {
                    "errorMessage": "process exited before completing request"
                    if isinstance(error, Crash)
                    else str(error),
                    "errorType": error_type,
                },
            }
        )


# ---------------------------------------------------------------------------------------- crashes
class Crash(BaseException):
    """The process dying: nothing in the bridge catches a BaseException that is not an Exception."""

    def __init__(self, point: str) -> None:
        super().__init__(point)
        self.point = point


class CrashPlan:
    """Arms at most one crash point per invocation; counts the crashes that happened."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self._rng = random.Random(seed)
        self.armed: str | None = None
        self.script: deque[str | None] = deque()  # scenarios: the points of the next invocations
        self.happened: Counter[str] = Counter()

    def arm(self) -> None:
        if self.script:
            self.armed = self.script.popleft()
        elif self.rate and self._rng.random() < self.rate:
            self.armed = self._rng.choice(CRASH_POINTS)
        else:
            self.armed = None

    def at(self, point: str) -> None:
        if self.armed == point:
            self.armed = None
            self.happened[point] += 1
            raise Crash(point)


# ---------------------------------------------------------------------------------------- personal data
class PersonalDataWatch:
    """Looks for test e-mails, names, phone numbers and secrets in everything the bridge writes."""

    def __init__(self, needles: Iterable[str]) -> None:
        self.needles: list[str] = []
        self.scanned: Counter[str] = Counter()
        self.leaks: Counter[tuple[str, str]] = Counter()
        self.examples: dict[tuple[str, str], str] = {}
        for needle in needles:
            self.add(needle)

    def add(self, needle: str) -> None:
        """Look for ``needle`` too, as written and as JSON escapes it."""
        forms = {needle, json.dumps(needle)[1:-1], json.dumps(needle, ensure_ascii=False)[1:-1]}
        self.needles = sorted(set(self.needles) | forms)

    def scan(self, where: str, text: str) -> None:
        self.scanned[where] += 1
        for needle in self.needles:
            if needle in text:
                key = (where, needle)
                self.leaks[key] += 1
                self.examples.setdefault(key, text[:400])

    def stream(self, where: str) -> LineScanner:
        return LineScanner(self, where)


class LineScanner(io.TextIOBase):
    """A text stream that scans every complete line written to it, then forgets it."""

    def __init__(self, watch: PersonalDataWatch, where: str) -> None:
        self.watch = watch
        self.where = where
        self._pending = ""
        self.lines = 0
        self.keep: list[str] | None = None  # set to a list to keep the lines (tests)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self.lines += 1
                self.watch.scan(self.where, line)
                if self.keep is not None:
                    self.keep.append(line)
        return len(text)


def watch_for(groups: dict[str, dict[str, Any]]) -> PersonalDataWatch:
    """The watch for a chaos run: every test e-mail's domain, the names, phones, the groups' secrets."""
    needles = [EMAIL_DOMAIN, PHONE_PREFIX.strip(), *LAST_NAMES]
    for config in groups.values():
        needles += [config["api_secret"], config["products_api_key"], config["owner"]]
    return PersonalDataWatch(needles)


# ---------------------------------------------------------------------------------------- the run
class Progress:
    """A line on stderr every ``every_s`` seconds of real time, for long runs."""

    def __init__(self, every_s: float, total: int) -> None:
        self.every_s = every_s
        self.total = total
        self.started = self.last = time.monotonic()

    def show(self, published: int, invocations: int) -> None:
        now = time.monotonic()
        if self.every_s <= 0 or now - self.last < self.every_s:
            return
        self.last = now
        print(
            f"chaos: {published:,}/{self.total:,} commands published, {invocations:,} invocations, "
            f"{now - self.started:,.0f} s",
            file=sys.__stderr__,
            flush=True,
        )


@dataclass
class DeadLetter:
    where: str  # "dlq" (ours, with a reason), "on_failure" (Lambda destination), "redrive" (the queue's)
    seq: int | None
    error_type: str
    reason: dict[str, Any]
    body: Any
    crashed_last: bool = False
    park_failed_last: bool = False  # the last receive tried to park it; the dead-letter queue failed
    sent_ms: int | None = None  # the original enqueue time, which SQS keeps when it moves a message to a DLQ
    action_attribute: str | None = None  # a raw message's ``action`` attribute, kept by the move too


_RUN_SERIAL = itertools.count(1)


class ChaosRun:
    """The environment of one run: moto, the sandbox, the handlers wired to a chaos dispatcher."""

    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.clock = ChaosClock()
        self.dispatcher: Any = None
        self._request_guard: Any = None
        self.api_headers: dict[str, str] = {}
        self._stack = contextlib.ExitStack()
        self.aws = AwsFaultDraw(0.0, config.seed + 3)
        self.aws.on_unknown_send = self._note_unknown_park
        self.reset()

    def reset(self) -> None:
        """Forget the last run (scenarios share one environment): state, counts, SALESmanago's data."""
        self.faults = FaultDraw(0.0, self.config.seed + 1, self.config)
        self.crashes = CrashPlan(0.0, self.config.seed + 2)
        self.workload: Workload | None = None
        self.invocations = 0
        self.overruns: list[str] = []
        self.unhandled: Counter[str] = Counter()
        self.uncertain: set[int] = set()  # commands a call of which ended without a definite answer
        self.crashed: set[int] = set()  # commands delivered to an invocation that crashed
        self.wire: list[tuple[RecordedRequest, Injected | None]] = []
        self.metrics: Counter[str] = Counter()
        self.outcome_flags: Counter[str] = Counter()
        self.scripted_faults: list[Fault] = []  # scenarios: injected (once) when the delete targets exist
        self.aws.reset()
        self.aws.rate = 0.0
        self.unknown_parks: set[int] = set()  # a dead letter SQS took while the bridge heard a failure
        self.handed_back: Counter[str] = Counter()  # records handed back because an AWS call failed
        self.park_failed: set[str] = set()  # message ids of the last invocation whose parking failed
        self.aws_retried: set[str] = set()  # message ids of the last invocation handed back by an AWS fault
        self.aws_delayed: set[int] = set()  # commands handed back at least once because of an AWS fault
        self.api_answers: dict[int, list[int]] = defaultdict(list)  # the statuses an API client met
        self.api_without_retry_after = 0
        if hasattr(self, "sandbox"):
            self.sandbox.reset()
            self.sandbox.draw = self.faults
            self.watch.leaks.clear()
            self.watch.scanned.clear()

    # ---- lifecycle
    def __enter__(self) -> ChaosRun:
        self._stack.__enter__()
        try:
            self._start()
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._retire_dispatcher()
        self._stack.__exit__(*exc_info)

    def _start(self) -> None:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }.items():
            os.environ.setdefault(key, value)
        # The sandbox listens on 127.0.0.1: its tenants' endpoints are loopback hosts, refused unless
        # allowed (as make demo, make api and make bench allow them). Read once per process: read again.
        os.environ["SALESMANAGO_ALLOW_LOOPBACK"] = "true"
        from salesmanago_bridge.settings import get_settings

        get_settings.cache_clear()
        from moto import mock_aws

        self._stack.enter_context(mock_aws())
        self._stack.enter_context(aws_faults(self.aws))
        import boto3

        # Own names: two runs may be alive at once, and nested moto mocks share one state.
        serial = next(_RUN_SERIAL)
        self.table = f"{TABLE}-{serial}"
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.dynamodb.create_table(
            TableName=self.table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.dlq_url = self.sqs.create_queue(QueueName=f"salesmanago-bridge-chaos-dead-letters-{serial}")[
            "QueueUrl"
        ]
        self.groups = json.loads(SAMPLE_GROUPS.read_text())
        self.sandbox = self._stack.enter_context(ChaosSandbox.from_groups_file(SAMPLE_GROUPS))
        self._stack.enter_context(count_sends(self.sandbox))
        for group in self.groups.values():
            group["endpoint"] = group["products_endpoint"] = self.sandbox.url
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        self.groups_file = folder / "groups.json"
        self.groups_file.write_text(json.dumps(self.groups))
        self.parameter_prefix = f"/salesmanago-chaos-{serial}"
        self.ssm = boto3.client("ssm", region_name=REGION)
        self.store_groups(self.groups)
        self.watch = watch_for(self.groups)
        self.sandbox.draw = self.faults
        self._capture_output()
        self._wire_handlers()
        self.dispatcher = self._build_dispatcher()

    def store_groups(self, groups: dict[str, dict[str, Any]]) -> None:
        """The group configs where the bridge reads them: the local file, and SSM as deployed
        (a SecureString per group, and the API key index, one String per key id)."""
        self.groups_file.write_text(json.dumps(groups))
        by_key: dict[str, list[str]] = defaultdict(list)
        for group_key, config in groups.items():
            self.ssm.put_parameter(
                Name=f"{self.parameter_prefix}/groups/{group_key}",
                Value=json.dumps(config),
                Type="SecureString",
                Overwrite=True,
            )
            for key_id in config.get("api_key_ids") or []:
                by_key[key_id].append(group_key)
        for key_id, group_keys in by_key.items():
            self.ssm.put_parameter(
                Name=f"{self.parameter_prefix}/api-keys/{key_id}",
                Value=json.dumps({"group_keys": sorted(group_keys)}),
                Type="String",
                Overwrite=True,
            )

    def _note_unknown_park(self, body: str) -> None:
        if self.workload is None:
            return
        with contextlib.suppress(ValueError):
            if (seq := self.workload.seq_of_command(json.loads(body))) is not None:
                self.unknown_parks.add(seq)

    def _capture_output(self) -> None:
        """Every log line and every EMF blob goes through the personal-data watch (and is not printed)."""
        from salesmanago_bridge.observability import logger, metrics

        self.log_stream = self.watch.stream("log line")
        self.stdout_stream = self.watch.stream("metric blob / stdout")
        handler = logger.registered_handler
        previous_stream = handler.stream
        previous_level = logger.log_level
        handler.setStream(self.log_stream)  # type: ignore[attr-defined]
        logger.setLevel(self.config.log_level)
        self._stack.callback(handler.setStream, previous_stream)  # type: ignore[attr-defined]
        self._stack.callback(logger.setLevel, previous_level)
        self._stack.enter_context(contextlib.redirect_stdout(self.stdout_stream))

        original_flush = metrics.flush
        shadowed = metrics.__dict__.get("flush")  # another run's wrapper, when two are alive

        def flush() -> None:
            self.metrics.update(metrics.snapshot())
            original_flush()

        def restore() -> None:
            if shadowed is None:
                metrics.__dict__.pop("flush", None)
            else:
                metrics.flush = shadowed  # type: ignore[method-assign]

        metrics.flush = flush  # type: ignore[method-assign]
        self._stack.callback(restore)

    def _wire_handlers(self) -> None:
        from local.runner import load_handler

        self.handlers = {}
        for function in ("sqs_consumer", "sns_consumer", "eventbridge_consumer"):
            module = load_handler(function)
            self.handlers[function] = module.lambda_handler
            previous = module.get_dispatcher
            module.get_dispatcher = lambda: self.dispatcher
            self._stack.callback(setattr, module, "get_dispatcher", previous)

    def _build_dispatcher(self) -> Any:
        """What a cold start builds (``get_dispatcher``), with the chaos clock and the crash points."""
        from salesmanago_bridge.client import SalesmanagoClient
        from salesmanago_bridge.deadletters import DeadLetterSink
        from salesmanago_bridge.dispatch import Dispatcher
        from salesmanago_bridge.errors import (
            DeadLetterUnavailableError,
            OutcomeUnknownError,
            SalesmanagoTimeoutError,
            UnavailableError,
        )
        from salesmanago_bridge.groups import group_store_for
        from salesmanago_bridge.idempotency import EventGuard
        from salesmanago_bridge.settings import Settings

        config = self.config
        groups = (
            {"SALESMANAGO_GROUPS_FILE": str(self.groups_file)}
            if config.groups_in == "file"
            else {"SALESMANAGO_PARAMETER_PREFIX": self.parameter_prefix}
        )
        settings = Settings.model_validate(
            {
                **groups,
                "SALESMANAGO_READ_TIMEOUT_S": config.read_timeout_s,
                "SALESMANAGO_CONNECT_TIMEOUT_S": 1.0,
                "SALESMANAGO_MAX_RETRY_AFTER_S": config.max_retry_after_s,
                "MAX_PARALLEL_REQUESTS": config.max_parallel_requests,
                "IDEMPOTENCY_TABLE_NAME": self.table,
                "DEAD_LETTER_QUEUE_URL": self.dlq_url,
                "MAX_RECEIVE_COUNT": config.max_receive_count,
            }
        )
        client = SalesmanagoClient(settings, clock=self.clock)
        # The bridge's own AWS clients, as deployed (Powertools builds the idempotency store's): the
        # AWS fault hooks reach them like any other.
        guard = EventGuard(self.table, settings.idempotency_ttl_s, clock=self.clock)
        sink = DeadLetterSink(self.dlq_url)
        dispatcher = Dispatcher(settings, group_store_for(settings), client, sink, guard=guard)

        def watched(call: Callable[..., Any], body_at: int) -> Callable[..., Any]:
            def call_and_note(*args: Any, **kwargs: Any) -> Any:
                try:
                    return call(*args, **kwargs)
                except (SalesmanagoTimeoutError, OutcomeUnknownError, UnavailableError) as error:
                    # Sent, and no definite answer came back (a 503 is one: nothing was done).
                    if error.status != 503 and self.workload is not None:
                        body = kwargs.get("body", args[body_at] if len(args) > body_at else None)
                        self.uncertain |= self.workload.seqs_in_request(body)
                    raise

            return call_and_note

        client.call_v2 = watched(client.call_v2, 2)  # type: ignore[method-assign]
        client.call_v3 = watched(client.call_v3, 3)  # type: ignore[method-assign]

        send_chunks = dispatcher._send_chunks

        def send_chunks_with_crashes(chunks: Any) -> Any:
            self.crashes.at("before_send")
            results = send_chunks(chunks)
            self.crashes.at("after_accept")
            return results

        dispatcher._send_chunks = send_chunks_with_crashes  # type: ignore[method-assign]

        dispatch_batch = dispatcher.dispatch_batch

        def dispatch_batch_with_crash(*args: Any, **kwargs: Any) -> Any:
            outcomes = dispatch_batch(*args, **kwargs)
            self.park_failed, self.aws_retried = set(), set()
            for outcome in outcomes.outcomes:
                for flag in ("duplicate", "reconciled"):
                    if outcome.result.get(flag):
                        self.outcome_flags[flag] += 1
                if str(outcome.status) == "retry" and (cause := _aws_cause(outcome.error)):
                    self.handed_back[cause] += 1
                    self.aws_retried.add(outcome.message_id)
                if isinstance(outcome.error, DeadLetterUnavailableError):
                    self.park_failed.add(outcome.message_id)
            self.crashes.at("after_record")
            return outcomes

        dispatcher.dispatch_batch = dispatch_batch_with_crash  # type: ignore[method-assign]

        return dispatcher

    def _retire_dispatcher(self) -> None:
        dispatcher, self.dispatcher = self.dispatcher, None
        if dispatcher is None:
            return
        dispatcher._pool.shutdown(wait=False)
        if dispatcher.guard is not None:
            dispatcher.guard._pool.shutdown(wait=False)
        dispatcher.client._session.close()

    # ---- one invocation
    def invoke(
        self, function: str, event: dict[str, Any], seqs: Iterable[int] = ()
    ) -> tuple[Any, BaseException | None]:
        self.invocations += 1
        # A redelivery can come up within a tick once fake sleeps moved the clock past its visibility
        # timeout: a late reply must land first, as it would in the real minutes before a redelivery.
        self.sandbox.wait_idle()
        context = ChaosContext(self.clock, self.config.lambda_timeout_s, _uuid(self.rng))
        self.crashes.arm()
        result: Any = None
        error: BaseException | None = None
        aws_faults_before = sum(self.aws.drawn.values())
        try:
            result = self.handlers[function](event, context)
        except Crash as crash:
            error = crash
            self.crashed.update(seqs)
            if sum(self.aws.drawn.values()) != aws_faults_before:  # a park it failed died with it
                self.aws_delayed.update(seqs)
            self.park_failed, self.aws_retried = set(), set()
            self._retire_dispatcher()  # the process is gone: the next invocation is a cold start
            from aws_lambda_powertools.utilities.parameters import clear_caches

            clear_caches()  # and so are the cached group configs
            self.dispatcher = self._build_dispatcher()
        except Exception as exc:  # judged below: only a TransientError may escape an async consumer
            error = exc
            self._note_raised(function, exc)
        finally:
            self.crashes.armed = None
            if self.clock.monotonic() > context.deadline:
                self.overruns.append(f"{function}: {self.clock.monotonic() - context.deadline:.1f}s past")
        if result is not None:
            self.watch.scan("handler response", json.dumps(result, default=str))
        self.wire.extend(self.sandbox.drain())
        return result, error

    def call_api(
        self,
        method: str,
        path: str,
        body: str | None,
        *,
        api_key_id: str = "demo-key-id-1",
        headers: dict[str, str] | None = None,
        request_guard: bool = False,
        time_left_s: float = 25.0,
    ) -> tuple[int, dict[str, Any]]:
        """One request to the HTTP API function on this environment; its reply body is watched too,
        its headers kept in ``api_headers``. ``request_guard``: the ``Idempotency-Key`` records on
        (Powertools Idempotency on the chaos table, its own DynamoDB client)."""
        from local.api_server import proxy_event
        from local.runner import load_handler
        from salesmanago_bridge import api

        event = proxy_event(
            method,
            path,
            headers={"Content-Type": "application/json", **(headers or {})},
            body=body,
            api_key_id=api_key_id,
        )
        if request_guard and self._request_guard is None:
            self._request_guard = api.RequestGuard(self.table, 86_400)
        guard = self._request_guard if request_guard else None
        saved = api.get_dispatcher, api.get_request_guard
        api.get_dispatcher, api.get_request_guard = (lambda: self.dispatcher), (lambda: guard)
        try:
            context = ChaosContext(self.clock, time_left_s, _uuid(self.rng))
            reply = load_handler("api").lambda_handler(event, context)
        finally:
            api.get_dispatcher, api.get_request_guard = saved
        self.watch.scan("API body", reply["body"])
        self.wire.extend(self.sandbox.drain())
        multi = {
            name: values[-1] for name, values in (reply.get("multiValueHeaders") or {}).items() if values
        }
        self.api_headers = {**multi, **(reply.get("headers") or {})}
        return int(reply["statusCode"]), json.loads(reply["body"])

    def _note_raised(self, function: str, exc: Exception) -> None:
        # Lambda logs an unhandled error with its traceback: that text must be clean too.
        self.watch.scan("error log (traceback)", "".join(traceback.format_exception(exc)))
        if function == "sqs_consumer" or type(exc).__name__ not in TRANSIENT_ERROR_CLASSES:
            self.unhandled[f"{function}: {type(exc).__name__}"] += 1

    # ---- the workload through its sources
    def seed_contacts(self, contacts: list[tuple[str, str]]) -> None:
        """The contacts the deletes of the single-touch streams remove, created before the faults start."""
        from salesmanago_bridge.sources import Inbound, Source

        for start in range(0, len(contacts), 400):
            inbounds = [
                Inbound(
                    message_id=f"seed-{start + n}",
                    source=Source.SQS,
                    body={
                        "action": "contact.upsert",
                        "group_key": group,
                        "data": {"email": email, "properties": {"seed": "1"}},
                    },
                )
                for n, (email, group) in enumerate(contacts[start : start + 400])
            ]
            for _ in range(SEED_ATTEMPTS):  # a busy machine may miss the short read timeout: send again
                outcomes = self.dispatcher.dispatch_batch(inbounds)
                pending = {o.message_id for o in outcomes.outcomes if str(o.status) == "retry"}
                failed = [o.as_dict() for o in outcomes.outcomes if str(o.status) not in ("applied", "retry")]
                assert not failed, f"seeding failed: {failed[:3]}"
                inbounds = [inbound for inbound in inbounds if inbound.message_id in pending]
                if not inbounds:
                    break
                self.sandbox.wait_idle()
            assert not inbounds, f"seeding failed: {len(inbounds)} contacts still handed back"
        self.sandbox.drain()

    def play(self, workload: Workload, *, replay: bool = False) -> tuple[Oracle, Verdict, list[DeadLetter]]:
        """Run ``workload``, collect the dead letters, judge; optionally replay them and judge again."""
        self.run(workload)
        dead_letters = self.dead_letters()
        oracle = Oracle(self, workload, dead_letters)
        verdict = oracle.judge()
        if replay:
            self.replay(dead_letters)
            oracle.judge_replay(verdict)
            already = set(verdict.violations.get("personal data", []))
            for (where, needle), times in self.watch.leaks.items():
                if (text := f"{where}: {needle!r} x{times}") not in already:
                    verdict.flag("personal data", text)
        return oracle, verdict, dead_letters

    def run(self, workload: Workload) -> None:
        """Publish every command at its time and keep the sources going until nothing is left."""
        self.workload = workload
        for email in workload.poison_emails:
            self.sandbox.reject_email(email, mode="item")
        self.seed_contacts(workload.seeded)
        for fault in self.scripted_faults:
            self.sandbox.inject(fault)
        self.scripted_faults = []
        self.sqs_queue = SqsQueue(QUEUE_ARN, self.config, self.clock, self.rng)
        self.fifo_queue = SqsQueue(FIFO_ARN, self.config, self.clock, self.rng)
        self.sns = AsyncSource("sns_consumer", self.config, self.clock, self.rng)
        self.eventbridge = AsyncSource("eventbridge_consumer", self.config, self.clock, self.rng)
        self.faults.rate = self.config.fault_rate
        self.crashes.rate = self.config.crash_rate
        self.aws.rate = self.config.aws_fault_rate
        to_publish = deque(sorted(workload.commands, key=lambda c: (c.publish_at, c.seq)))
        start = self.clock.time()
        tick = 0
        progress = Progress(self.config.progress_every_s, len(to_publish))
        while True:
            progress.show(len(workload.commands) - len(to_publish), self.invocations)
            now = self.clock.time() - start
            while to_publish and to_publish[0].publish_at <= now:
                self._publish(to_publish.popleft())
            self._poll(self.sqs_queue)
            self._poll(self.fifo_queue)
            self._poll_async(self.sns)
            self._poll_async(self.eventbridge)
            sources = (self.sqs_queue, self.fifo_queue, self.sns, self.eventbridge)
            if not to_publish and not any(source.pending() for source in sources):
                break
            tick += 1
            self.sandbox.wait_idle()
            self.clock.advance_to(start + tick * TICK_S)
        self.faults.rate = 0.0
        self.crashes.rate = 0.0
        self.aws.rate = 0.0

    def _publish(self, command: Command) -> None:
        command.sent_ms = int(self.clock.time()) * 1000
        if command.stream in ("sqs", "fifo"):
            body: Any = command.body()
            attribute = None if command.action_in_body else command.action
            if command.wrapper == "sns":
                body, attribute = sns_notification(command, self.rng), None
            elif command.wrapper == "eventbridge":
                body, attribute = eventbridge_event(command, self.rng), None
            queue = self.fifo_queue if command.stream == "fifo" else self.sqs_queue
            message = QueuedMessage(
                message_id=_uuid(self.rng),
                body=json.dumps(body),
                seq=command.seq,
                sent_ms=command.sent_ms,
                action_attribute=attribute,
                group=command.family,
            )
            queue.send(message)
        elif command.stream == "sns":
            notification = sns_notification(command, self.rng)
            event = {
                "Records": [
                    {
                        "EventSource": "aws:sns",
                        "EventVersion": "1.0",
                        "EventSubscriptionArn": f"{TOPIC_ARN}:{_uuid(self.rng)}",
                        "Sns": notification,
                    }
                ]
            }
            self.sns.publish(event, command.seq)
        elif command.stream == "api":
            self._post_api(command)
        else:
            self.eventbridge.publish(eventbridge_event(command, self.rng), command.seq)

    def _post_api(self, command: Command) -> None:
        """A client of the HTTP API: sends the command until the answer is not a 503, waiting
        ``Retry-After`` (fake time) between tries; the statuses it met are the oracle's."""
        method, path = API_ROUTES[command.action]
        body = json.dumps({"group_key": command.group_key, "data": command.data})
        headers = {"Idempotency-Key": f"chaos-{command.seq}"} if command.action == "event.create" else {}
        key_id = self.groups[command.group_key]["api_key_ids"][0]
        statuses = self.api_answers[command.seq]
        for _ in range(API_ATTEMPTS):
            self.sandbox.wait_idle()
            status, _ = self.call_api(method, path, body, api_key_id=key_id, headers=headers)
            statuses.append(status)
            if status != 503:
                return
            if not self.api_headers.get("Retry-After", "").isdigit():
                self.api_without_retry_after += 1
            self.clock.sleep(int(self.api_headers.get("Retry-After") or 1))

    def _poll(self, queue: SqsQueue) -> None:
        while batch := queue.receive():
            event = {"Records": [message.record(queue.arn) for message in batch]}
            result, error = self.invoke("sqs_consumer", event, [m.seq for m in batch])
            if error is not None:
                queue.settle(batch, None, crashed=isinstance(error, Crash), park_failed=set())
            else:
                failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
                queue.settle(batch, failed, crashed=False, park_failed=self.park_failed)
                self.aws_delayed |= {m.seq for m in batch if m.message_id in self.aws_retried}

    def _poll_async(self, source: AsyncSource) -> None:
        while (invocation := source.due()) is not None:
            _, error = self.invoke(source.function, invocation.event, [invocation.seq])
            source.settle(invocation, error)
            if self.aws_retried:
                self.aws_delayed.add(invocation.seq)
            if error is not None and not isinstance(error, Crash):
                self.watch.scan("on-failure destination", str(error))

    # ---- what ended where
    def drain_dead_letter_queue(self) -> list[tuple[str, str]]:
        """Read and remove every message of our dead-letter queue: (body, ``bridge-failure`` JSON)."""
        found: list[tuple[str, str]] = []
        while True:
            reply = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            messages = reply.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                reason = message.get("MessageAttributes", {}).get("bridge-failure", {}).get("StringValue", "")
                self.watch.scan("dead-letter attribute", reason)
                found.append((message["Body"], reason))
            self.sqs.delete_message_batch(
                QueueUrl=self.dlq_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )

    def dead_letters(self) -> list[DeadLetter]:
        """Ours (read and removed from the queue), the on-failure destinations', the redrives'."""
        assert self.workload is not None
        found: list[DeadLetter] = []
        for text, reason_text in self.drain_dead_letter_queue():
            reason = json.loads(reason_text)
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            seq = self.workload.seq_of_command(body)
            found.append(DeadLetter("dlq", seq, reason["error_type"], reason, body))
        for source in (self.sns, self.eventbridge):
            for record in source.on_failure:
                self.watch.scan("on-failure destination", json.dumps(record["responsePayload"]))
                payload = record["requestPayload"]
                if "Records" in payload:
                    body = json.loads(payload["Records"][0]["Sns"]["Message"])
                else:
                    body = payload["detail"]
                error_type = record["responsePayload"]["errorType"]
                seq = self.workload.seq_of_command(body)
                found.append(DeadLetter("on_failure", seq, error_type, record["responsePayload"], body))
        for queue in (self.sqs_queue, self.fifo_queue):
            for message in queue.redriven:
                found.append(
                    DeadLetter(
                        "redrive",
                        message.seq,
                        "redrive",
                        {},
                        message.body,
                        crashed_last=message.crashed,
                        park_failed_last=message.park_failed,
                        sent_ms=message.sent_ms,
                        action_attribute=message.action_attribute,
                    )
                )
        return found

    def replay(self, dead_letters: list[DeadLetter]) -> None:
        """Every dead letter back into a source with faults off, as docs/deploy.md tells an operator:
        queue dead letters through ``bridge dlq redrive`` (its normalization, new messages sent now),
        the on-failure destinations' into their function again."""
        self.faults.rate = 0.0
        self.crashes.rate = 0.0
        quiet = ChaosConfig(**{**self.config.__dict__, "duplicate_rate": 0.0})
        queue = SqsQueue(QUEUE_ARN, quiet, self.clock, random.Random(0))
        sent_ms = int(self.clock.time()) * 1000
        for letter in dead_letters:
            if letter.where == "on_failure":
                continue
            body = letter.body if isinstance(letter.body, str) else json.dumps(letter.body)
            if letter.where == "redrive":
                body, attribute = _redriven_by_the_cli(body, letter.sent_ms, letter.action_attribute)
            else:  # ours: the CLI re-sends the command it reads, with the reason's action if need be
                body, attribute = _redriven_by_the_cli(body, None, None, letter.reason)
            queue.send(QueuedMessage(_uuid(self.rng), body, letter.seq or 0, sent_ms, attribute))
        for source in (self.sns, self.eventbridge):
            for record in source.on_failure:
                self.invoke(source.function, record["requestPayload"])
        while queue.pending():
            self._poll(queue)
            self.sandbox.wait_idle()
            self.clock.advance_to(self.clock.time() + self.config.visibility_timeout_s)


def _aws_cause(error: Any) -> str | None:
    """Which AWS dependency a handed-back record's error blames, if any."""
    from salesmanago_bridge.errors import DeadLetterUnavailableError, UnavailableError

    if isinstance(error, DeadLetterUnavailableError):
        return "dead-letter queue"
    if isinstance(error, UnavailableError):
        message = error.describe()
        if "idempotency store" in message:
            return "idempotency store"
        if "SSM" in message or "group config" in message:
            return "SSM"
    return None


def _redriven_by_the_cli(
    body: str,
    original_sent_ms: int | None,
    action_attribute: str | None,
    reason: dict[str, Any] | None = None,
) -> tuple[str, str | None]:
    """What ``bridge dlq redrive`` sends for a dead letter: the command it reads (a raw message the
    queue's redrive policy parked: action and date filled in; ours: with the ``bridge-failure``
    reason's action), else the message as it was, attribute and all. (The CLI skips a message that
    holds no command; sent as it was, the bridge parks it again: the same for the oracle.)"""
    from bridge_cli.dead_letters import parse_message

    message: dict[str, Any] = {"MessageId": "m", "Body": body, "Attributes": {}, "MessageAttributes": {}}
    if original_sent_ms:
        message["Attributes"]["SentTimestamp"] = str(original_sent_ms)
    if action_attribute:
        message["MessageAttributes"]["action"] = {"DataType": "String", "StringValue": action_attribute}
    if reason is not None:
        attribute = {"DataType": "String", "StringValue": json.dumps(reason)}
        message["MessageAttributes"]["bridge-failure"] = attribute
    letter = parse_message("commands-dlq", "https://sqs.local/dlq", message)
    return (json.dumps(letter.command), None) if letter.command else (body, action_attribute)


# ---------------------------------------------------------------------------------------- the oracle
VIOLATIONS = (
    "lost",
    "late write",
    "duplicated",
    "both",
    "unjustified dead letter",
    "invalid not parked as expected",
    "poison applied",
    "order",
    "event date",
    "unrecognised dead letter",
    "unhandled exception",
    "deadline overrun",
    "API 500",
    "API unanswered",
    "personal data",
    "replay",
)


@dataclass
class Verdict:
    """What the oracle concluded: outcome counts, and the violations with a few examples each."""

    outcomes: Counter[str] = field(default_factory=Counter)
    dead_lettered_by: Counter[str] = field(default_factory=Counter)
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    notes: Counter[str] = field(default_factory=Counter)

    def flag(self, kind: str, text: str) -> None:
        self.violations[kind].append(text)

    def count(self, kind: str) -> int:
        return len(self.violations.get(kind, []))

    @property
    def clean(self) -> bool:
        return not any(self.violations.values())


def entity_keys(body: Any) -> set[str]:
    """The e-mails and product ids a SALESmanago request body mentions."""
    keys: set[str] = set()
    pending = [body]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "email" and isinstance(value, str):
                    keys.add(value.lower())
                elif key == "email" and isinstance(value, list):
                    keys |= {str(v).lower() for v in value}
                elif key == "productId" and isinstance(value, str):
                    keys.add(value)
                elif isinstance(value, dict | list):
                    pending.append(value)
        elif isinstance(item, list):
            pending.extend(item)
    return keys


class Oracle:
    """Judges a finished run from the inputs, the sandbox's final state and the dead letters."""

    def __init__(self, run: ChaosRun, workload: Workload, dead_letters: list[DeadLetter]) -> None:
        self.run = run
        self.workload = workload
        self.dead_letters = dead_letters
        self.max_receive = run.config.max_receive_count
        self.client_of = {key: group["client_id"] for key, group in run.groups.items()}
        self.parked: dict[int, list[DeadLetter]] = defaultdict(list)
        # Commands the source delivered again after the bridge had decided: a crash lost the decision,
        # or an at-least-once duplicate. Each delivery decides alone; two may disagree.
        self.duplicated: set[int] = set()
        for source in (run.sqs_queue, run.fifo_queue, run.sns, run.eventbridge):
            self.duplicated |= source.duplicated
        self.delivered_again = set(run.crashed) | self.duplicated
        for letter in dead_letters:
            if letter.seq is not None:
                self.parked[letter.seq].append(letter)
        self._read_state()
        self._read_wire()

    def _read_state(self) -> None:
        sandbox = self.run.sandbox
        self.events: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for event in sandbox.events():
            value = event["contactEvent"].get("value")
            if isinstance(value, int | float):
                self.events[round(value * 100)].append(event)
        self.contacts = {c["email"].lower(): c for c in sandbox.contacts()}
        self.upserts_applied: set[int] = set()
        for contact in self.contacts.values():
            for key in contact["properties"]:
                if match := CONTACT_MARKER.match(key):
                    self.upserts_applied.add(int(match.group(1)))
        self.product_version: dict[str, int] = {}
        for product_id, product in sandbox.products().items():
            marker = (product.get("customDetails") or {}).get("detail1", "")
            if match := PRODUCT_MARKER.match(marker):
                self.product_version[product_id] = int(match.group(1))

    def _read_wire(self) -> None:
        """From the requests log: product writes that took effect, and what met a permanent refusal."""
        self.products_written: set[tuple[int, str]] = set()
        self.refused_keys: set[str] = set()
        self.late_writes: set[int] = set()  # applied by SALESmanago after the client gave up
        self.faults_seen: Counter[str] = Counter()
        self.requests = 0
        # Commands of which a call may have taken effect without the bridge hearing of it: what the bridge
        # saw (a timeout, a drop, a 5xx, a non-JSON reply), and what urllib3 retried away inside a call.
        self.uncertain = set(self.run.uncertain)
        for request, injected in self.run.wire:
            self.requests += 1
            if injected is not None:
                self.faults_seen[injected.name] += 1
                if injected.applied_anyway:
                    self.uncertain |= self.workload.seqs_in_request(request.body)
                if injected.permanent:
                    self.refused_keys |= entity_keys(request.body)
                if injected.fault.kind == "slow" and not injected.fault.apply:
                    self.late_writes |= self.workload.seqs_in_request(request.body)
            took_effect = (injected is None and request.status == 200) or (
                injected is not None and injected.applied_anyway
            )
            if took_effect and request.path.endswith("/product/upsert") and isinstance(request.body, dict):
                for product in request.body.get("products") or []:
                    marker = (product.get("customDetails") or {}).get("detail1", "")
                    if match := PRODUCT_MARKER.match(marker):
                        self.products_written.add((int(match.group(1)), product["productId"]))

    # ---- per command
    def judge(self) -> Verdict:
        verdict = Verdict()
        for letter in self.dead_letters:
            if letter.seq is None or letter.seq not in self.workload.by_seq:
                verdict.flag("unrecognised dead letter", f"{letter.where} {letter.error_type}")
            else:
                verdict.dead_lettered_by[f"{letter.where}: {letter.error_type}"] += 1
        for command in self.workload.commands:
            if command.valid:
                self._judge_valid(command, verdict)
            else:
                self._judge_invalid(command, verdict)
            if len(self.parked.get(command.seq, [])) > 1:
                verdict.notes["dead-lettered more than once"] += 1
        self._judge_order(verdict)
        self._judge_run(verdict)
        return verdict

    def _applied(self, command: Command) -> tuple[bool, bool]:
        """(every part took effect, some part did)."""
        if command.action == "contact.upsert":
            applied = command.seq in self.upserts_applied
            return applied, applied
        if command.action == "event.create":
            applied = bool(self.events.get(command.seq))
            return applied, applied
        if command.action == "products.upsert":
            parts = [
                self.product_version.get(pid) == command.seq or (command.seq, pid) in self.products_written
                for pid in command.product_ids
            ]
            return all(parts), any(parts)
        contact = self.contacts.get(command.emails[0])
        gone = contact is None or contact["deleted"]
        if contact is None and command.family is not None and command.seq in self.parked:
            gone = False  # never created (its upserts were parked): "absent" proves nothing here
        return gone, gone

    def _judge_valid(self, command: Command, verdict: Verdict) -> None:
        label = f"#{command.seq} {command.stream} {command.action}"
        letters = self.parked.get(command.seq, [])
        applied, partly = self._applied(command)
        if command.action == "event.create":
            self._judge_event_copies(command, verdict, label)
        if command.stream == "api":
            self._judge_api(command, verdict, label, applied, partly)
            return
        for letter in letters:
            if not self._justified(command, letter):
                verdict.flag("unjustified dead letter", f"{label}: {letter.where} {letter.error_type}")
        if command.expect == POISON:
            if partly:
                verdict.flag("poison applied", label)
            elif not letters:
                verdict.flag("lost", f"{label} (poison, not parked)")
            else:
                verdict.outcomes["dead-lettered"] += 1
            return
        if not letters:
            if applied:
                verdict.outcomes["applied"] += 1
            elif self._after_a_late_write(command):
                verdict.flag("late write", f"{label}: undone by an earlier write SALESmanago applied late")
            else:
                verdict.flag("lost", label + (" (partly applied)" if partly else ""))
            return
        if not partly:
            verdict.outcomes["dead-lettered"] += 1
        elif not applied:
            verdict.outcomes["dead-lettered, partly applied (one product refused)"] += 1
        elif command.seq in self.uncertain:
            verdict.outcomes["applied, then parked after an unknown outcome"] += 1
        elif command.seq in self.delivered_again:
            verdict.outcomes["applied and parked by two deliveries (crash or duplicate)"] += 1
        elif command.seq in self.run.unknown_parks:
            verdict.outcomes["applied, and parked by a dead letter SQS took unbeknown to the bridge"] += 1
        else:
            verdict.flag("both", f"{label}: applied and {letters[0].where} {letters[0].error_type}")

    def _judge_api(self, command: Command, verdict: Verdict, label: str, applied: bool, partly: bool) -> None:
        """Through the API the caller hears the outcome: a 200 must be applied; a refusal (502) must
        not be, unless an attempt before it ended without a definite answer."""
        statuses = self.run.api_answers.get(command.seq, [])
        if 500 in statuses:
            verdict.flag("API 500", f"{label}: {statuses}")
        final = statuses[-1] if statuses else None
        if final == 200:
            if applied:
                verdict.outcomes["applied"] += 1
            elif self._after_a_late_write(command):
                verdict.flag("late write", f"{label}: undone by an earlier write SALESmanago applied late")
            else:
                verdict.flag("lost", f"{label}: answered 200, not applied")
        elif final in (None, 503):
            verdict.flag("API unanswered", f"{label}: {statuses[-3:]} after {len(statuses)} tries")
        elif not partly:
            verdict.outcomes[f"refused to the API caller ({final})"] += 1
        elif not applied:
            verdict.outcomes[
                f"refused to the API caller ({final}), partly applied (one product refused)"
            ] += 1
        elif command.seq in self.uncertain:
            verdict.outcomes[
                f"applied, then refused to the API caller ({final}) after an unknown outcome"
            ] += 1
        else:
            verdict.flag("both", f"{label}: applied and answered {final}")

    def _after_a_late_write(self, command: Command) -> bool:
        """Whether an earlier command for the same contact or product was applied after its reply."""
        keys = {*command.emails, *command.product_ids}
        return any(
            earlier.seq < command.seq and keys & {*earlier.emails, *earlier.product_ids}
            for earlier in (
                self.workload.by_seq[seq] for seq in self.late_writes if seq in self.workload.by_seq
            )
        )

    def _history(self, command: Command) -> str:
        """What a command met on its way, for a violation's example."""
        met = {
            "no definite answer": command.seq in self.uncertain,
            "delivered to a crash": command.seq in self.run.crashed,
            "delivered twice": command.seq in self.duplicated,
            "handed back by AWS": command.seq in self.run.aws_delayed,
            "applied late": command.seq in self.late_writes,
            "own id": command.id is not None,
            "own date": command.event_date_ms is not None,
        }
        return ", ".join(name for name, present in met.items() if present) or "nothing of note"

    def _judge_event_copies(self, command: Command, verdict: Verdict, label: str) -> None:
        copies = self.events.get(command.seq, [])
        if len(copies) > 1:
            verdict.flag("duplicated", f"{label}: {len(copies)} events ({self._history(command)})")
        for event in copies:
            if event["contactEvent"].get("date") != command.expected_date_ms:
                verdict.flag("event date", f"{label}: date differs from the command's")
            if event["client_id"] != self.client_of.get(command.group_key):
                verdict.flag("event date", f"{label}: stored in another account")

    def _justified(self, command: Command, letter: DeadLetter) -> bool:
        if letter.where == "redrive":
            # A crash on the last receive, or an at-least-once copy back after MAX_RECEIVE_COUNT
            # receives; otherwise the consumer should have parked it, with a reason.
            return letter.crashed_last or letter.park_failed_last or command.seq in self.duplicated
        if letter.where == "on_failure":
            return letter.error_type in TRANSIENT_ERROR_CLASSES or letter.error_type == CRASH_ERROR_TYPE
        if letter.error_type not in PERMANENT_TYPES:
            return (
                letter.reason.get("source") == "sqs"
                and letter.reason.get("receive_count", 0) >= self.max_receive
            )
        if letter.error_type != "salesmanago_rejected":
            return False
        keys = {*command.emails, *command.product_ids}
        return command.expect == POISON or bool(keys & self.refused_keys)

    def _judge_invalid(self, command: Command, verdict: Verdict) -> None:
        label = f"#{command.seq} {command.stream} invalid {command.expect}"
        letters = [letter for letter in self.parked.get(command.seq, []) if letter.where == "dlq"]
        # Held back by AWS until its source gave up: the dead-letter queue refused every park, so the
        # on-failure destination (SNS, EventBridge) or the redrive (SQS) holds it instead.
        elsewhere = command.seq in self.run.aws_delayed and any(
            letter.where != "dlq" and self._justified(command, letter)
            for letter in self.parked.get(command.seq, [])
        )
        if not letters and not elsewhere:
            verdict.flag("invalid not parked as expected", f"{label}: not in our dead-letter queue")
        for letter in letters:
            reason = letter.reason
            if letter.error_type not in PERMANENT_TYPES and command.seq in self.run.aws_delayed:
                # Held back by AWS (its park refused, its group config unreadable) until its last
                # receive, which could not read the group config either: the bridge cannot name a
                # problem it has not seen yet, and parks it for a transient reason (a replay names it).
                if not self._justified(command, letter):
                    verdict.flag("invalid not parked as expected", f"{label}: {letter.error_type} early")
                continue
            fields = [d["field"] for d in reason.get("details") or []]
            named = command.expect_field in fields or (
                command.expect_field == "group_key" and reason.get("group_key") == command.group_key
            )
            if letter.error_type != command.expect or not named:
                verdict.flag(
                    "invalid not parked as expected", f"{label}: {letter.error_type} naming {fields}"
                )
        first = min((letter.reason.get("receive_count", 0) for letter in letters), default=1)
        if first != 1 and command.seq not in self.run.aws_delayed:  # an AWS fault may have held it back
            verdict.flag("invalid not parked as expected", f"{label}: not parked on its first receive")
        if self.events.get(command.seq) or command.emails[0] in self.contacts:
            verdict.flag("invalid not parked as expected", f"{label}: reached SALESmanago")
        if letters:
            verdict.outcomes["dead-lettered (invalid input)"] += 1

    # ---- order: the last write in arrival order wins
    def _judge_order(self, verdict: Verdict) -> None:
        families: dict[str, list[Command]] = defaultdict(list)
        for command in self.workload.commands:
            if command.family is not None and command.action == "contact.upsert":
                families[command.emails[0]].append(command)
        for email, upserts in families.items():
            contact = self.contacts.get(email)
            if contact is None:
                continue
            expected: dict[str, Any] = {}
            for command in sorted(upserts, key=lambda c: c.seq):
                if command.seq in self.upserts_applied:
                    expected.update({k: command.data[k] for k in ORDERED_FIELDS if k in command.data})
            actual = {
                "name": contact["name"],
                "phone": contact["phone"],
                "company": contact["company"],
                "city": contact["address"].get("city"),
            }
            wrong = [k for k, v in expected.items() if actual[k] != v]
            if wrong:
                late = any(c.seq in self.late_writes for c in upserts)
                text = f"{email.split('@')[0]}: {', '.join(wrong)} not from the last applied upsert"
                verdict.flag("late write" if late else "order", text)
        writers: dict[str, list[Command]] = defaultdict(list)
        for command in self.workload.commands:
            if command.action == "products.upsert" and command.valid:
                for product_id in command.product_ids:
                    writers[product_id].append(command)
        for product_id, commands in writers.items():
            final = self.product_version.get(product_id)
            for command in sorted(commands, key=lambda c: c.seq):
                if final is not None and command.seq <= final:
                    continue
                if (command.seq, product_id) in self.products_written:
                    text = f"{product_id}: v{command.seq} was overwritten by v{final}"
                    verdict.flag("late write" if final in self.late_writes else "order", text)

    def _judge_run(self, verdict: Verdict) -> None:
        for text, times in self.run.unhandled.items():
            verdict.flag("unhandled exception", f"{text} x{times}")
        for text in self.run.overruns:
            verdict.flag("deadline overrun", text)
        if self.run.api_without_retry_after:
            verdict.flag("API 500", f"{self.run.api_without_retry_after} answers 503 without Retry-After")
        for (where, needle), times in self.run.watch.leaks.items():
            verdict.flag("personal data", f"{where}: {needle!r} x{times}")

    # ---- after the replay of every dead letter
    def judge_replay(self, verdict: Verdict) -> None:
        self._read_state()
        for command in self.workload.commands:
            if command.expect != APPLY or self.run.api_answers.get(command.seq, [200])[-1] != 200:
                continue  # a refusal the API caller heard is the caller's to send again
            label = f"#{command.seq} {command.stream} {command.action}"
            if command.action == "event.create":
                copies = len(self.events.get(command.seq, []))
                raw = any(letter.where == "redrive" for letter in self.parked.get(command.seq, []))
                if copies > 1 and command.emails[0] in self.workload.delete_seq:
                    # Replayed after its contact was deleted: contact/list does not show a deleted
                    # contact's events, so the reconciliation cannot find it (test_chaos_replay_after_*).
                    verdict.notes["replayed event of a since deleted contact, sent again"] += 1
                elif copies > 1 and raw and command.id is None and command.event_date_ms is None:
                    # A raw message redriven natively is a new message: a new SentTimestamp, so a new
                    # default date and idempotency key (test_chaos_native_redrive_*).
                    verdict.notes["natively redriven event without date or id, sent again"] += 1
                elif copies != 1:
                    history = [
                        (letter.where, letter.error_type) for letter in self.parked.get(command.seq, [])
                    ]
                    verdict.flag(
                        "replay",
                        f"{label}: {copies} events after the replay; parked as {history}, "
                        f"own id {command.id is not None}, own date {command.event_date_ms is not None}, "
                        f"contact deleted in the run {command.emails[0] in self.workload.delete_seq}",
                    )
            elif command.action == "contact.upsert" and command.seq not in self.upserts_applied:
                verdict.flag("replay", f"{label}: still missing after the replay")


# ---------------------------------------------------------------------------------------- report
@dataclass
class ChaosReport:
    config: ChaosConfig
    workload: Workload
    run: ChaosRun
    oracle: Oracle
    verdict: Verdict
    dead_letters: list[DeadLetter]
    seconds: float
    fake_seconds: float

    def _replay_row(self) -> str:
        if not self.config.replay:
            return "not run"
        notes = self.verdict.notes
        deleted = notes["replayed event of a since deleted contact, sent again"]
        raw = notes["natively redriven event without date or id, sent again"]
        return (
            f"{len(self.dead_letters):,} dead letters replayed with faults off: "
            f"{self.verdict.count('replay')} valid events not exactly once; sent again, known bugs: "
            f"{deleted} of a contact deleted meanwhile, {raw} raw redriven without date or id"
        )

    def render(self) -> str:
        run, workload, verdict, oracle = self.run, self.workload, self.verdict, self.oracle
        commands = workload.commands
        by_stream = Counter(c.stream for c in commands)
        wrapped = Counter(c.wrapper for c in commands if c.wrapper)
        families = len({c.family for c in commands if c.family})
        by_action = Counter(
            c.action if c.expect == APPLY else ("invalid" if not c.valid else "poison") for c in commands
        )
        faults = oracle.faults_seen
        injected = sum(faults.values())
        metrics = run.metrics
        sqs, fifo = run.sqs_queue, run.fifo_queue
        violations = {kind: verdict.count(kind) for kind in VIOLATIONS}
        duplicates = len(sqs.duplicated) + len(run.sns.duplicated) + len(run.eventbridge.duplicated)
        aws_calls = Counter(run.aws.calls)
        aws_faults = Counter({f"{service} {kind}": n for (service, kind), n in run.aws.drawn.items()})
        rows = [
            (
                "run",
                f"seed {self.config.seed} · {run.invocations:,} invocations · {self.seconds:.1f} s "
                f"(fake clock {self.fake_seconds / 3600:.1f} h)",
            ),
            (
                "commands",
                f"{len(commands):,}: sqs {by_stream['sqs']:,} (through a topic {wrapped['sns']:,}, "
                f"a bus {wrapped['eventbridge']:,}) · fifo {by_stream['fifo']:,} in {families:,} groups · "
                f"sns {by_stream['sns']:,} · eventbridge {by_stream['eventbridge']:,} · "
                f"api {by_stream['api']:,}",
            ),
            (
                "API",
                f"{sum(len(s) for s in run.api_answers.values()):,} requests, answered "
                + (_join(Counter(s for statuses in run.api_answers.values() for s in statuses)) or "none"),
            ),
            ("  by action", _join(by_action)),
            (
                "requests",
                f"{oracle.requests:,} to SALESmanago · {injected:,} faulted "
                f"({injected / max(1, oracle.requests):.1%})",
            ),
            ("faults by kind", _join(faults)),
            (
                "crashes by point",
                f"{sum(run.crashes.happened.values()):,}: "
                + _join({CRASH_POINT_TEXT[p]: run.crashes.happened[p] for p in CRASH_POINTS}),
            ),
            (
                "AWS calls",
                f"{sum(aws_calls.values()):,}: {_join(aws_calls)} · {sum(aws_faults.values()):,} faulted "
                f"({sum(aws_faults.values()) / max(1, sum(aws_calls.values())):.1%})",
            ),
            ("AWS faults", _join(aws_faults) or "none"),
            (
                "  handed back",
                f"{sum(run.handed_back.values()):,} records: {_join(run.handed_back) or 'none'}",
            ),
            (
                "retries",
                f"SQS redeliveries {sqs.redeliveries:,} · FIFO {fifo.redeliveries:,} · "
                f"SNS async retries {run.sns.retries:,} · EventBridge {run.eventbridge.retries:,} · "
                f"duplicate deliveries {duplicates:,} · "
                f"CommandsRetried {int(metrics['CommandsRetried']):,} · backoff and Retry-After slept "
                f"{run.clock.slept_s:,.0f} s (fake)",
            ),
            ("applied", _join({k: v for k, v in verdict.outcomes.items() if k.startswith("applied")})),
            ("dead-lettered", _join({k: v for k, v in verdict.outcomes.items() if k.startswith("dead")})),
            (
                "API refused",
                _join({k: v for k, v in verdict.outcomes.items() if k.startswith("refused")}) or "none",
            ),
            ("  by reason", _join(verdict.dead_lettered_by)),
            (
                "duplicates",
                f"events created twice {verdict.count('duplicated')} · redeliveries suppressed "
                f"by the guard {int(metrics['DuplicatesSuppressed']):,} · dead letters written twice "
                f"{verdict.notes['dead-lettered more than once']:,} (SQS took one while the bridge heard a "
                f"failure: {len(run.unknown_parks):,})",
            ),
            (
                "unknown outcomes",
                f"OutcomeUnknown {int(metrics['OutcomeUnknown']):,} · reconciliation lookups "
                f"{int(metrics['OutcomeReconciled']):,} · found there, not re-sent "
                f"{run.outcome_flags['reconciled']:,} · applied, then parked "
                f"{verdict.outcomes['applied, then parked after an unknown outcome']:,}",
            ),
            ("lost", f"{violations['lost']:,} · undone by a late write {violations['late write']:,}"),
            ("violations", _join({k: v for k, v in violations.items() if v}) or "none"),
            ("personal data", f"scanned {_join(run.watch.scanned)}: {sum(run.watch.leaks.values())} leaks"),
            ("replay", self._replay_row()),
        ]
        width = max(len(label) for label, _ in rows)
        lines = [f"{label:<{width}}  {text}" for label, text in rows]
        for kind in VIOLATIONS:
            for example in verdict.violations.get(kind, [])[:5]:
                lines.append(f"  ! {kind}: {example}")
        return "\n".join(lines)


def _join(counts: Any) -> str:
    items = counts.most_common() if isinstance(counts, Counter) else list(counts.items())
    return " · ".join(f"{name} {value:,}" for name, value in items if value)


def run_chaos(config: ChaosConfig, *, keep_logs: list[str] | None = None) -> ChaosReport:
    """One whole run: workload, sources, faults and crashes, then the oracle (and the replay)."""
    started = time.monotonic()
    with ChaosRun(config) as run:
        run.log_stream.keep = keep_logs
        fake_start = run.clock.time()
        workload = WorkloadGenerator(config, random.Random(config.seed)).generate()
        oracle, verdict, dead_letters = run.play(workload, replay=config.replay)
        fake_seconds = run.clock.time() - fake_start
    return ChaosReport(
        config, workload, run, oracle, verdict, dead_letters, time.monotonic() - started, fake_seconds
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.chaos", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--commands", type=int, default=ChaosConfig.commands)
    parser.add_argument("--fault-rate", type=float, default=ChaosConfig.fault_rate)
    parser.add_argument("--seed", type=int, default=ChaosConfig.seed)
    parser.add_argument("--crash-rate", type=float, default=ChaosConfig.crash_rate)
    parser.add_argument(
        "--aws-fault-rate",
        type=float,
        default=ChaosConfig.aws_fault_rate,
        help="share of the bridge's AWS calls (SSM, DynamoDB, SQS SendMessage) that fail",
    )
    parser.add_argument("--no-replay", action="store_true", help="skip replaying the dead letters")
    args = parser.parse_args(argv)
    config = ChaosConfig(
        commands=args.commands,
        fault_rate=args.fault_rate,
        seed=args.seed,
        crash_rate=args.crash_rate,
        aws_fault_rate=args.aws_fault_rate,
        replay=not args.no_replay,
        progress_every_s=30.0,
    )
    report = run_chaos(config)
    print(report.render())
    return 0 if report.verdict.clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
