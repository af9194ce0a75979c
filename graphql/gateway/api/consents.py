"""Recording and revoking consent, by the survivor's care team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from events.consent import (
    Basis,
    Category,
    Directive,
    Effect,
    GrantConsent,
    OrgType,
    RevokeConsent,
)
from events.consent import Purpose as PurposeEnum
from events.envelope import Envelope
from gateway.api.base import (
    SOURCE,
    Info,
    consent_scope,
    fail,
    principal,
    require_member,
    sealing,
    survivor_uuid,
    validated,
)
from gateway.api.commands import (
    Accepted,
    IdempotencyKey,
    Wait,
    answer,
    check_wait,
    keyed,
    send_commands,
    write_commands,
)
from gateway.api.inputs import Shape, coded, input_type, plain
from gateway.auth import Role

for _vocabulary in (Effect, Basis, OrgType, Category):
    coded(_vocabulary)

DirectiveInput = input_type(
    Shape(
        Directive, "DirectiveInput",
        omit=frozenset({"recorded_by", "version", "subject_is_minor"}),  # Haven sets these
        optional=frozenset({"directive_id"}),  # given: the next version of that directive
        required=frozenset({"obtained"}),  # every new directive says how consent was obtained
        description="A consent directive: who may use which categories of the survivor's data, for which purposes, "
        "from when until when. Haven sets who recorded it, its version and whether the subject is a child.",
    )
)  # fmt: skip


@strawberry.type(description="One consent directive, at its latest version: who may use what, for what, until when.")
class ConsentDirective:
    id: strawberry.ID
    version: int
    grantee_org_id: str | None = strawberry.field(description="Exactly this organisation, or …")
    grantee_org_type: OrgType | None = strawberry.field(description="… every organisation of this type.")
    categories: list[Category]
    purposes: list[PurposeEnum]
    effect: Effect
    basis: Basis
    valid_from: datetime
    valid_until: datetime
    recorded_by: str
    revoked_at: datetime | None
    cross_border: list[str] = strawberry.field(description="Jurisdictions beyond the survivor's it reaches.")
    any_jurisdiction: bool

    @classmethod
    def of(cls, row: Any) -> ConsentDirective:
        d = Directive.model_validate(row["directive"])
        return cls(id=strawberry.ID(str(d.directive_id)), version=d.version, grantee_org_id=d.grantee.org_id,
                   grantee_org_type=d.grantee.org_type, categories=sorted(d.categories), purposes=sorted(d.purposes),
                   effect=d.effect, basis=d.basis, valid_from=d.valid_from, valid_until=d.valid_until,
                   recorded_by=d.recorded_by, revoked_at=row["revoked_at"], cross_border=sorted(d.cross_border),
                   any_jurisdiction=d.any_jurisdiction)  # fmt: skip


@strawberry.type
class ConsentQuery:
    """A survivor's directives, for the care team that records and revokes them."""

    @strawberry.field(
        description="The survivor's consent directives (latest version of each), for their care team: what to show "
        "the survivor, and what to revoke. The read is recorded in the access ledger (case_status)."
    )
    async def consents(self, info: Info, survivor_id: strawberry.ID) -> list[ConsentDirective]:
        principal(info, Role.INTAKE, Role.CASEWORKER)
        sid = survivor_uuid(survivor_id, "survivorId")
        await require_member(info, sid)
        rows = await info.context["pool"].fetch(
            "SELECT DISTINCT ON (directive_id) directive, revoked_at FROM gateway.consent_directives"
            " WHERE survivor_id = $1 ORDER BY directive_id, version DESC",
            sid,
        )
        consent_scope(info).shown[(sid, PurposeEnum.SERVICE_DELIVERY)].add(Category.CASE_STATUS)  # audited
        return sorted((ConsentDirective.of(r) for r in rows), key=lambda d: d.valid_from, reverse=True)


@strawberry.type
class ConsentMutation:
    """Grant and revoke."""

    @strawberry.mutation(
        description="Record consent as your organisation (a member of the survivor's care team). Give directiveId "
        "to record the next version of an existing directive; Haven sets recordedBy and the version. Give an "
        "idempotencyKey with a new directive so that sending it again after a lost answer records it once."
    )
    async def grant_consent(
        self,
        info: Info,
        survivor_id: strawberry.ID,
        directive: DirectiveInput,  # type: ignore[valid-type]
        wait: Wait = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Accepted:
        who = principal(info, Role.INTAKE, Role.CASEWORKER)
        check_wait(wait)
        sid = survivor_uuid(survivor_id, "survivorId")
        given = plain(directive)
        await require_member(info, sid)
        version, directive_id = 1, keyed(info, "directive", who, idempotency_key, str(sid))
        if "directive_id" in given:
            latest = await info.context["pool"].fetchval(
                "SELECT max(version) FROM gateway.consent_directives WHERE directive_id = $1 AND survivor_id = $2",
                survivor_uuid(given["directive_id"], "directive.directiveId"), sid,
            )  # fmt: skip
            if latest is None:
                raise fail("BAD_INPUT", "directiveId: no such directive for this survivor", field="directiveId")
            version, directive_id = latest + 1, given["directive_id"]
        given = await sealing(info, Directive, given, sid)
        fields = {**given, "directive_id": str(directive_id), "version": version, "recorded_by": who.org_id}
        command = validated(GrantConsent, {"survivor_id": sid, "directive": validated(Directive, fields)})
        return await answer(info, (await send_commands(info, command))[0], wait)

    @strawberry.mutation(description="Revoke at once: the very next query no longer sees what it covered.")
    async def revoke_consent(
        self, info: Info, survivor_id: strawberry.ID, directive_id: strawberry.ID, wait: Wait = None
    ) -> Accepted:
        who = principal(info, Role.INTAKE, Role.CASEWORKER)
        check_wait(wait)
        sid = survivor_uuid(survivor_id, "survivorId")
        await require_member(info, sid)
        command = validated(RevokeConsent, {"survivor_id": sid, "directive_id": directive_id,
                                            "revoked_by": who.org_id})  # fmt: skip
        envelope = Envelope.new(command, source=SOURCE)
        async with info.context["pool"].acquire() as conn, conn.transaction():
            # The "new enemy" rule: the read model learns of the revocation in the outbox's own transaction.
            await conn.execute(
                "UPDATE gateway.consent_directives SET revoked_at = coalesce(revoked_at, now())"
                " WHERE directive_id = $1 AND survivor_id = $2",
                command.directive_id, command.survivor_id,
            )  # fmt: skip
            await write_commands(conn, who, envelope)
        return await answer(info, envelope, wait)
