"""The HTTP API's envelope: ``WriteRequest[<data model>]``, the body of every write route.

Powertools validates it (and documents it in docs/openapi.json). It checks the envelope whole but
``data`` only by its shape: the data model validates ``data`` once, after the group's field map has
routed it (``build_command``), and the map is the tenant's, known only once the request is let in.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Annotated, Any, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

from salesmanago_bridge.commands.data import ACTION_OF_MODEL, ITEM_LISTS, Action
from salesmanago_bridge.commands.envelope import GROUP_KEY_PATTERN

ROUTED_OBJECT = "Fields not listed here are routed by the group's `field_map`, else refused."
ROUTED_ITEMS = "Other fields go through the group's `field_map`; unmapped ones are ignored and listed."

DataT = TypeVar("DataT", bound=BaseModel)


def action_of(model: Any) -> Action:
    """The action whose ``data`` ``model`` validates.

    Raises:
        LookupError: no action has this data model (commands/data.py, DATA_MODELS).
    """
    try:
        return ACTION_OF_MODEL[model]
    except (KeyError, TypeError):
        raise LookupError(f"{model!r} is the data model of no action (DATA_MODELS)") from None


@cache
def documented_fields(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` as the API documents it, open to the fields a group's field map routes:
    ``ContactUpsertData`` → ``ContactUpsertFields``, with its docstring and what befalls other fields."""
    note = ROUTED_ITEMS if action_of(model) in ITEM_LISTS else ROUTED_OBJECT
    namespace = {
        "__doc__": f"{inspect.getdoc(model)} {note}",
        "__module__": model.__module__,
        "model_config": ConfigDict(extra="allow"),
    }
    return cast(type[BaseModel], type(model.__name__.removesuffix("Data") + "Fields", (model,), namespace))


class ShapeOnly:
    """``data`` validated by its shape only (an object; a non-empty list of objects for an item
    list) and documented as its model's ``…Fields``.

    Powertools validates the parsed body, a Python object: that takes the ``python_schema``. The
    JSON Schema (docs/openapi.json) is drawn from the ``json_schema``: the documented model.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        if isinstance(source, TypeVar):  # WriteRequest itself, before a data model is given
            return core_schema.any_schema()
        fields = documented_fields(source)
        shape: CoreSchema
        if action_of(source) in ITEM_LISTS:
            shape = core_schema.list_schema(core_schema.dict_schema(), min_length=1)
            documented = handler.generate_schema(Annotated[list[fields], Field(min_length=1)])  # type: ignore[valid-type]  # a class made at runtime
        else:
            shape = core_schema.dict_schema()
            documented = handler.generate_schema(fields)
        return core_schema.json_or_python_schema(json_schema=documented, python_schema=shape)


class WriteRequest(BaseModel, Generic[DataT]):
    """The body of a write. Each action's is a subclass named after it, beside its ActionSpec:
    ``class ContactUpsertRequest(WriteRequest[ContactUpsertData])``.

    ``data`` arrives as parsed (its shape checked), whatever its annotation tells mypy.
    """

    model_config = ConfigDict(extra="forbid")

    group_key: Annotated[
        str | None,
        Field(
            pattern=GROUP_KEY_PATTERN,
            description="The tenant. Optional when the API key is bound to exactly one group.",
        ),
    ] = None
    data: Annotated[DataT, ShapeOnly()]

    @classmethod
    def action(cls) -> Action:
        """The action of this request model: the one its data model belongs to."""
        return _action_of_request(cls)


@cache
def _action_of_request(request: type[WriteRequest[Any]]) -> Action:
    return action_of(request.model_fields["data"].annotation)
