"""Referrals: inboxes and outcomes, what a referral would share, and the commands that move them."""

from __future__ import annotations

import base64
from typing import Annotated

import strawberry
from strawberry import relay

from events.consent import (
    Category,
    ConsentRecord,
    OrgType,
    Party,
    crosses_border,
)
from events.consent import Purpose as PurposeEnum
from events.needs import ReferralType
from events.referrals import (
    PARTNER_MOVES,
    SHARED_AT_MOST,
    RequestReferral,
    sharing,
)
from gateway.api.base import (
    Info,
    Purpose,
    consent_scope,
    fail,
    principal,
    require_member,
    sealing,
    survivor_uuid,
    validated,
)
from gateway.api.commands import Accepted, IdempotencyKey, Wait, answer, check_wait, keyed, send_commands
from gateway.api.inputs import Shape, chosen, input_type, one_of, plain
from gateway.api.pathway import REFERRALS, BorderCrossed, Referral
from gateway.auth import Role

ReferralConnection = relay.Connection[Referral]  # type: ignore[type-var]  # a Referral is found by its own id, not a Node id
"""Referrals a page at a time (Relay connections: edges, node, pageInfo; first/after or last/before)."""


@strawberry.type
class Sharing:
    shared: list[Category]
    withheld: list[Category]
    border: BorderCrossed | None = strawberry.field(
        description="The border the referral would cross. Across a border the survivor's consent decides whether "
        "the referral is made, not only what it shares: with nothing shared it is refused (border_not_consented)."
    )


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode()


def _seq(cursor: str | None, field: str, default: int) -> int:
    if cursor is None:
        return default
    try:
        seq = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("seq:"))
    except ValueError:
        seq = -1
    if not 0 <= seq < 2**63:
        raise fail("BAD_CURSOR", f"{field}: not a cursor this API gave out", field=field)
    return seq


async def _page(
    info: Info, column: str, org: str, first: int | None, after: str | None, last: int | None, before: str | None
) -> relay.Connection[Referral]:  # type: ignore[type-var]
    """One page of the organisation's referrals, oldest first: ``first`` after a cursor, or ``last`` before one."""
    if first is not None and last is not None:
        raise fail("BAD_INPUT", "first or last, not both", field="last")
    size, field = (last, "last") if last is not None else (first or 20, "first")
    if not 1 <= size <= 100:
        raise fail("BAD_INPUT", f"{field}: between 1 and 100", field=field)
    lo, hi = _seq(after, "after", 0), _seq(before, "before", 2**63 - 1)
    backwards = last is not None
    rows = await info.context["pool"].fetch(
        f"{REFERRALS} WHERE r.{column} = $1 AND r.seq > $2 AND r.seq < $3"
        f" ORDER BY r.seq {'DESC' if backwards else 'ASC'} LIMIT $4",
        org, lo, hi, size + 1,
    )  # fmt: skip
    more = len(rows) > size
    rows = sorted(rows[:size], key=lambda r: r["seq"])
    edges = [relay.Edge(cursor=_cursor(r["seq"]), node=Referral.of(r)) for r in rows]  # type: ignore[type-var]
    return relay.Connection(  # type: ignore[type-var]
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=more and not backwards, has_previous_page=more and backwards,
            start_cursor=edges[0].cursor if edges else None, end_cursor=edges[-1].cursor if edges else None,
        ),
    )  # fmt: skip


Move = one_of(
    "ReferralMoveInput",
    {name: input_type(Shape(model, f"{model.__name__}Input", omit=frozenset({"referral_id", "survivor_id",
                                                                             "actor_org"})))
     for name, model in PARTNER_MOVES.items()},
    "One move, with what it needs (a rejection its coded reason, a completion its outcome); from the contract's "
    "referral commands (events.referrals.PARTNER_MOVES).",
)  # fmt: skip

ReferralInput = input_type(
    Shape(RequestReferral, "ReferralInput", omit=frozenset({"referral_id", "referrer_org"}),
          description="A referral of a survivor in your care team; the referrer is your organisation.")
)  # fmt: skip

Page = Annotated[int | None, strawberry.argument(description="At most 100; 20 when neither first nor last is given.")]


