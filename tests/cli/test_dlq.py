"""bridge dlq: the three shapes of dead letters, summary, show (masked), redrive with its filters."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from salesmanago_bridge.commands import CommandEnvelope
from salesmanago_bridge.deadletters import DeadLetterSink, failure_reason
from salesmanago_bridge.errors import AuthError, ValidationFailedError
from tests.cli.conftest import STACK, bodies, contact, drain, event, queue_count
from tests.conftest import load_event

DAY_1 = datetime(2025, 11, 20, 9, 0, tzinfo=UTC)
DAY_2 = datetime(2025, 11, 24, 9, 0, tzinfo=UTC)


def park(sqs: Any, url: str, command: dict[str, Any], error: Any, when: datetime) -> None:
    """A dead letter exactly as the functions park it: the normalized command and its reason."""
    normalized = CommandEnvelope.parse(command).to_command(
        field_map={"loyalty_tier": "properties.loyalty"}, sent_at_ms=int(when.timestamp() * 1000)
    )
    reason = failure_reason(
        error,
        group_key=normalized.group_key,
        action=str(normalized.action),
        source="sqs",
        source_arn="arn:aws:sqs:eu-central-1:123456789012:bridge-commands",
        receive_count=1,
        now=when,
    )
    DeadLetterSink(url, sqs).park(normalized.normalized(), reason)


def lambda_destination(sns_event: dict[str, Any], error_message: str, when: str) -> str:
    """A Lambda on-failure destination record for an SNS-triggered invocation."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": when,
            "requestContext": {
                "requestId": "e4b46cbf-b738-4a4e-8880-a18cdf61200e",
                "functionArn": "arn:aws:lambda:eu-central-1:123456789012:function:bridge-sns:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": sns_event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {
                "errorMessage": error_message,
                "errorType": "ThrottledError",
                "stackTrace": [],
            },
        }
    )


def eventbridge_dead_letter(sqs: Any, url: str, bus_event: dict[str, Any]) -> None:
    """An EventBridge target's dead letter: the event, with the error in message attributes."""
    attributes = {
        "RULE_ARN": "arn:aws:events:eu-central-1:123456789012:rule/bridge/commands",
        "TARGET_ARN": "arn:aws:lambda:eu-central-1:123456789012:function:bridge-eventbridge",
        "ERROR_CODE": "SDK_CLIENT_ERROR",
        "ERROR_MESSAGE": "Lambda was throttled",
        "EXHAUSTED_RETRY_CONDITION": "MaximumEventAgeInSeconds",
    }
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(bus_event),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


@pytest.fixture
def seeded(aws: Any, stack: dict[str, str]) -> dict[str, Any]:
    """Six dead letters: three parked by the bridge, one of each AWS shape, one without a reason."""
    sqs = aws.client("sqs")
    dlq, failures = stack["CommandsDeadLetterQueueUrl"], stack["FailureQueueUrl"]
    refused = AuthError("SALESmanago refused the credentials: Not authenticated")
    park(sqs, dlq, {**contact(1, group="outlet"), "id": "c-1"}, refused, DAY_1)
    park(sqs, dlq, {**contact(2, group="outlet"), "id": "c-2"}, refused, DAY_1)
    park(sqs, dlq, {**event(3), "id": "e-3"}, ValidationFailedError("invalid event.create data"), DAY_2)
    sns_event = load_event("sns_event_create.json")
    sqs.send_message(
        QueueUrl=failures,
        MessageBody=lambda_destination(
            sns_event, "[throttled] SALESmanago is throttling", "2025-11-25T18:31:00Z"
        ),
    )
    eventbridge_dead_letter(sqs, failures, load_event("eventbridge_contact_upsert.json"))
    sqs.send_message(
        QueueUrl=dlq, MessageBody=json.dumps(contact(6, group="outlet") | {"action": "contact.delete"})
    )
    return {"dlq": dlq, "failures": failures, "sqs": sqs}


