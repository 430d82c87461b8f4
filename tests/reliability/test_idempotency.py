"""Events reach SALESmanago once: redeliveries, lost replies and crashes at each point."""

from __future__ import annotations

import time
from typing import Any

import pytest

from local.sandbox import Fault, Sandbox
from salesmanago_bridge.errors import ErrorType
from salesmanago_bridge.sources import Inbound, Source


class Crash(BaseException):
    """Stands for the process dying: nothing in the bridge catches it."""


def event(n: int, email: str | None = None, **data: Any) -> Inbound:
    body = {
        "action": "event.create",
        "group_key": "demo-shop",
        "data": {
            "email": email or f"ev{n}@customer.example.com",
            "contactExtEventType": "PURCHASE",
            "value": 10 + n,
            **data,
        },
    }
    return Inbound(message_id=f"m{n}", source=Source.SQS, body=body, sent_at_ms=1_764_095_400_000)


def statuses(outcomes: Any) -> list[str]:
    return [str(o.status) for o in outcomes.outcomes]


def test_idempotency_redelivered_event_is_sent_once(sandbox: Sandbox, make_dispatcher):
    # Given an event that was applied
    dispatcher = make_dispatcher()
    first = dispatcher.dispatch_batch([event(1)])
    # When SQS delivers it again
    second = dispatcher.dispatch_batch([event(1)])
    # Then SALESmanago saw it once, and the retry reports the first result
    assert len(sandbox.events()) == 1
    assert statuses(second) == ["applied"]
    assert second.outcomes[0].result["duplicate"] is True
    assert second.outcomes[0].result["eventId"] == first.outcomes[0].result["eventId"]


def test_idempotency_redelivered_bulk_batch_sends_nothing(sandbox: Sandbox, make_dispatcher):
    dispatcher = make_dispatcher()
    dispatcher.dispatch_batch([event(i) for i in range(20)])
    requests_after_first = len(sandbox.requests)
    outcomes = dispatcher.dispatch_batch([event(i) for i in range(20)])
    assert len(sandbox.requests) == requests_after_first
    assert len(sandbox.events()) == 20
    assert set(statuses(outcomes)) == {"applied"}


def test_idempotency_replay_from_another_source_is_recognised(sandbox: Sandbox, make_dispatcher):
    # Given an event applied from SNS, replayed later from a dead-letter queue into SQS
    dispatcher = make_dispatcher()
    original = event(1)
    dispatcher.dispatch_batch(
        [Inbound(message_id="sns-1", source=Source.SNS, body=original.body, sent_at_ms=original.sent_at_ms)]
    )
    # When
    dispatcher.dispatch_batch([original])
    # Then
    assert len(sandbox.events()) == 1


def test_idempotency_read_timeout_after_apply_is_reconciled_not_resent(sandbox: Sandbox, make_dispatcher):
    # Given SALESmanago creates the event but answers after the client's read timeout
    dispatcher = make_dispatcher()
    sandbox.inject(Fault("slow", path="addContactExtEvent", delay_s=0.6, apply=True))
    first = dispatcher.dispatch_batch([event(1)])
    assert statuses(first) == ["retry"]
    assert first.outcomes[0].error.error_type is ErrorType.OUTCOME_UNKNOWN
    # When the message comes back
    second = dispatcher.dispatch_batch([event(1)])
    # Then the bridge looked it up, found it and did not send it again
    assert statuses(second) == ["applied"]
    assert second.outcomes[0].result["reconciled"] is True
    assert len(sandbox.requests_to("addContactExtEvent")) == 1
    assert len(sandbox.requests_to("contact/list")) == 1
    assert len(sandbox.events()) == 1


def test_idempotency_lost_reply_without_effect_is_sent_after_reconciliation(
    sandbox: Sandbox, make_dispatcher
):
    # Given the connection drops after sending and SALESmanago did not apply the event
    dispatcher = make_dispatcher()
    sandbox.inject(Fault("drop", path="addContactExtEvent"))
    assert statuses(dispatcher.dispatch_batch([event(1)])) == ["retry"]
    # When it comes back
    second = dispatcher.dispatch_batch([event(1)])
    # Then it is not found, so it is sent: exactly one event in the end
    assert statuses(second) == ["applied"]
    assert len(sandbox.events()) == 1


