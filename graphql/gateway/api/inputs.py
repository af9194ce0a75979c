"""GraphQL input types and enums generated from the contract's pydantic models.

The contract stays the single validator: an input arrives typed (so GraphiQL documents and completes it, and
clients can generate code from the SDL), is turned back into the contract's field names with :func:`plain`, and
is validated by the contract's own model. A field added to the contract appears in the schema with nothing
written here; the committed SDL (``graphql/schema.graphql``) and its staleness test show the change.

Mapped as a partner expects: ``snake_case`` fields become ``camelCase``; a ``StrEnum`` becomes a GraphQL enum
(its member names, ``SERVICE_DELIVERY``); sets and tuples become lists; a ``dict[Enum, int]`` becomes a list of
``{key, count}`` entries; a :class:`~events.types.Sealed` field becomes plain text, which the gateway seals with
the survivor's key before anything travels; an id becomes ``ID``.
"""

from __future__ import annotations

import dataclasses
import re
import types
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

import strawberry
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo
from strawberry.types.enum import has_enum_definition
from strawberry.types.unset import UNSET
from strawberry.utils.str_converters import to_camel_case

from events.types import Sealed

SEALED_TEXT = "Plain text, up to 500 characters: the gateway seals it with the survivor's key before it travels."


def coded(enum: type[Enum], description: str | None = None) -> Any:
    """The GraphQL enum of a contract vocabulary, made once however many types use it."""
    if not has_enum_definition(enum):
        doc = description or (enum.__doc__ or "").strip().split("\n\n")[0] or None
        strawberry.enum(enum, description=doc)
    return enum


def snake(name: str) -> str:
    """``RecordEmploymentOutcome`` -> ``record_employment_outcome``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclasses.dataclass(frozen=True)
class Shape:
    """How one contract model is offered as input: what Haven sets itself, and what the input changes."""

    model: type[BaseModel]
    name: str
    omit: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    description: str | None = None

    def fields(self) -> dict[str, FieldInfo]:
        return {name: f for name, f in self.model.model_fields.items() if name not in self.omit}


_MADE: dict[str, Any] = {}


def _strip(annotation: Any) -> tuple[Any, bool]:
    """The type inside ``Annotated[...]`` and ``X | None``, and whether None was allowed."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        inner, _ = _strip(members[0] if len(members) == 1 else annotation)
        return inner, True
    return annotation, False


def _graphql(annotation: Any, where: str) -> tuple[Any, str | None]:
    """The GraphQL-side type of a contract annotation, and (for a map) the name of its entry's key field."""
    kind, _ = _strip(annotation)
    origin = get_origin(kind)
    if origin in (list, tuple, set, frozenset):
        item = get_args(kind)[0]
        return list[_graphql(item, where)[0]], None  # type: ignore[misc]
    if origin is dict:
        key, value = get_args(kind)
        key_name = snake(key.__name__)
        entry = _made(f"{key.__name__}Count", {key_name: coded(key), "count": _graphql(value, where)[0]},
                      f"How many for one {key_name}.")  # fmt: skip
        return list[entry], key_name  # type: ignore[valid-type]
    if isinstance(kind, type):
        if issubclass(kind, Sealed):
            return str, None
        if issubclass(kind, Enum):
            return coded(kind), None
        if issubclass(kind, BaseModel):
            return input_type(Shape(kind, f"{kind.__name__}Input")), None
        if issubclass(kind, UUID):
            return strawberry.ID, None
        if kind is AwareDatetime or issubclass(kind, datetime):
            return datetime, None
        if kind in (str, int, bool, float, date):
            return kind, None
    raise TypeError(f"{where}: no GraphQL input for {annotation!r}")


def _made(name: str, annotations: dict[str, Any], description: str | None) -> Any:
    if name not in _MADE:
        namespace = {"__annotations__": annotations, "__module__": __name__, "__doc__": description}
        _MADE[name] = strawberry.input(type(name, (), namespace), name=name, description=description)
    return _MADE[name]