def test_dlq_summary_counts_every_shape_and_leaves_the_messages(cli, seeded):
    # When
    result = cli("dlq", "summary", "--stack", STACK)

    # Then: counts by queue, error type, action, group, day and shape
    assert result.code == 0, result.err
    out = result.out
    for row in [
        ("CommandsDeadLetterQueue", 4),
        ("FailureQueue", 2),
        ("auth", 2),
        ("validation", 1),
        ("throttled", 1),
        ("eventbridge:SDK_CLIENT_ERROR", 1),
        ("no_reason", 1),
        ("contact.upsert", 3),
        ("event.create", 2),
        ("contact.delete", 1),
        ("outlet", 3),
        ("demo-shop", 3),
        ("2025-11-20", 2),
        ("2025-11-24", 1),
        ("2025-11-25", 1),
        ("bridge-failure", 3),
        ("lambda-destination", 1),
        ("eventbridge-dlq", 1),
        ("no-reason", 1),
    ]:
        assert any(line.split() == [row[0], str(row[1])] for line in out.splitlines()), row
    # And: nothing was consumed; every message is visible again
    sqs = seeded["sqs"]
    visible = sqs.get_queue_attributes(QueueUrl=seeded["dlq"], AttributeNames=["ApproximateNumberOfMessages"])
    assert visible["Attributes"]["ApproximateNumberOfMessages"] == "4"


def test_dlq_show_without_the_stage_key_says_its_pseudonyms_are_its_own(cli, seeded):
    # Given: no pseudonym key for the stage (or no permission to read it)

    # When
    masked = cli("dlq", "show", "--stack", STACK, "--limit", "10")

    # Then: still masked, and the operator is told the pseudonyms will not match the logs
    assert masked.code == 0
    assert "user1@example.com" not in masked.out and "contact:" in masked.out
    assert (
        "cannot read the pseudonym key salesmanago/dev/pseudonym-key (ResourceNotFoundException)"
        in masked.err
    )
    assert masked.err.count("pseudonym key") == 1


def test_dlq_summary_with_a_filter(cli, seeded):
    result = cli("dlq", "summary", "--stack", STACK, "--error-type", "auth")

    assert result.code == 0
    assert "--error-type auth: 2 of 6" in result.out


def test_dlq_show_masks_personal_data_unless_unmasked(cli, seeded, logged_pseudonym):
    # When
    masked = cli("dlq", "show", "--stack", STACK, "--limit", "10")
    clear = cli("dlq", "show", "--stack", STACK, "--error-type", "eventbridge:SDK_CLIENT_ERROR", "--unmask")
    as_json = cli("dlq", "show", "--stack", STACK, "--limit", "2", "--json")

    # Then: e-mails pseudonymized as in the logs, names and phones hidden, reasons shown
    assert masked.code == clear.code == as_json.code == 0
    assert "@" not in masked.out.replace("e-mails", "")
    assert logged_pseudonym("user1@example.com") in masked.out
    assert "Anna Nowak" not in masked.out and "+48 600 100 200" not in masked.out
    assert '"name": "***"' in masked.out
    assert "SALESmanago refused the credentials" in masked.out
    assert "[eventbridge:SDK_CLIENT_ERROR]" in masked.out and "Lambda was throttled" in masked.out
    assert masked.out.count("\n#") + masked.out.startswith("#") == 6
    # --unmask shows them
    assert "anna.nowak@customer.example.com" in clear.out and "Anna Nowak" in clear.out
    # --json: one object a line, --limit respected
    records = [json.loads(line) for line in as_json.out.splitlines()]
    assert len(records) == 2 and all("error_type" in r for r in records)


def test_dlq_redrive_filtered_resends_normalized_commands_and_deletes_them(cli, seeded, stack):
    # When
    result = cli("dlq", "redrive", "--stack", STACK, "--error-type", "auth", "--no-progress")

    # Then: the two auth failures are back in the commands queue, as the command with its id
    assert result.code == 0, result.err
    assert "re-sent 2 commands" in result.out
    resent = bodies(drain(seeded["sqs"], stack["CommandsQueueUrl"]))
    assert sorted(b["id"] for b in resent) == ["c-1", "c-2"]
    assert set(resent[0]) == {"action", "group_key", "data", "id"}
    # And: deleted from the dead-letter queue; the other four stay, visible
    assert queue_count(seeded["sqs"], seeded["dlq"]) == 2
    assert queue_count(seeded["sqs"], seeded["failures"]) == 2


