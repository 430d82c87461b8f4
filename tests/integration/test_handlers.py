"""Every handler, in-process, with real-shaped events: moto for SQS, the sandbox for SALESmanago."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from local.sandbox import Fault, Sandbox
from salesmanago_bridge.errors import TransientError, UnavailableError
from tests.conftest import EVENTS, FakeContext, load_event

GOOD_EVENTS = sorted(
    p.name
    for p in EVENTS.glob("*.json")
    if p.name.split("_")[0] in ("sqs", "sns", "eventbridge")
    and not any(m in p.stem for m in ("bad_email", "unknown_group", "missing_field", "unmapped_field"))
)
FUNCTION_OF = {"sqs": "sqs_consumer", "sns": "sns_consumer", "eventbridge": "eventbridge_consumer"}
REASON_KEYS = {
    "error_type",
    "error_message",
    "details",
    "group_key",
    "action",
    "source",
    "source_arn",
    "first_failure_at",
    "receive_count",
}


def sqs_event(*bodies: dict[str, Any], receive_count: int = 1, arn: str | None = None) -> dict[str, Any]:
    template = load_event("sqs_contact_upsert.json")["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = f"msg-{index}"
        record["body"] = json.dumps(body)
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        if arn:
            record["eventSourceARN"] = arn
            record["attributes"]["MessageGroupId"] = "g1"
        records.append(record)
    return {"Records": records}


def contact(email: str) -> dict[str, Any]:
    return {"action": "contact.upsert", "group_key": "demo-shop", "data": {"email": email}}


def event(email: str) -> dict[str, Any]:
    return {
        "action": "event.create",
        "group_key": "demo-shop",
        "data": {"email": email, "contactExtEventType": "CART", "value": 5},
    }


@pytest.mark.parametrize("name", GOOD_EVENTS)
def test_handler_sample_event_is_applied(name: str, handler, sandbox: Sandbox, dead_letters, lambda_context):
    # Given a sample event of its source (a stock or price update after its products' upsert sample)
    source = name.split("_")[0]
    if name.endswith(("_products_stock.json", "_products_price.json")):
        handler(FUNCTION_OF[source])(load_event(f"{source}_products_upsert.json"), lambda_context)
    # When its handler runs
    result = handler(FUNCTION_OF[source])(load_event(name), lambda_context)
    # Then it reached SALESmanago, nothing was dead-lettered and nothing is handed back
    assert sandbox.requests, "nothing reached the sandbox"
    assert all(r.status == 200 for r in sandbox.requests)
    assert dead_letters() == []
    if source == "sqs":
        assert result == {"batchItemFailures": []}
    else:
        assert {o["status"] for o in result["outcomes"]} == {"applied"}


@pytest.mark.parametrize(
    ("name", "error_type", "field"),
    [
        ("sqs_bad_email.json", "validation", "data.email"),
        ("sns_unknown_group.json", "unknown_group", None),
        ("eventbridge_missing_field.json", "validation", "data.contactExtEventType"),
        ("sqs_unmapped_field.json", "unmapped_field", "data.favourite_colour"),
    ],
)
def test_handler_broken_sample_is_dead_lettered_with_reason(
    name: str, error_type: str, field: str | None, handler, sandbox: Sandbox, dead_letters, lambda_context
):
    # Given a broken sample
    source = name.split("_")[0]
    # When
    result = handler(FUNCTION_OF[source])(load_event(name), lambda_context)
    # Then it is acknowledged (not retried) and parked with a reason naming the field
    if source == "sqs":
        assert result == {"batchItemFailures": []}
    [(body, reason)] = dead_letters()
    assert body["group_key"] == reason["group_key"]  # the command as received, ready to fix and replay
    assert set(reason) == REASON_KEYS
    assert reason["error_type"] == error_type
    assert reason["source"] == source
    assert reason["receive_count"] == 1
    assert reason["first_failure_at"].endswith("Z")
    if field:
        assert field in reason["error_message"]
        assert field in [d["field"] for d in reason["details"]]
    assert not sandbox.requests


def test_handler_sqs_partial_failure_reports_only_failed_record(
    handler, sandbox: Sandbox, dead_letters, lambda_context
):
    # Given events fail with 503 while contacts succeed
    sandbox.inject(Fault("status", status=503, path="addContactExtEvent", times=10))
    batch = sqs_event(
        contact("a@customer.example.com"), event("b@customer.example.com"), contact("c@customer.example.com")
    )
    # When
    result = handler("sqs_consumer")(batch, lambda_context)
    # Then only the event's record goes back to the queue
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert sandbox.contact("a@customer.example.com") and sandbox.contact("c@customer.example.com")
    assert dead_letters() == []


def test_handler_sqs_last_receive_dead_letters_transient_failure(
    handler, sandbox: Sandbox, dead_letters, lambda_context
):
    # Given SALESmanago is down and this is the record's 5th (= MAX_RECEIVE_COUNT) receive
    sandbox.inject(Fault("status", status=503, times=10))
    batch = sqs_event(contact("last@customer.example.com"), receive_count=5)
    # When
    result = handler("sqs_consumer")(batch, lambda_context)
    # Then it is parked by us, with its reason, instead of the queue's reason-less redrive
    assert result == {"batchItemFailures": []}
    [(body, reason)] = dead_letters()
    assert reason["error_type"] == "unavailable"
    assert reason["receive_count"] == 5
    assert body["action"] == "contact.upsert" and body["id"]


def test_handler_sqs_message_parked_before_its_group_was_read_replays_as_the_same_event(
    handler, sandbox: Sandbox, dead_letters, lambda_context, monkeypatch: pytest.MonkeyPatch
):
    # Given an undated event whose action is a message attribute, on its last receive, and its
    # group config unreadable (SSM throttled), so it is parked before it became a command
    data = {"email": "late@customer.example.com", "contactExtEventType": "CART"}
    batch = sqs_event({"group_key": "demo-shop", "data": data}, receive_count=5)
    attribute = {"stringValue": "event.create", "dataType": "String"}
    batch["Records"][0]["messageAttributes"] = {"action": attribute}
    sent_ms = int(batch["Records"][0]["attributes"]["SentTimestamp"])
    from salesmanago_bridge.dispatch import get_dispatcher

    def unreadable(*_: Any, **__: Any) -> Any:
        raise UnavailableError("group config unavailable: ThrottlingException")

    with monkeypatch.context() as patch:
        patch.setattr(get_dispatcher().groups, "get", unreadable)
        # When
        assert handler("sqs_consumer")(batch, lambda_context) == {"batchItemFailures": []}
    # Then the dead letter names its action and keeps the date the bridge would have given it
    [(parked, reason)] = dead_letters()
    assert reason["error_type"] == "unavailable"
    assert parked["action"] == "event.create"
    assert parked["data"]["date"] == sent_ms
    # And replayed an hour later as a new message, it is the same event: created once, dated then
    replay = sqs_event(parked)
    replay["Records"][0]["attributes"]["SentTimestamp"] = str(sent_ms + 3_600_000)
    assert handler("sqs_consumer")(replay, lambda_context) == {"batchItemFailures": []}
    [created] = sandbox.events("late@customer.example.com")
    assert created["contactEvent"]["date"] == sent_ms
    assert dead_letters() == []


def test_handler_sqs_deadline_hands_back_unstarted_work(handler, sandbox: Sandbox, dead_letters):
    # Given less time left than DEADLINE_MARGIN_MS (3000)
    batch = sqs_event(contact("x@customer.example.com"), contact("y@customer.example.com"))
    # When
    result = handler("sqs_consumer")(batch, FakeContext(remaining_ms=2000))
    # Then nothing was started and everything goes back to the queue
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-1"}]}
    assert not sandbox.requests


@pytest.mark.parametrize(
    ("function", "name"),
    [("sns_consumer", "sns_event_create.json"), ("eventbridge_consumer", "eventbridge_event_create.json")],
)
def test_handler_async_source_raises_on_transient_failure(
    function: str, name: str, handler, sandbox: Sandbox, dead_letters, lambda_context
):
    # Given SALESmanago answers 503 to everything
    sandbox.inject(Fault("status", status=503, times=10))
    # When / Then the handler raises, so Lambda's async retries and on-failure destination take over
    with pytest.raises(TransientError):
        handler(function)(load_event(name), lambda_context)
    assert dead_letters() == []


def test_handler_auth_failure_rereads_rotated_credentials(
    handler, sandbox: Sandbox, dead_letters, groups_file: Path, lambda_context
):
    # Given the cached config holds a secret SALESmanago no longer accepts
    groups = json.loads(groups_file.read_text())
    right_secret = groups["demo-shop"]["api_secret"]
    groups["demo-shop"]["api_secret"] = "rotated-away"
    groups_file.write_text(json.dumps(groups))
    handler("sqs_consumer")(sqs_event(contact("first@customer.example.com")), lambda_context)
    [(_, reason)] = dead_letters()
    assert reason["error_type"] == "auth"
    # When the new secret is stored and the next message arrives
    groups["demo-shop"]["api_secret"] = right_secret
    groups_file.write_text(json.dumps(groups))
    result = handler("sqs_consumer")(sqs_event(contact("second@customer.example.com")), lambda_context)
    # Then one re-read of the config and one retry apply it
    assert result == {"batchItemFailures": []}
    assert sandbox.contact("second@customer.example.com") is not None
    assert dead_letters() == []


def test_handler_auth_retry_resends_only_the_refused_commands(
    handler,
    sandbox: Sandbox,
    dead_letters,
    groups_file: Path,
    lambda_context,
    monkeypatch: pytest.MonkeyPatch,
):
    # Given a chunk of two events: the first answered (created), the second refused for credentials
    # that rotated meanwhile (e.g. a batch's failed event re-sent alone after the rotation)
    from salesmanago_bridge import dispatch
    from salesmanago_bridge.errors import AuthError

    groups = json.loads(groups_file.read_text())
    sent: list[list[int]] = []

    def answer_then_refuse(gateway: Any, chunk: Any, group: Any = None) -> dict[int, Any]:
        positions = [work.position for work in chunk.works]
        sent.append(positions)
        if len(sent) == 1:
            groups["demo-shop"]["api_secret"] = "rotated-in"  # the store now holds the new secret
            groups_file.write_text(json.dumps(groups))
            return {positions[0]: {"eventId": "created-once"}, positions[1]: AuthError("refused")}
        return {position: {"eventId": f"created-after-rotation-{position}"} for position in positions}

    monkeypatch.setattr(dispatch, "send_chunk", answer_then_refuse)
    # When both arrive in one invocation
    result = handler("sqs_consumer")(
        sqs_event(event("first@customer.example.com"), event("second@customer.example.com")), lambda_context
    )
    # Then only the refused one is sent again: the created one is never sent twice
    assert result == {"batchItemFailures": []}
    assert len(sent) == 2 and len(sent[0]) == 2
    assert sent[1] == sent[0][1:]
    assert dead_letters() == []


def test_handler_dead_letter_queue_down_keeps_message_at_source(
    handler, sandbox: Sandbox, monkeypatch, lambda_context
):
    # Given the dead-letter queue does not exist
    from salesmanago_bridge.dispatch import get_dispatcher

    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "https://sqs.eu-central-1.amazonaws.com/123456789012/missing")
    from salesmanago_bridge.settings import get_settings

    get_settings.cache_clear()
    get_dispatcher.cache_clear()
    # When a poison message arrives
    result = handler("sqs_consumer")(load_event("sqs_bad_email.json"), lambda_context)
    # Then it is not acknowledged: nothing is lost
    assert len(result["batchItemFailures"]) == 1


def test_handler_sqs_accepts_sns_wrapped_and_eventbridge_bodies(
    handler, sandbox: Sandbox, dead_letters, lambda_context
):
    # Given an SNS notification (not raw) and a whole EventBridge event as SQS bodies
    sns_envelope = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:eu-central-1:123456789012:commands",
        "Message": json.dumps({"group_key": "demo-shop", "data": {"email": "via.sns@customer.example.com"}}),
        "Timestamp": "2026-11-25T10:00:00.000Z",
        "MessageAttributes": {"action": {"Type": "String", "Value": "contact.upsert"}},
    }
    bus_event = load_event("eventbridge_event_create.json")
    # When
    result = handler("sqs_consumer")(sqs_event(sns_envelope, bus_event), lambda_context)
    # Then both are applied
    assert result == {"batchItemFailures": []}
    assert sandbox.contact("via.sns@customer.example.com") is not None
    assert len(sandbox.requests_to("addContactExtEvent")) == 1
    assert dead_letters() == []


def test_handler_fifo_failed_message_holds_back_its_group(handler, sandbox: Sandbox, lambda_context):
    # Given a FIFO batch whose first message fails transiently
    sandbox.inject(Fault("status", status=503, times=10))
    batch = sqs_event(
        contact("f1@customer.example.com"),
        contact("f2@customer.example.com"),
        arn="arn:aws:sqs:eu-central-1:123456789012:cmds.fifo",
    )
    # When
    result = handler("sqs_consumer")(batch, lambda_context)
    # Then the later message of that group was not sent before the earlier one
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-1"}]}
    assert all("f2@" not in json.dumps(r.body) for r in sandbox.requests)


def test_handler_redelivered_delete_of_absent_contact_is_applied(
    handler, sandbox: Sandbox, dead_letters, lambda_context
):
    # Given a delete that already happened (redelivery)
    delete = {
        "action": "contact.delete",
        "group_key": "demo-shop",
        "data": {"email": "absent@customer.example.com"},
    }
    # When
    result = handler("sqs_consumer")(sqs_event(delete), lambda_context)
    # Then it is acknowledged, not dead-lettered
    assert result == {"batchItemFailures": []}
    assert dead_letters() == []


def test_handler_emits_emf_metrics(handler, sandbox: Sandbox, capsys, lambda_context):
    handler("sqs_consumer")(load_event("sqs_batch_mixed.json"), lambda_context)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for blob in blobs for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"CommandsApplied", "SalesmanagoRequests", "SalesmanagoLatency"} <= names
    values = [b.get("CommandsApplied", 0) for b in blobs if "action" in b]
    applied = sum(sum(v) if isinstance(v, list) else v for v in values)
    assert applied == 4
    assert all(b["service"] == "salesmanago-bridge" for b in blobs)
