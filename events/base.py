"""The base of every event payload, and the registry of event types, versions and upcasters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

JsonObject = dict[str, Any]
Upcaster = Callable[[JsonObject], JsonObject]


class EventData(BaseModel):
    """A frozen, versioned event payload. Subclasses that set ``event_type`` register themselves."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    topic: ClassVar[str]

    def subject(self) -> str:
        """The partition key: the survivor's pseudonymous id, unless the type keys by something else."""
        survivor = getattr(self, "survivor_id", None)
        if survivor is None:
            raise ValueError(f"{self.event_type} has no survivor_id: it must say what it is keyed by")
        return str(survivor)

    def extensions(self) -> dict[str, str]:
        """CloudEvents extension attributes, sent as ``ce_<name>`` headers: what a consumer may route on without
        decoding the payload (none, unless a type says)."""
        return {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            REGISTRY.add(cls)


class EventRegistry:
    """Event type name → its current model, plus upcasters from older versions."""

    def __init__(self) -> None:
        self._models: dict[str, type[EventData]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def add(self, model: type[EventData]) -> None:
        if model.event_type in self._models:
            raise ValueError(f"event type {model.event_type!r} is registered twice")
        self._models[model.event_type] = model

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function that lifts a payload from ``from_version`` to the next version."""

        def register(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return register

    def model(self, event_type: str) -> type[EventData] | None:
        return self._models.get(event_type)

    def types(self) -> dict[str, type[EventData]]:
        """Every registered type, including any a test or a plugin registered."""
        return dict(sorted(self._models.items()))

    def contract_types(self) -> dict[str, type[EventData]]:
        """The types the contract itself defines (modules of the ``events`` package)."""
        return {name: m for name, m in self.types().items() if m.__module__.split(".")[0] == "events"}

    def upcast(self, event_type: str, version: int, data: JsonObject) -> JsonObject:
        """Lift ``data`` from ``version`` to the registered model's version; raise LookupError if no path."""
        model = self._models[event_type]
        while version < model.version:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise LookupError(f"no upcaster for {event_type} v{version}")
            data, version = step(data), version + 1
        if version != model.version:
            raise LookupError(f"{event_type} v{version} is newer than this code (v{model.version})")
        return data


REGISTRY = EventRegistry()


def drop_plain_text(*fields: str) -> Upcaster:
    """An upcaster for a version that seals what the one before carried in clear: text that was never
    sealed cannot be sealed here (no key), so it is not carried forward; sealed values pass unchanged."""

    def upcast(data: JsonObject) -> JsonObject:
        return {k: v for k, v in data.items() if not (k in fields and isinstance(v, str))}

    return upcast