def test_dlq_redrive_dry_run_changes_nothing(cli, seeded, stack):
    result = cli("dlq", "redrive", "--stack", STACK, "--dry-run")

    assert result.code == 0
    assert "dry run: would re-send 6 commands" in result.out
    assert queue_count(seeded["sqs"], stack["CommandsQueueUrl"]) == 0
    assert queue_count(seeded["sqs"], seeded["dlq"]) == 4
    assert queue_count(seeded["sqs"], seeded["failures"]) == 2


def test_dlq_redrive_by_action_and_age(cli, seeded, stack):
    # When: contact.upsert first failed before 2025-11-22 → the two auth ones (the EventBridge one is later)
    result = cli(
        "dlq",
        "redrive",
        "--stack",
        STACK,
        "--action",
        "contact.upsert",
        "--older-than",
        "2025-11-22",
        "--no-progress",
    )

    # Then
    assert result.code == 0, result.err
    assert sorted(b["id"] for b in bodies(drain(seeded["sqs"], stack["CommandsQueueUrl"]))) == ["c-1", "c-2"]


def test_dlq_redrive_skips_upserts_of_erased_contacts_unless_forced(cli, aws, stack, logged_pseudonym):
    # Given: a@ upserted then deleted (erased); b@ deleted then upserted again (not erased)
    sqs, dlq = aws.client("sqs"), stack["CommandsDeadLetterQueueUrl"]
    refused = AuthError("refused")

    def command(action: str, email: str, command_id: str) -> dict[str, Any]:
        return {"action": action, "group_key": "outlet", "data": {"email": email}, "id": command_id}

    park(sqs, dlq, command("contact.upsert", "A@example.com", "a-up"), refused, DAY_1)
    park(sqs, dlq, command("contact.delete", "a@example.com", "a-del"), refused, DAY_2)
    park(sqs, dlq, command("contact.delete", "b@example.com", "b-del"), refused, DAY_1)
    park(sqs, dlq, command("contact.upsert", "b@example.com", "b-up"), refused, DAY_2)

    # When: only the upserts are redriven
    skipping = cli("dlq", "redrive", "--stack", STACK, "--action", "contact.upsert", "--no-progress")

    # Then: a@'s upsert is skipped, reported (pseudonymized) and kept
    assert skipping.code == 0, skipping.err
    assert "skipped 1 contact.upsert of erased contacts" in skipping.out
    assert logged_pseudonym("a@example.com") in skipping.out and "a@example.com" not in skipping.out
    assert [b["id"] for b in bodies(drain(sqs, stack["CommandsQueueUrl"]))] == ["b-up"]
    assert queue_count(sqs, dlq) == 3

    # When: forced
    forced = cli("dlq", "redrive", "--stack", STACK, "--action", "contact.upsert", "--force", "--no-progress")

    # Then
    assert forced.code == 0
    assert [b["id"] for b in bodies(drain(sqs, stack["CommandsQueueUrl"]))] == ["a-up"]