def test_idempotency_definite_failure_releases_claim(sandbox: Sandbox, make_dispatcher):
    # Given a 503 storm (SALESmanago surely did nothing)
    dispatcher = make_dispatcher(SALESMANAGO_MAX_RETRIES=0)
    sandbox.inject(Fault("status", status=503, path="addContactExtEvent"))
    assert statuses(dispatcher.dispatch_batch([event(1)])) == ["retry"]
    # When it comes back, it is sent at once, without a reconciliation lookup
    assert statuses(dispatcher.dispatch_batch([event(1)])) == ["applied"]
    assert not sandbox.requests_to("contact/list")
    assert len(sandbox.events()) == 1


def test_idempotency_crash_after_accept_before_record_completed(
    sandbox: Sandbox, make_dispatcher, clock, monkeypatch
):
    # Given the process dies after SALESmanago accepted the event, before the record was completed
    dispatcher = make_dispatcher()

    def die(*_: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(dispatcher.guard, "complete_all", die)
        with pytest.raises(Crash):
            dispatcher.dispatch_batch([event(1)])
    assert len(sandbox.events()) == 1
    # When SQS redelivers while the in-progress claim is still fresh, nothing is sent
    assert statuses(dispatcher.dispatch_batch([event(1)])) == ["retry"]
    # And when it comes back after the claim expired
    clock.advance(120)
    final = dispatcher.dispatch_batch([event(1)])
    # Then it is reconciled, not sent again
    assert statuses(final) == ["applied"]
    assert final.outcomes[0].result["reconciled"] is True
    assert len(sandbox.events()) == 1


def test_idempotency_crash_after_record_completed_never_duplicates(
    sandbox: Sandbox, make_dispatcher, monkeypatch
):
    # Given the process dies after completing the record, before reporting to the source
    dispatcher = make_dispatcher()

    def die(*_: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(dispatcher, "_conclude", die)
        with pytest.raises(Crash):
            dispatcher.dispatch_batch([event(1)])
    # When it is redelivered
    outcome = dispatcher.dispatch_batch([event(1)])
    # Then it is a duplicate: no second event, no lookup
    assert statuses(outcome) == ["applied"]
    assert outcome.outcomes[0].result["duplicate"] is True
    assert len(sandbox.events()) == 1
    assert not sandbox.requests_to("contact/list")


def test_idempotency_crash_before_sending_sends_after_reconciliation(
    sandbox: Sandbox, make_dispatcher, clock, monkeypatch
):
    # Given the process dies after claiming, before anything reached SALESmanago
    dispatcher = make_dispatcher()

    def die(*_: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(dispatcher, "_send_chunks", die)
        with pytest.raises(Crash):
            dispatcher.dispatch_batch([event(1)])
    clock.advance(120)
    # When redelivered after the claim expired
    assert statuses(dispatcher.dispatch_batch([event(1)])) == ["applied"]
    # Then exactly one event exists
    assert len(sandbox.events()) == 1


def test_idempotency_same_id_other_content_is_a_conflict(sandbox: Sandbox, make_dispatcher):
    dispatcher = make_dispatcher()
    first = event(1)
    first.body["id"] = "order-77"
    dispatcher.dispatch_batch([first])
    changed = event(2)
    changed.body["id"] = "order-77"
    outcome = dispatcher.dispatch_batch([changed])
    assert statuses(outcome) == ["dead_lettered"]
    assert outcome.outcomes[0].error.error_type is ErrorType.IDEMPOTENCY_CONFLICT
    assert len(sandbox.events()) == 1


def test_idempotency_bulk_batch_with_lost_reply_is_reconciled_in_one_lookup(
    sandbox: Sandbox, make_dispatcher
):
    # Given a bulk event batch applied by SALESmanago whose reply is lost
    dispatcher = make_dispatcher()
    sandbox.inject(Fault("drop", path="addBatchContactExtEvent", apply=True))
    first = dispatcher.dispatch_batch([event(i) for i in range(30)])
    assert set(statuses(first)) == {"retry"}
    # When the batch comes back
    second = dispatcher.dispatch_batch([event(i) for i in range(30)])
    # Then one contact/list lookup finds all 30: none is sent again
    assert set(statuses(second)) == {"applied"}
    assert len(sandbox.requests_to("contact/list")) == 1
    assert len(sandbox.requests_to("addBatchContactExtEvent")) == 1
    assert len(sandbox.events()) == 30


def test_idempotency_partially_failed_batch_releases_failed_events(sandbox: Sandbox, make_dispatcher):
    # Given one event of a batch that SALESmanago refuses, then accepts after a fix
    dispatcher = make_dispatcher()
    sandbox.reject_email("ev3@customer.example.com", mode="item")
    first = dispatcher.dispatch_batch([event(i) for i in range(10)])
    assert statuses(first).count("dead_lettered") == 1
    sandbox.accept_email("ev3@customer.example.com")
    # When the whole batch is replayed
    second = dispatcher.dispatch_batch([event(i) for i in range(10)])
    # Then the 9 applied are suppressed and only the refused one is sent now
    assert sum(1 for o in second.outcomes if o.result.get("duplicate")) == 9
    assert len(sandbox.events()) == 10


def test_idempotency_store_down_holds_events_back(sandbox: Sandbox, make_dispatcher, dynamodb):
    # Given the idempotency table is unreachable
    dispatcher = make_dispatcher()
    dynamodb.delete_table(TableName="salesmanago-bridge-test-idempotency")
    # When an event arrives
    outcome = dispatcher.dispatch_batch([event(1)])
    # Then it is not sent unguarded: it goes back to the source
    assert statuses(outcome) == ["retry"]
    assert not sandbox.events()


def test_idempotency_off_redelivery_duplicates(sandbox: Sandbox, make_dispatcher):
    # Given no idempotency table (IDEMPOTENCY_TABLE_NAME unset): the documented weaker guarantee
    dispatcher = make_dispatcher(guard=False)
    dispatcher.dispatch_batch([event(1)])
    dispatcher.dispatch_batch([event(1)])
    assert len(sandbox.events()) == 2


def test_idempotency_outcomes_are_counted(sandbox: Sandbox, make_dispatcher, capsys):
    dispatcher = make_dispatcher()
    sandbox.inject(Fault("slow", path="addContactExtEvent", delay_s=0.6, apply=True))
    dispatcher.dispatch_batch([event(1)])
    dispatcher.dispatch_batch([event(1)])
    dispatcher.dispatch_batch([event(1)])
    out = capsys.readouterr().out
    assert '"OutcomeUnknown"' in out
    assert '"OutcomeReconciled"' in out
    assert '"DuplicatesSuppressed"' in out


LATE_WRITE_S = 2.0


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="documented limit (README, 'What no client can close'): an event SALESmanago applies after "
    "the reply timed out, and does not list yet when the retry looks, is sent again",
)
def test_idempotency_event_applied_late_and_not_listed_yet_is_sent_once(sandbox: Sandbox, make_dispatcher):
    # Given SALESmanago applies the event only after the client gave up on the reply
    dispatcher = make_dispatcher()
    # (2 s late: the retry below must look before it lands, also on a machine busy with other runs;
    # with 0.6 s a loaded make test saw the late write first, and the strict xfail passed)
    sandbox.inject(Fault("slow", path="addContactExtEvent", delay_s=LATE_WRITE_S, apply=False))
    assert statuses(dispatcher.dispatch_batch([event(1)])) == ["retry"]
    # When the retry looks it up before that late write has landed (in production the retry comes a
    # visibility timeout later, minutes, so the window is the server's own delay)
    dispatcher.dispatch_batch([event(1)])
    time.sleep(LATE_WRITE_S + 0.4)  # the late write lands LATE_WRITE_S after its request
    # Then SALESmanago would hold one event; it holds two
    assert len(sandbox.events()) == 1
