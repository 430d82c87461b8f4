"""The public contract: what producers send, and the normalized command the bridge executes.

data.py       the actions, the model of each action's ``data`` and their limits
routing.py    a group's field map: which fields it may route, and routing them
envelope.py   ``CommandEnvelope`` (the outer shape), ``build_command`` (where ``data`` is
              validated, once, after routing) and ``Command`` (what is executed)
requests.py   ``WriteRequest``: the HTTP API's envelope, ``data`` checked by its shape only
"""

from salesmanago_bridge.commands.data import (
    ACTION_OF_MODEL,
    DATA_MODELS,
    EVENT_LOCATION_MAX_LENGTH,
    EVENT_TYPES,
    ITEM_LISTS,
    LEGACY_EVENT_TYPES,
    Action,
    CommandData,
    ConsentDetail,
    ContactDeleteData,
    ContactState,
    ContactUpsertData,
    EventCreateData,
    EventType,
    ProductData,
)
from salesmanago_bridge.commands.envelope import (
    GROUP_KEY_PATTERN,
    Command,
    CommandEnvelope,
    CommandId,
    Describe,
    GroupKey,
    build_command,
)
from salesmanago_bridge.commands.requests import WriteRequest, action_of, documented_fields
from salesmanago_bridge.commands.routing import (
    FIELD_NAMES,
    PREFIXED_TARGETS,
    allowed_targets,
    is_valid_target,
    route_fields,
)

__all__ = [
    "ACTION_OF_MODEL",
    "DATA_MODELS",
    "EVENT_LOCATION_MAX_LENGTH",
    "EVENT_TYPES",
    "FIELD_NAMES",
    "GROUP_KEY_PATTERN",
    "ITEM_LISTS",
    "LEGACY_EVENT_TYPES",
    "PREFIXED_TARGETS",
    "Action",
    "Command",
    "CommandData",
    "CommandEnvelope",
    "CommandId",
    "ConsentDetail",
    "ContactDeleteData",
    "ContactState",
    "ContactUpsertData",
    "Describe",
    "EventCreateData",
    "EventType",
    "GroupKey",
    "ProductData",
    "WriteRequest",
    "action_of",
    "allowed_targets",
    "build_command",
    "documented_fields",
    "is_valid_target",
    "route_fields",
]