class RefusingSqs:
    """SQS that refuses the re-send of one command (the sender's fault) and logs sends and deletes."""

    def __init__(self, real: Any, refuse_id: str) -> None:
        self.real = real
        self.refuse_id = refuse_id
        self.log: list[tuple[str, list[str]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        refused = [e for e in Entries if json.loads(e["MessageBody"]).get("id") == self.refuse_id]
        passed = [e for e in Entries if e not in refused]
        reply = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=passed)
        self.log.append(("send", [json.loads(e["MessageBody"])["id"] for e in passed]))
        failed = [
            {"Id": e["Id"], "SenderFault": True, "Code": "InvalidParameterValue", "Message": "no"}
            for e in refused
        ]
        return {"Successful": reply.get("Successful", []), "Failed": failed}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.log.append(("delete", [e["ReceiptHandle"] for e in Entries]))
        return self.real.delete_message_batch(QueueUrl=QueueUrl, Entries=Entries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_dlq_redrive_deletes_a_message_only_after_its_command_was_resent(cli, seeded, stack, services):
    # Given: the commands queue refuses the re-send of c-2
    services["sqs"] = refusing = RefusingSqs(seeded["sqs"], "c-2")

    # When
    result = cli("dlq", "redrive", "--stack", STACK, "--error-type", "auth", "--no-progress")

    # Then: c-1 re-sent then deleted; c-2 stays in the dead-letter queue and is listed
    assert result.code == 1
    assert [kind for kind, _ in refusing.log] == ["send", "delete"]
    assert refusing.log[0][1] == ["c-1"] and len(refusing.log[1][1]) == 1
    assert "1 commands could not be re-sent" in result.out
    failed_files = list(__import__("pathlib").Path().glob("redrive-failed-*.jsonl"))
    assert len(failed_files) == 1 and "InvalidParameterValue" in failed_files[0].read_text()
    remaining = bodies(drain(seeded["sqs"], seeded["dlq"]))
    assert "c-2" in [b.get("id") for b in remaining] and "c-1" not in [b.get("id") for b in remaining]


def test_dlq_redrive_keeps_the_event_date_so_a_replay_has_no_second_effect(
    cli, aws, stack, groups_file, sandbox
):
    # Given: an SNS event without id or date was applied, then the invocation still failed
    # (e.g. the reply was lost) and Lambda wrote an on-failure record
    from tests.cli.test_send import _dispatcher, _record

    sns_event = copy.deepcopy(load_event("sns_event_create.json"))
    message = json.loads(sns_event["Records"][0]["Sns"]["Message"])
    message.pop("id")
    message["data"].pop("date")
    sns_event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    dispatcher = _dispatcher(groups_file, aws)
    assert str(dispatcher.dispatch_sns(sns_event).outcomes[0].status) == "applied"
    assert len(sandbox.events()) == 1
    sqs = aws.client("sqs")
    sqs.send_message(
        QueueUrl=stack["FailureQueueUrl"],
        MessageBody=lambda_destination(sns_event, "[outcome_unknown] no reply", "2025-11-25T18:35:00Z"),
    )

    # When: redriven into the commands queue and consumed from there
    result = cli("dlq", "redrive", "--stack", STACK, "--no-progress")
    messages = drain(sqs, stack["CommandsQueueUrl"])
    outcome = dispatcher.dispatch_sqs({"Records": [_record(m) for m in messages]}).outcomes[0]

    # Then: the replay carries the SNS time as the event date, so it is recognised
    assert result.code == 0, result.err
    assert json.loads(messages[0]["Body"])["data"]["date"] == int(
        datetime.fromisoformat("2025-11-25T18:30:00+00:00").timestamp() * 1000
    )
    assert outcome.result.get("duplicate") is True
    assert len(sandbox.events()) == 1


def test_dlq_errors_are_one_line(cli, aws, stack):
    unknown_stack = cli("dlq", "summary", "--stack", "nope")
    gone = "https://sqs.eu-central-1.amazonaws.com/123456789012/gone"
    missing_queue = cli("dlq", "show", "--dlq-url", gone)
    bad_age = cli("dlq", "redrive", "--stack", STACK, "--older-than", "yesterday")

    assert (unknown_stack.code, missing_queue.code, bad_age.code) == (2, 2, 2)
    assert "stack 'nope' not found" in unknown_stack.err
    assert "queue https://sqs.eu-central-1.amazonaws.com/123456789012/gone does not exist" in (
        missing_queue.err
    )
    assert "--older-than 'yesterday'" in bad_age.err
    for result in (unknown_stack, missing_queue, bad_age):
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err


def test_dlq_reads_messages_that_hold_no_command(cli, aws, stack):
    # Given: a body that is not JSON, and a notification whose fields have the wrong types
    sqs, dlq = aws.client("sqs"), stack["CommandsDeadLetterQueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="not json at all: jane@example.com")
    odd = {"Type": "Notification", "Message": "{}", "Timestamp": 123, "MessageAttributes": "x"}
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(odd))

    # When
    summary = cli("dlq", "summary", "--stack", STACK)
    shown = cli("dlq", "show", "--stack", STACK)
    redrive = cli("dlq", "redrive", "--stack", STACK, "--no-progress")

    # Then: counted, shown masked, never re-sent, still there
    assert summary.code == shown.code == redrive.code == 0, summary.err + shown.err + redrive.err
    assert "2 messages hold no command" in summary.out
    assert "bytes, masked" in shown.out and "jane@example.com" not in shown.out
    assert "skipped 2 messages that hold no command" in redrive.out
    assert queue_count(sqs, dlq) == 2
