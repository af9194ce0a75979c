"""Referrals: inboxes and outcomes, what a referral would share, and the commands that move them."""

from __future__ import annotations

import base64
from enum import StrEnum
from typing import Any
from uuid import uuid4

import strawberry
from strawberry.scalars import JSON

from events.consent import (
    ConsentRecord,
    OrgType,
    Party,
)
from events.consent import Purpose as PurposeEnum
from events.needs import ReferralType
from events.referrals import (
    PARTNER_MOVES,
    SHARED_AT_MOST,
    CompleteReferral,
    RequestReferral,
    sharing,
)
from gateway.api.base import (
    Info,
    Purpose,
    consent_scope,
    fail,
    json_object,
    principal,
    require_member,
    sealing_note,
    survivor_uuid,
    validated,
)
from gateway.api.commands import Accepted, Wait, answer, check_wait, send_commands
from gateway.api.pathway import REFERRALS, Referral
from gateway.auth import Role


@strawberry.type
class ReferralPage:
    items: list[Referral]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class Sharing:
    shared: list[str]
    withheld: list[str]


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode()


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        seq = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("seq:"))
    except ValueError:
        seq = -1
    if not 0 <= seq < 2**63:
        raise fail("BAD_CURSOR", "after: not a cursor this API gave out", field="after")
    return seq


async def _page(info: Info, column: str, org: str, first: int, after: str | None) -> ReferralPage:
    if not 1 <= first <= 100:
        raise fail("BAD_INPUT", "first: between 1 and 100", field="first")
    rows = await info.context["pool"].fetch(
        f"{REFERRALS} WHERE r.{column} = $1 AND r.seq > $2 ORDER BY r.seq LIMIT $3",
        org, _after(after), first + 1,
    )  # fmt: skip
    items = rows[:first]
    return ReferralPage(items=[Referral.of(r) for r in items], end_cursor=_cursor(items[-1]["seq"]) if items else after,
                        has_next_page=len(rows) > first)  # fmt: skip


ReferralMove = StrEnum("ReferralMove", {name.upper(): name for name in PARTNER_MOVES})  # type: ignore[misc]  # an enum built from data: mypy cannot follow it
"""The moves a partner may ask for, from the contract (``events.referrals.PARTNER_MOVES``)."""
Move = strawberry.enum(ReferralMove)


@strawberry.type
class ReferralsQuery:
    """Referrals made and received."""

    @strawberry.field(description="Referrals addressed to my organisation, oldest first.")
    async def inbox(self, info: Info, first: int = 20, after: str | None = None) -> ReferralPage:
        who = principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        return await _page(info, "recipient_org", who.org_id, first, after)

    @strawberry.field(description="Referrals my organisation made, with their current state.")
    async def my_referrals(self, info: Info, first: int = 20, after: str | None = None) -> ReferralPage:
        who = principal(info)
        return await _page(info, "referrer_org", who.org_id, first, after)

    @strawberry.field(
        description="Before referring: what a referral of this type to this organisation would share, and what "
        "the survivor's consent withholds (the referral goes ahead either way; the recipient decides)."
    )
    async def referral_sharing(
        self, info: Info, survivor_id: strawberry.ID, recipient_org: str, referral_type: str,
        purpose: Purpose = PurposeEnum.SERVICE_DELIVERY,  # type: ignore[valid-type]
    ) -> Sharing:  # fmt: skip
        principal(info, Role.INTAKE, Role.CASEWORKER)
        sid = survivor_uuid(survivor_id, "survivorId")
        await require_member(info, sid)
        try:
            kind = ReferralType(referral_type)
        except ValueError:
            raise fail("BAD_INPUT", f"referralType: one of {', '.join(ReferralType)}", field="referralType") from None
        org_type = await info.context["pool"].fetchval(
            "SELECT org_type FROM gateway.organisations WHERE org_id = $1", recipient_org
        )
        if org_type is None:
            raise fail("BAD_INPUT", "recipientOrg: not in the directory", field="recipientOrg")
        scope = consent_scope(info)
        records: list[ConsentRecord] = await scope.records(sid)
        shared, withheld = sharing(records, Party(recipient_org, OrgType(org_type)), SHARED_AT_MOST[kind],
                                   PurposeEnum(purpose), scope.at)  # fmt: skip
        return Sharing(shared=sorted(shared), withheld=sorted(withheld))


@strawberry.type
class ReferralsMutation:
    """Refer, and move a referral on."""

    @strawberry.mutation(
        description="Refer a survivor in your care team. Consent decides what the referral shares, not whether it "
        "is made: see referralSharing first, and withheldCategories on the referral."
    )
    async def request_referral(self, info: Info, referral: JSON, wait: Wait = None) -> Accepted:
        who = principal(info, Role.INTAKE, Role.CASEWORKER)
        check_wait(wait)
        given = await sealing_note(info, json_object(referral))
        command: RequestReferral = validated(
            RequestReferral, {"referral_id": str(uuid4()), **given, "referrer_org": who.org_id}
        )
        await require_member(info, command.survivor_id)
        return await answer(info, (await send_commands(info, command))[0], wait)

    @strawberry.mutation(description="Move a referral on (accept, start, complete, cancel …).")
    async def move_referral(
        self, info: Info, referral_id: strawberry.ID, survivor_id: strawberry.ID, move: Move,  # type: ignore[valid-type]
        reason: str | None = None, note: str | None = None, wait: Wait = None,
    ) -> Accepted:  # fmt: skip
        who = principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        check_wait(wait)
        model = PARTNER_MOVES[ReferralMove(move).value]
        fields: dict[str, Any] = {"referral_id": referral_id, "survivor_id": survivor_id, "actor_org": who.org_id,
                                  "note": note}  # fmt: skip
        if reason is not None:
            fields["outcome" if model is CompleteReferral else "reason"] = reason
        return await answer(
            info, (await send_commands(info, validated(model, await sealing_note(info, fields))))[0], wait
        )