def input_type(shape: Shape) -> Any:
    """The input type of ``shape``, made once."""
    if shape.name in _MADE:
        return _MADE[shape.name]
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": __name__}
    maps: dict[str, str] = {}
    # Required fields first: a dataclass puts no defaulted field before one without a default.
    fields = sorted(shape.fields().items(), key=lambda f: not _required(shape, *f))
    for name, info in fields:
        kind, map_key = _graphql(info.annotation, f"{shape.model.__name__}.{name}")
        if map_key:
            maps[name] = map_key
        described = SEALED_TEXT if _strip(info.annotation)[0] is Sealed else info.description
        if _required(shape, name, info):
            annotations[name] = kind
            namespace[name] = strawberry.field(description=described)
        else:
            annotations[name] = kind | None
            namespace[name] = strawberry.field(default=UNSET, description=described)
    namespace["__annotations__"] = annotations
    doc = shape.description or (shape.model.__doc__ or "").strip().split("\n\n")[0] or None
    made = strawberry.input(type(shape.name, (), namespace), name=shape.name, description=doc)
    setattr(made, "_haven_maps", maps)  # noqa: B010  # read back by plain()
    _MADE[shape.name] = made
    return made


def _required(shape: Shape, name: str, info: FieldInfo) -> bool:
    if name in shape.required:
        return True
    return info.is_required() and name not in shape.optional


def one_of(name: str, members: dict[str, Any], description: str) -> Any:
    """A ``@oneOf`` input: exactly one of ``members`` (each an input type) is given."""
    namespace = {"__annotations__": {k: v | None for k, v in members.items()}, "__module__": __name__,
                 **{k: strawberry.field(default=UNSET) for k in members}}  # fmt: skip
    return strawberry.input(type(name, (), namespace), name=name, description=description, one_of=True)


def chosen(value: Any) -> tuple[str, Any]:
    """The one member given in a ``@oneOf`` input."""
    for f in dataclasses.fields(value):
        member = getattr(value, f.name)
        if member is not UNSET and member is not None:
            return f.name, member
    raise ValueError("a oneOf input with no member")  # GraphQL validation makes this unreachable


def plain(value: Any) -> Any:
    """An input as the contract spells it: field names as they are, unset fields left out, maps as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # an input object
        maps: dict[str, str] = getattr(type(value), "_haven_maps", {})
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is UNSET:
                continue
            out[f.name] = plain(item)
            if f.name in maps and isinstance(out[f.name], list):
                out[f.name] = {entry[maps[f.name]]: entry["count"] for entry in out[f.name]}
        return out
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@cache
def sealed_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` that travel sealed (the input takes them as text)."""
    return tuple(name for name, f in model.model_fields.items() if _strip(f.annotation)[0] is Sealed)


def variables(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Contract data (field names and enum values as the contract spells them) as GraphQL variables for the input
    generated from ``model``: what :func:`plain` undoes. For Python clients and tests.

    >>> from events.consent import HowObtained
    >>> variables(HowObtained, {"method": "verbal_witnessed", "language": "tl", "form_reference": "F-1"})
    {'method': 'VERBAL_WITNESSED', 'language': 'tl', 'formReference': 'F-1'}
    """
    fields = model.model_fields
    return {to_camel_case(name): _variable(fields[name].annotation, value) for name, value in data.items()}


def _variable(annotation: Any, value: Any) -> Any:
    kind, _ = _strip(annotation)
    origin = get_origin(kind)
    if value is None:
        return None
    if origin in (list, tuple, set, frozenset):
        return [_variable(get_args(kind)[0], v) for v in value]
    if origin is dict:
        key, inner = get_args(kind)
        return [{to_camel_case(snake(key.__name__)): _variable(key, k), "count": _variable(inner, v)}
                for k, v in value.items()]  # fmt: skip
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value).name
    if isinstance(kind, type) and issubclass(kind, BaseModel) and not issubclass(kind, Sealed):
        return variables(kind, value)
    if isinstance(value, date | datetime | UUID):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    return value
