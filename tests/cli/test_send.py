"""bridge send: every target, batches of 10 within the size limits, retries, resume, the backfill default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge_cli import send
from bridge_cli.checks import MAX_MESSAGE_BYTES
from bridge_cli.progress import RateLimiter
from tests.cli.conftest import STACK, bodies, contact, drain, event, queue_count, write_jsonl
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("stack")


class RecordingSqs:
    """A moto SQS client that records each SendMessageBatch and can fail entries or whole calls."""

    def __init__(
        self, real: Any, *, fail_once: set[str] = frozenset(), fail_always: set[str] = frozenset()
    ) -> None:
        self.real = real
        self.calls: list[list[str]] = []
        self.fail_once = set(fail_once)
        self.fail_always = set(fail_always)
        self.interrupt_on_call: int | None = None

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([entry["Id"] for entry in Entries])
        failed, passed = [], []
        for entry in Entries:
            if entry["Id"] in self.fail_once:
                self.fail_once.discard(entry["Id"])
                failed.append(
                    {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                )
            elif entry["Id"] in self.fail_always:
                failed.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": True,
                        "Code": "InvalidMessageContents",
                        "Message": "no",
                    }
                )
            else:
                passed.append(entry)
        if self.interrupt_on_call == len(self.calls):
            # A crash in the middle of a batch: half of it reached the queue.
            self.real.send_message_batch(QueueUrl=QueueUrl, Entries=passed[: len(passed) // 2])
            raise KeyboardInterrupt
        reply = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=passed) if passed else {}
        return {"Successful": reply.get("Successful", []), "Failed": failed}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_send_to_queue_batches_of_ten_with_deterministic_ids(cli, aws, stack, tmp_path, services):
    # Given: 25 contacts, one with its own id
    lines = [contact(n) for n in range(25)]
    lines[3]["id"] = "crm-export-3"
    path = write_jsonl(tmp_path / "contacts.jsonl", lines)
    services["sqs"] = recorder = RecordingSqs(aws.client("sqs"))

    # When
    result = cli("send", path, "--stack", STACK, "--no-progress")

    # Then: three calls of 10, 10 and 5, every line once, with an id from the file and line
    assert result.code == 0, result.err
    assert [len(call) for call in recorder.calls] == [10, 10, 5]
    sent = bodies(drain(aws.client("sqs"), stack["CommandsQueueUrl"]))
    assert len(sent) == 25
    ids = {body["data"]["email"]: body["id"] for body in sent}
    assert ids["user3@example.com"] == "crm-export-3"
    assert ids["user0@example.com"].startswith("contacts.jsonl:1:")
    assert ids["user24@example.com"].startswith("contacts.jsonl:25:")
    assert all(body["action"] == "contact.upsert" and body["group_key"] == "demo-shop" for body in sent)
    assert "sent 25 commands to the commands queue" in result.out
    assert not (tmp_path / "contacts.send-state.json").exists()

    # When: the same file again: the same ids (a second send has no second effect)
    again = cli("send", path, "--stack", STACK, "--no-progress")
    assert again.code == 0
    resent = {
        body["data"]["email"]: body["id"]
        for body in bodies(drain(aws.client("sqs"), stack["CommandsQueueUrl"]))
    }
    assert resent == ids


def test_send_batches_stay_within_the_size_limit(cli, aws, stack, tmp_path, services):
    # Given: 12 commands of about 60 KiB each (4 fit in 256 KiB), and one too large for any message
    big = [contact(n, name="x" * 200, properties={f"p{k}": "y" * 250 for k in range(240)}) for n in range(12)]
    huge = contact(99, properties={f"p{k}": "z" * 250 for k in range(1100)})
    path = write_jsonl(tmp_path / "big.jsonl", [*big, huge])
    services["sqs"] = recorder = RecordingSqs(aws.client("sqs"))

    # When
    result = cli("send", path, "--to", "queue", "--stack", STACK, "--skip-invalid", "--no-progress")

    # Then: batches of at most 256 KiB, the huge line rejected with its reason
    assert result.code == 1
    assert all(len(call) <= 4 for call in recorder.calls)
    assert sum(len(call) for call in recorder.calls) == 12
    assert "too_large" in result.out
    rejected = [json.loads(line) for line in (tmp_path / "big.rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejected] == [13]
    assert f"{MAX_MESSAGE_BYTES:,}" in rejected[0]["details"][0]["problem"]
    assert len(drain(aws.client("sqs"), stack["CommandsQueueUrl"])) == 12


def test_send_retries_the_entries_a_batch_call_failed(cli, aws, stack, tmp_path, services):
    # Given: SQS fails three entries once (its own fault) and one for good (the sender's fault)
    path = write_jsonl(tmp_path / "c.jsonl", [contact(n) for n in range(20)])
    services["sqs"] = recorder = RecordingSqs(
        aws.client("sqs"), fail_once={"line2", "line5", "line13"}, fail_always={"line7"}
    )

    # When
    result = cli("send", path, "--stack", STACK, "--no-progress", "--concurrency", "1")

    # Then: the three are re-sent alone and arrive once; the refused one is in the failed file
    assert result.code == 1
    assert recorder.calls[1] == ["line2", "line5"]  # the retry of the first batch (not line 7)
    sent = bodies(drain(aws.client("sqs"), stack["CommandsQueueUrl"]))
    emails = sorted(body["data"]["email"] for body in sent)
    assert len(emails) == len(set(emails)) == 19
    assert "user6@example.com" not in emails  # line 7
    failed = (tmp_path / "c.failed.jsonl").read_text().splitlines()
    assert [json.loads(line)["data"]["email"] for line in failed] == ["user6@example.com"]
    assert json.loads(failed[0])["id"].startswith("c.jsonl:7:")
    assert "InvalidMessageContents" in result.out
    assert "user6@example.com" not in result.out + result.err


def test_send_resumes_after_an_interruption_without_a_second_effect(
    cli, aws, stack, tmp_path, services, groups_file, sandbox
):
    # Given: 25 events; the run is interrupted in the middle of its third batch
    path = write_jsonl(tmp_path / "orders.jsonl", [event(n) for n in range(25)])
    services["sqs"] = recorder = RecordingSqs(aws.client("sqs"))
    recorder.interrupt_on_call = 3

    # When
    first = cli("send", path, "--stack", STACK, "--no-progress", "--concurrency", "1")

    # Then: it stops with a way to resume; lines 1-20 are settled
    assert first.code == 1
    assert "--resume" in first.err and "line 21" in first.err
    state = json.loads((tmp_path / "orders.send-state.json").read_text())
    assert state["next_line"] == 21 and state["sent"] == 20

    # When: run again without --resume, then with it
    refused = cli("send", path, "--stack", STACK, "--no-progress")
    services.pop("sqs")
    resumed = cli("send", path, "--stack", STACK, "--no-progress", "--resume")

    # Then: only lines 21-25 go again; the half batch sent before the crash arrives twice, same ids
    assert refused.code == 2 and "--resume" in refused.err
    assert resumed.code == 0, resumed.err
    assert "resuming at line 21" in resumed.out
    messages = drain(aws.client("sqs"), stack["CommandsQueueUrl"])
    ids = [body["id"] for body in bodies(messages)]
    assert len(ids) == 27 and len(set(ids)) == 25

    # And: through the SQS consumer with its idempotency table, each event exists once
    dispatcher = _dispatcher(groups_file, aws)
    outcomes = dispatcher.dispatch_sqs({"Records": [_record(m) for m in messages]})
    assert {str(o.status) for o in outcomes.outcomes} == {"applied"}
    assert sum(1 for o in outcomes.outcomes if o.result.get("duplicate")) == 2
    assert len(sandbox.events()) == 25


def test_files_over_the_threshold_default_to_backfill(cli, tmp_path, monkeypatch):
    # Given: 10,000 is the threshold; lowered here to 50 so that the files stay small
    assert send.BACKFILL_THRESHOLD == 10_000
    monkeypatch.setattr(send, "BACKFILL_THRESHOLD", 50)
    many = write_jsonl(tmp_path / "history.jsonl", [contact(n) for n in range(51)])
    fewer = write_jsonl(tmp_path / "today.jsonl", [contact(n) for n in range(50)])

    # When
    to_backfill = cli("send", many, "--stack", STACK, "--dry-run")
    to_queue = cli("send", fewer, "--stack", STACK, "--dry-run")

    # Then
    assert to_backfill.code == to_queue.code == 0
    assert "51 commands (more than 50): sending to the backfill queue" in to_backfill.out
    assert "bridge-backfill" in to_backfill.out
    assert "bridge-commands " in to_queue.out and "backfill" not in to_queue.out


def test_send_to_backfill_uses_the_stack_output(cli, aws, stack, tmp_path, monkeypatch):
    # Given: the backfill threshold lowered, so a small file counts as a history load
    monkeypatch.setattr(send, "BACKFILL_THRESHOLD", 5)
    path = write_jsonl(tmp_path / "h.jsonl", [contact(n) for n in range(8)])

    # When
    result = cli("send", path, "--stack", STACK, "--no-progress")

    # Then
    assert result.code == 0, result.err
    assert len(drain(aws.client("sqs"), stack["BackfillQueueUrl"])) == 8
    assert queue_count(aws.client("sqs"), stack["CommandsQueueUrl"]) == 0


def test_send_to_topic_publishes_batches(cli, aws, stack, tmp_path):
    # Given: the topic delivers to a queue (raw), as the template's buffered intake does
    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName="topic-copy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=stack["CommandsTopicArn"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    path = write_jsonl(tmp_path / "e.jsonl", [event(n) for n in range(13)])

    # When
    result = cli("send", path, "--to", "topic", "--stack", STACK, "--no-progress")

    # Then
    assert result.code == 0, result.err
    sent = bodies(drain(sqs, url))
    assert sorted(b["data"]["externalId"] for b in sent) == sorted(f"order-{n}" for n in range(13))
    assert all(b["action"] == "event.create" and b["id"].startswith("e.jsonl:") for b in sent)


def test_send_to_bus_puts_events_with_the_action_as_detail_type(cli, aws, stack, tmp_path):
    # Given: a rule on the bus copies every bridge action to a queue
    sqs, events = aws.client("sqs"), aws.client("events")
    url = sqs.create_queue(QueueName="bus-copy")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack["EventBusName"]
    events.put_rule(
        Name="copy", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["contact.upsert"]})
    )
    events.put_targets(Rule="copy", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    path = write_jsonl(tmp_path / "c.jsonl", [contact(n) for n in range(12)])

    # When
    result = cli("send", path, "--to", "bus", "--stack", STACK, "--no-progress")

    # Then
    assert result.code == 0, result.err
    delivered = bodies(drain(sqs, url))
    assert len(delivered) == 12
    assert {e["detail-type"] for e in delivered} == {"contact.upsert"}
    assert {e["source"] for e in delivered} == {"salesmanago-bridge.cli"}
    assert all(e["detail"]["id"].startswith("c.jsonl:") for e in delivered)


def test_send_to_bus_retries_failed_entries(cli, aws, stack, tmp_path, services):
    # Given: PutEvents fails the second entry once with an internal failure
    real = aws.client("events")
    calls: list[int] = []

    class FlakyEvents:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            calls.append(len(Entries))
            if len(calls) == 1:
                real.put_events(Entries=[Entries[0], *Entries[2:]])
                results = [{"EventId": "x"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "retry"}]
                return {"FailedEntryCount": 1, "Entries": results + [{"EventId": "y"}] * (len(Entries) - 2)}
            return real.put_events(Entries=Entries)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    services["events"] = FlakyEvents()
    path = write_jsonl(tmp_path / "c.jsonl", [contact(n) for n in range(10)])

    # When
    result = cli("send", path, "--to", "bus", "--stack", STACK, "--no-progress")

    # Then: one retry of the one failed entry
    assert result.code == 0, result.err
    assert calls == [10, 1]


def test_send_refuses_a_file_with_rejected_lines_unless_told(cli, aws, stack, tmp_path):
    # Given
    path = write_jsonl(
        tmp_path / "c.jsonl", [contact(1), {"action": "contact.upsert", "group_key": "g", "data": {}}]
    )

    # When
    refused = cli("send", path, "--stack", STACK, "--no-progress")

    # Then: nothing sent, the reason written
    assert refused.code == 1
    assert "nothing sent" in refused.out
    assert queue_count(aws.client("sqs"), stack["CommandsQueueUrl"]) == 0
    assert json.loads((tmp_path / "c.rejected.jsonl").read_text())["line"] == 2


def test_send_csv_with_action_and_group_key(cli, aws, stack, tmp_path):
    # Given
    path = tmp_path / "contacts.csv"
    path.write_text("email,name,tags,properties.tier\na@example.com,Ann,VIP|NEW,gold\nb@example.com,Bob,,\n")

    # When
    result = cli(
        "send", path, "--action", "contact.upsert", "--group-key", "outlet", "--stack", STACK, "--no-progress"
    )

    # Then
    assert result.code == 0, result.err
    sent = sorted(
        bodies(drain(aws.client("sqs"), stack["CommandsQueueUrl"])), key=lambda b: b["data"]["email"]
    )
    assert sent[0]["data"] == {
        "email": "a@example.com",
        "name": "Ann",
        "tags": ["VIP", "NEW"],
        "properties": {"tier": "gold"},
    }
    assert sent[0]["id"].startswith("contacts.csv:2:") and sent[1]["id"].startswith("contacts.csv:3:")
    assert sent[1]["group_key"] == "outlet"


def test_send_to_a_fifo_queue_sets_group_and_deduplication_ids(cli, aws, tmp_path):
    # Given
    url = aws.client("sqs").create_queue(QueueName="cmds.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    path = write_jsonl(tmp_path / "c.jsonl", [contact(1), contact(1, name="Again"), contact(2)])

    # When
    result = cli("send", path, "--queue-url", url, "--no-progress")

    # Then: both commands of user1 kept (distinct ids), in order
    assert result.code == 0, result.err
    names = [b["data"]["name"] for b in bodies(drain(aws.client("sqs"), url))]
    assert names.index("User 1") < names.index("Again") and len(names) == 3


def test_send_rate_limit_holds_the_batches_back(cli, tmp_path, monkeypatch):
    # Given: a rate of 10 a second for 30 commands, on a fake clock
    clock = FakeClock()
    monkeypatch.setattr(
        send, "RateLimiter", lambda rate: RateLimiter(rate, clock=clock.monotonic, sleep=clock.sleep)
    )
    path = write_jsonl(tmp_path / "c.jsonl", [contact(n) for n in range(30)])

    # When
    result = cli("send", path, "--stack", STACK, "--rate", "10", "--no-progress", "--concurrency", "1")

    # Then: the first 10 go at once, the next 20 wait two seconds in all
    assert result.code == 0, result.err
    assert sum(clock.slept) == pytest.approx(2.0)


def test_rate_limiter_spreads_batches_over_time():
    # Given
    clock = FakeClock()
    limiter = RateLimiter(50, clock=clock.monotonic, sleep=clock.sleep)

    # When: 200 commands in batches of 10
    for _ in range(20):
        limiter.acquire(10)

    # Then: 50 at once (the bucket), 150 more at 50 a second
    assert sum(clock.slept) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", "nope"], "stack 'nope' not found in eu-central-1"),
        (["--queue-url", "https://sqs.eu-central-1.amazonaws.com/123456789012/gone"], "does not exist"),
        (["--to", "topic", "--topic-arn", "arn:aws:sns:eu-central-1:123456789012:gone"], "does not exist"),
        (["--to", "bus", "--bus-name", "gone"], "event bus gone does not exist"),
        (["--to", "topic", "--queue-url", "https://q"], "--queue-url does not go with --to topic"),
        (["--stack", STACK, "--resume"], "nothing to resume"),
    ],
)
def test_send_setup_errors_are_one_line_and_exit_2(cli, tmp_path, argv, message):
    path = write_jsonl(tmp_path / "c.jsonl", [contact(1)])

    result = cli("send", path, *argv, "--no-progress")

    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_send_missing_file_is_a_usage_error(cli, tmp_path):
    result = cli("send", tmp_path / "absent.jsonl", "--stack", STACK)

    assert result.code == 2
    assert result.err.strip() == f"bridge: error: {tmp_path / 'absent.jsonl'}: no such file"


def _dispatcher(groups_file: Path, aws: Any) -> Any:
    from salesmanago_bridge.client import SalesmanagoClient
    from salesmanago_bridge.deadletters import DeadLetterSink
    from salesmanago_bridge.dispatch import Dispatcher
    from salesmanago_bridge.groups import FileGroupStore
    from salesmanago_bridge.idempotency import EventGuard
    from salesmanago_bridge.settings import Settings

    table = "cli-idempotency"
    dynamodb = aws.client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    settings = Settings.model_validate(
        {"SALESMANAGO_GROUPS_FILE": str(groups_file), "IDEMPOTENCY_TABLE_NAME": table}
    )
    client = SalesmanagoClient(settings)
    guard = EventGuard(table, settings.idempotency_ttl_s, clock=client.clock, dynamodb_client=dynamodb)
    return Dispatcher(settings, FileGroupStore(groups_file), client, DeadLetterSink(None), guard=guard)


def _record(message: dict[str, Any]) -> dict[str, Any]:
    """A received SQS message in the shape Lambda's event source mapping hands to the consumer."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:bridge-commands",
        "awsRegion": "eu-central-1",
    }
