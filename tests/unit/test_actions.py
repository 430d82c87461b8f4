"""The action registry: every action has one spec, an unknown action fails loudly everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from salesmanago_bridge import actions, gateway
from salesmanago_bridge.actions import SPECS, UnknownActionError, send_chunk, spec_for
from salesmanago_bridge.batching import plan_chunks
from salesmanago_bridge.commands import DATA_MODELS, Action, WriteRequest
from salesmanago_bridge.settings import Settings
from salesmanago_bridge.work import Chunk, Work


def test_every_action_has_exactly_one_spec_under_its_own_name() -> None:
    assert set(SPECS) == set(Action)
    assert all(spec.action is action for action, spec in SPECS.items())


def test_specs_agree_with_the_command_contract_and_the_settings() -> None:
    settings = Settings()
    for action, spec in SPECS.items():
        assert spec.data is DATA_MODELS[action]
        assert spec.operations and all(op in gateway.OPERATIONS for op in spec.operations)
        if spec.batch_size_setting is not None:
            assert isinstance(getattr(settings, spec.batch_size_setting), int)
        assert issubclass(spec.reply, actions.Applied)


def test_each_spec_owns_the_api_request_of_its_action_named_after_it() -> None:
    # Given the request models beside the specs (a route's body is its spec's request)
    for action, spec in SPECS.items():
        assert spec.request is not None
        # Then each names its action, and its schema in docs/openapi.json is named after it
        assert spec.request.action() is action
        pascal = "".join(word.capitalize() for word in str(action).split("."))
        assert spec.request.__name__ == f"{pascal}Request"
        assert spec.request.model_json_schema()["title"] == f"{pascal}Request"


def test_a_data_model_of_no_action_cannot_make_a_request_model() -> None:
    from pydantic import BaseModel

    class Stray(BaseModel):
        email: str

    with pytest.raises(LookupError, match="data model of no action"):

        class StrayRequest(WriteRequest[Stray]):
            pass


def test_only_events_are_at_most_once() -> None:
    assert {a for a, spec in SPECS.items() if spec.at_most_once} == {Action.EVENT_CREATE}


@pytest.mark.parametrize("unknown", ["contact.merge", None, 42])
def test_an_unknown_action_is_refused_not_sent_elsewhere(unknown: Any) -> None:
    with pytest.raises(UnknownActionError, match="no ActionSpec"):
        spec_for(unknown)


def test_send_chunk_refuses_an_unknown_action() -> None:
    class Boom:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"SALESmanago was called: {name}")

    chunk = Chunk("contact.merge", None, [])  # type: ignore[arg-type]
    with pytest.raises(UnknownActionError):
        send_chunk(Boom(), chunk)  # type: ignore[arg-type]


def test_plan_chunks_refuses_an_unknown_action() -> None:
    class Command:
        action = "contact.merge"
        group_key = "g"

    with pytest.raises(UnknownActionError):
        plan_chunks([Work(0, None, Command(), None)], Settings())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("action", "result", "expected"),
    [
        (Action.CONTACT_UPSERT, {"contactId": "c-1"}, {"contactId": "c-1"}),
        (
            Action.CONTACT_DELETE,
            {"deleted": False, "already_absent": True},
            {"deleted": False, "already_absent": True},
        ),
        (Action.EVENT_CREATE, {"eventId": None, "batched": True}, {"eventId": None, "warnings": []}),
        (
            Action.PRODUCTS_UPSERT,
            {"productIds": ["p"], "warnings": ["w"], "ignored_fields": ["x"]},
            {"productIds": ["p"], "ignored_fields": ["x"], "warnings": ["w"]},
        ),
    ],
)
def test_the_reply_takes_the_models_fields_from_the_result(
    action: Action, result: dict[str, Any], expected: dict[str, Any]
) -> None:
    reply = spec_for(action).reply.from_result(action, "g", result)
    assert reply.model_dump() == {"status": "applied", "action": str(action), "group_key": "g", **expected}
