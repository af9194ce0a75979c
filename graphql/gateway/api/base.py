"""Shared by every part of the API: who is asking, refusals, input checks, the typed context."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NotRequired, Protocol, TypedDict
from uuid import UUID

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo
from strawberry.utils.str_converters import to_camel_case

from events.base import EventData
from events.care import NOT_IN_CARE_TEAM
from events.consent import (
    FREE_TEXT,
    Category,
)
from events.consent import Purpose as PurposeEnum
from events.referrals import (
    SHARED_AT_MOST,
)
from gateway.api.inputs import coded, sealed_fields
from gateway.audit import AuditWriter
from gateway.auth import Principal, Role
from gateway.care import is_member
from gateway.consent import ConsentScope
from graphql import GraphQLError
from services.kernel.crypto import DataKey, Keyring, SurvivorKeyMissing
from services.kernel.db import Pool


class Wakes(Protocol):
    """What waiting loops need of the gateway's NOTIFY listener (``gateway.app.Wakeup``)."""

    def armed(self, channel: str = ...) -> asyncio.Event: ...


class KeyCheck(Protocol):
    """What subscriptions need to re-check their key (``gateway.app.KeyWatch``)."""

    interval: float

    async def valid(self, token: str) -> bool: ...


class Context(TypedDict):
    """One request's (or one websocket connection's) context, as ``HavenGraphQL.get_context`` builds it."""

    request: Request | WebSocket
    principal: Principal | None
    token: str | None
    pool: Pool
    keyring: Keyring
    audit: AuditWriter
    wakeup: Wakes
    key_watch: KeyCheck
    care_grace: timedelta
    webhooks_allow_loopback: bool
    consent: ConsentScope | None
    keys: DataLoader[UUID, DataKey | None]
    records: DataLoader[UUID, list[Any]]
    referrals: DataLoader[UUID, Any]
    connection_params: NotRequired[dict[str, Any]]  # set by strawberry from a websocket's connection_init


Info = StrawberryInfo[Context, None]
"""The resolver's ``info``, its context typed."""


SOURCE = "haven/gateway"


Purpose = coded(PurposeEnum, "Why survivor data is used; consent names purposes, and every read records one.")


def fail(code: str, message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def principal(info: Info, *roles: Role) -> Principal:
    who: Principal | None = info.context["principal"]
    if who is None:
        raise fail("UNAUTHENTICATED", "send an API key: Authorization: Bearer <key>")
    if roles and who.role not in roles:
        raise fail("FORBIDDEN", f"the {who.role} role may not do this; it needs {' or '.join(roles)}")
    return who


def consent_scope(info: Info) -> ConsentScope:
    """The request's consent scope: there is one for every authenticated caller."""
    scope = info.context["consent"]
    if scope is None:
        raise fail("UNAUTHENTICATED", "send an API key: Authorization: Bearer <key>")
    return scope


def survivor_uuid(value: object, field: str) -> UUID:
    """A survivor or directive id from input; anything else is BAD_INPUT naming the field."""
    try:
        return UUID(str(value))
    except ValueError:
        raise fail("BAD_INPUT", f"{field}: not an id this API gave out", field=field) from None


def not_in_care_team(who: Principal) -> GraphQLError:
    """The one answer for a survivor that does not exist and for one whose care team the caller is not in."""
    return fail(
        "FORBIDDEN",
        f"{who.org_id} is not in the care team of a survivor with this id",
        reason=NOT_IN_CARE_TEAM,
    )


async def require_member(info: Info, survivor_id: UUID) -> Principal:
    """The caller, once shown to be in the survivor's care team (the owning service checks again)."""
    who = principal(info)
    if not await is_member(info.context["pool"], survivor_id, who.org_id, info.context["care_grace"]):
        raise not_in_care_team(who)
    return who


HEALTH_REFERRALS = frozenset(t for t, shared in SHARED_AT_MOST.items() if Category.HEALTH in shared)
"""Referral types whose very name says something about the survivor's health."""


SEALED_AS: dict[str, Category] = {"clinical_detail": Category.HEALTH}
"""Sealed fields whose text belongs to a category of its own; any other free text is FREE_TEXT."""


async def sealed_text(info: Info, survivor_id: UUID, text: object, field: str) -> dict[str, Any]:
    """Text a partner typed, sealed with the survivor's key before it travels."""
    if not isinstance(text, str) or not 1 <= len(text) <= 500:
        problems = [{"field": camel(field), "message": "text of 1 to 500 characters"}]
        raise fail("VALIDATION_FAILED", f"invalid input — {camel(field)}: text of 1 to 500 characters",
                   problems=problems)  # fmt: skip
    async with info.context["pool"].acquire() as conn:
        try:
            key: DataKey = await info.context["keyring"].get(conn, survivor_id)
        except SurvivorKeyMissing:
            raise fail("BAD_INPUT", f"{camel(field)}: no text can be recorded about this survivor",
                       field=camel(field)) from None  # fmt: skip
    return key.seal(SEALED_AS.get(field, FREE_TEXT), text.encode()).model_dump()


async def sealing(
    info: Info, model: type[BaseModel], fields: dict[str, Any], survivor_id: UUID | None = None
) -> dict[str, Any]:
    """``fields`` with each of ``model``'s sealed fields, given as text, sealed (the contract takes only that)."""
    sealed = {}
    for name in sealed_fields(model):
        if fields.get(name) is not None:
            sid = survivor_id or survivor_uuid(fields.get("survivor_id"), "survivorId")
            sealed[name] = await sealed_text(info, sid, fields[name], name)
    return {**fields, **sealed}


def camel(path: str) -> str:
    """A contract field path as the API spells it: ``directive.valid_until`` -> ``directive.validUntil``."""
    return ".".join(to_camel_case(part) for part in path.split("."))


def validated(model: type[EventData] | type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate input with the contract's model; a failure names each field and nothing is sent."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [{"field": camel(".".join(str(p) for p in e["loc"])) or "(input)", "message": e["msg"]}
                    for e in exc.errors(include_url=False, include_input=False)]  # fmt: skip
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        raise fail("VALIDATION_FAILED", f"invalid input — {summary}", problems=problems) from None
