"""Personal data: nothing the bridge writes carries a test e-mail, name, phone or secret in clear.

One environment goes through what the reliability suite does: a chaos run (faults of every kind,
crashes at every point, invalid and poison commands, the replay of every dead letter), SALESmanago
refusals that quote an e-mail, rotated credentials, the last receive and the on-failure destination,
and the HTTP API (applied, refused, failed upstream). A watch reads every log line (at DEBUG), every
EMF metric blob, every ``bridge-failure`` attribute, every on-failure destination record and error
traceback, every async handler's reply and every API body, looking for the test e-mails' domain, the
test surnames (also JSON-escaped), the phone prefix, the owners' e-mails and the groups' secrets.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from local.sandbox import Fault
from tests.conftest import PRODUCT_BASE
from tests.reliability.chaos import (
    EMAIL_DOMAIN,
    LAST_NAMES,
    QUEUE_ARN,
    ChaosConfig,
    ChaosRun,
    QueuedMessage,
    WorkloadGenerator,
)

CONFIG = ChaosConfig(
    commands=300,
    fault_rate=0.3,
    crash_rate=0.05,
    invalid_rate=0.05,
    poison_rate=0.02,
    seed=8,
    aws_fault_rate=0.1,  # the AWS failure paths (SSM, DynamoDB, the dead-letter queue) are watched too
    log_level="DEBUG",
)
CHANNELS = (
    "log line",
    "metric blob / stdout",
    "dead-letter attribute",
    "on-failure destination",
    "error log (traceback)",
    "handler response",
    "API body",
)
EMAIL = f"anna.przybylska@{EMAIL_DOMAIN}"


@pytest.fixture(scope="module")
def watched() -> Iterator[ChaosRun]:
    """The whole tour, on one environment, with one watch; yields the finished run."""
    with ChaosRun(CONFIG) as run:
        gen = WorkloadGenerator(CONFIG, random.Random(CONFIG.seed), first_seq=1)
        quoting_refusal(run, gen)
        rotated_credentials(run, gen)
        exhausted_retries(run, gen)
        run.play(gen.generate(), replay=True)
        api_tour(run)
        yield run


def quoting_refusal(run: ChaosRun, gen: WorkloadGenerator) -> None:
    # SALESmanago's own messages may quote the e-mail: the reason and the logs must not.
    command = gen.single("sqs", "contact.upsert")
    run.scripted_faults.append(Fault("success_false", message=f"Contact {command.emails[0]} is blocked"))
    run.play(gen.workload([command], spread=False))


def rotated_credentials(run: ChaosRun, gen: WorkloadGenerator) -> None:
    # A secret SALESmanago no longer accepts: refused, re-read, refused again, parked as auth.
    from aws_lambda_powertools.utilities.parameters import clear_caches

    original = json.loads(run.groups_file.read_text())
    groups = json.loads(json.dumps(original))
    groups["outlet"]["api_secret"] = rotated = "rotated-away-secret-7f3a"
    run.store_groups(groups)
    clear_caches()  # the cached configs expired: the bridge reads the rotated secret
    run.watch.add(rotated)
    try:
        run.play(gen.workload([gen.single("sqs", "contact.upsert", group="outlet")], spread=False))
    finally:
        run.store_groups(original)
        clear_caches()


def exhausted_retries(run: ChaosRun, gen: WorkloadGenerator) -> None:
    # The last SQS receive (parked by the consumer) and the SNS on-failure destination.
    commands = [gen.single("sqs", "event.create"), gen.single("sns", "contact.upsert")]
    run.scripted_faults.append(Fault("status", status=503, times=100_000))
    run.play(gen.workload(commands, spread=False))
    run.sandbox.clear_faults()


def api_tour(run: ChaosRun) -> None:
    contact = {"email": EMAIL, "name": f"Anna {LAST_NAMES[0]}", "phone": "+48 600 123 456", "city": "Łódź"}
    event = {"email": EMAIL, "contactExtEventType": "PURCHASE", "value": 12.5}
    product = {"id": "pd-1", **PRODUCT_BASE}
    requests: list[tuple[str, str, Any]] = [
        ("POST", "/contacts", {"group_key": "demo-shop", "data": contact}),
        ("POST", "/events", {"group_key": "demo-shop", "data": event}),
        ("POST", "/products", {"group_key": "demo-shop", "data": [product]}),
        ("DELETE", "/contacts", {"group_key": "demo-shop", "data": {"email": EMAIL}}),
        ("POST", "/contacts", {"group_key": "demo-shop", "data": contact | {"email": f"x@@{EMAIL_DOMAIN}"}}),
        ("POST", "/contacts", {"group_key": "demo-shop", "data": contact | {"name": LAST_NAMES[1] * 40}}),
        ("POST", "/contacts", {"group_key": "demo-shop", "data": contact | {"phone": ["+48 600 1"]}}),
        ("POST", "/events", {"group_key": "demo-shop", "data": event | {"date": EMAIL}}),
        ("POST", "/contacts", "not json, from " + EMAIL),
    ]
    for method, path, body in requests:
        run.call_api(method, path, body if isinstance(body, str) else json.dumps(body))
    # Failed upstream: a refusal quoting the e-mail (502) and an outage (503)
    run.sandbox.inject(Fault("success_false", message=f"Contact {EMAIL} is blocked"))
    run.call_api("POST", "/contacts", json.dumps({"group_key": "demo-shop", "data": contact}))
    run.sandbox.inject(Fault("status", status=503, times=10))
    run.call_api("POST", "/events", json.dumps({"group_key": "demo-shop", "data": event}))
    run.sandbox.clear_faults()


def test_personal_data_nothing_in_clear_in_any_channel(watched: ChaosRun):
    # Given everything the tour made the bridge write
    scanned = watched.watch.scanned
    # Then every channel was read
    assert all(scanned[channel] > 0 for channel in CHANNELS), dict(scanned)
    # And none of it holds a test e-mail, name, phone, owner or secret in clear
    leaks = {f"{where}: {needle!r}": times for (where, needle), times in watched.watch.leaks.items()}
    assert leaks == {}, "\n".join(watched.watch.examples[key][:300] for key in watched.watch.leaks)


# ---- leaks found, fixed: their regression tests ------------------------------------------
@pytest.fixture(scope="module")
def quiet() -> Iterator[ChaosRun]:
    with ChaosRun(ChaosConfig(fault_rate=0.0, crash_rate=0.0, replay=False)) as run:
        yield run


@pytest.mark.parametrize(
    "body",
    [
        {"action": "contact.upsert", "group_key": EMAIL, "data": {"email": "a@b.example.com"}},
        {"action": "contact.upsert", "group_key": "outlet", "data": {"email": "a@b.example.com", EMAIL: "x"}},
        {
            "action": "contact.upsert",
            "group_key": "outlet",
            "data": {"email": "a@b.example.com", "properties": {EMAIL: {}}},
        },
    ],
    ids=["as-group-key", "as-field-name", "as-property-key"],
)
def test_personal_data_email_in_a_key_is_not_echoed_in_the_dead_letter(quiet: ChaosRun, body: dict[str, Any]):
    # Given a producer that put an e-mail where a name belongs
    message = QueuedMessage("pd-1", json.dumps(body), 0, 1_764_095_400_000, None)
    message.receive_count, message.first_receive_ms = 1, 1_764_095_400_500
    # When it is parked
    quiet.invoke("sqs_consumer", {"Records": [message.record(QUEUE_ARN)]})
    [(_, reason)] = quiet.drain_dead_letter_queue()
    # Then its reason names the place (pseudonymized), not the e-mail
    assert EMAIL not in reason


def test_personal_data_email_as_field_name_is_not_echoed_by_the_api(quiet: ChaosRun):
    status, reply = quiet.call_api(
        "POST",
        "/contacts",
        json.dumps({"group_key": "demo-shop", "data": {"email": "a@b.example.com", EMAIL: 1}}),
    )
    assert status == 400
    assert EMAIL not in json.dumps(reply)