@strawberry.type
class ReferralsQuery:
    """Referrals made and received."""

    @strawberry.field(description="Referrals addressed to my organisation, oldest first.")
    async def inbox(
        self, info: Info, first: Page = None, after: str | None = None, last: Page = None, before: str | None = None
    ) -> ReferralConnection:
        who = principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        return await _page(info, "recipient_org", who.org_id, first, after, last, before)

    @strawberry.field(description="Referrals my organisation made, with their current state.")
    async def my_referrals(
        self, info: Info, first: Page = None, after: str | None = None, last: Page = None, before: str | None = None
    ) -> ReferralConnection:
        who = principal(info)
        return await _page(info, "referrer_org", who.org_id, first, after, last, before)

    @strawberry.field(
        description="Before referring: what a referral of this type to this organisation would share, and what "
        "the survivor's consent withholds (the referral goes ahead either way; the recipient decides)."
    )
    async def referral_sharing(
        self, info: Info, survivor_id: strawberry.ID, recipient_org: str, referral_type: ReferralType,
        purpose: Purpose = PurposeEnum.SERVICE_DELIVERY,
    ) -> Sharing:  # fmt: skip
        principal(info, Role.INTAKE, Role.CASEWORKER)
        sid = survivor_uuid(survivor_id, "survivorId")
        await require_member(info, sid)
        org = await info.context["pool"].fetchrow(
            "SELECT org_type, profile->'jurisdictions' AS jurisdictions FROM gateway.organisations WHERE org_id = $1",
            recipient_org,
        )
        if org is None:
            raise fail("BAD_INPUT", "recipientOrg: not in the directory", field="recipientOrg")
        scope = consent_scope(info)
        records: list[ConsentRecord] = await scope.records(sid)
        there, home = frozenset(org["jurisdictions"] or ()), scope.home(sid)
        shared, withheld = sharing(records, Party(recipient_org, OrgType(org["org_type"]), there),
                                   SHARED_AT_MOST[referral_type], PurposeEnum(purpose), scope.at, home)  # fmt: skip
        border = BorderCrossed.of({"home": home, "recipient": there}) if crosses_border(home, there) else None
        return Sharing(shared=sorted(shared), withheld=sorted(withheld), border=border)  # Category members


@strawberry.type
class ReferralsMutation:
    """Refer, and move a referral on."""

    @strawberry.mutation(
        description="Refer a survivor in your care team. Consent decides what the referral shares, not whether it "
        "is made: see referralSharing first, and withheldCategories on the referral. Give an idempotencyKey so that "
        "sending it again after a lost answer makes one referral."
    )
    async def request_referral(
        self, info: Info, referral: ReferralInput, wait: Wait = None, idempotency_key: IdempotencyKey = None,  # type: ignore[valid-type]
    ) -> Accepted:  # fmt: skip
        who = principal(info, Role.INTAKE, Role.CASEWORKER)
        check_wait(wait)
        given = plain(referral)
        await require_member(info, survivor_uuid(given["survivor_id"], "referral.survivorId"))
        fields = {
            "referral_id": str(keyed(info, "referral", who, idempotency_key)),
            **await sealing(info, RequestReferral, given),
            "referrer_org": who.org_id,
        }
        return await answer(info, (await send_commands(info, validated(RequestReferral, fields)))[0], wait)

    @strawberry.mutation(description="Move a referral on (accept, start, complete, cancel …).")
    async def move_referral(
        self, info: Info, referral_id: strawberry.ID, survivor_id: strawberry.ID, move: Move,  # type: ignore[valid-type]
        wait: Wait = None,
    ) -> Accepted:  # fmt: skip
        who = principal(info, Role.CASEWORKER, Role.ORG_ADMIN)
        check_wait(wait)
        name, given = chosen(move)
        model = PARTNER_MOVES[name]
        sid = survivor_uuid(survivor_id, "survivorId")
        fields = {**plain(given), "referral_id": referral_id, "survivor_id": sid, "actor_org": who.org_id}
        command = validated(model, await sealing(info, model, fields, sid))
        return await answer(info, (await send_commands(info, command))[0], wait)
