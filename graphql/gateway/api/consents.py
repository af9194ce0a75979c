"""Recording and revoking consent, by the survivor's care team."""

from __future__ import annotations

from uuid import uuid4

import strawberry
from strawberry.scalars import JSON

from events.consent import (
    Directive,
    GrantConsent,
    RevokeConsent,
)
from events.envelope import Envelope
from gateway.api.base import (
    SET_BY_HAVEN,
    SOURCE,
    Info,
    fail,
    json_object,
    principal,
    require_member,
    sealed_text,
    survivor_uuid,
    validated,
)
from gateway.api.commands import Accepted, Wait, answer, check_wait, send_commands, write_commands
from gateway.auth import Role


@strawberry.type
class ConsentMutation:
    """Grant and revoke."""

    @strawberry.mutation(
        description="Record consent as your organisation (a member of the survivor's care team). Give directiveId "
        "to record the next version of an existing directive; Haven sets recordedBy and the version."
    )
    async def grant_consent(
        self, info: Info, survivor_id: strawberry.ID, directive: JSON, wait: Wait = None
    ) -> Accepted:
        who = principal(info, Role.INTAKE, Role.CASEWORKER)
        check_wait(wait)
        sid = survivor_uuid(survivor_id, "survivorId")
        given = json_object(directive)
        if set_by_haven := sorted(SET_BY_HAVEN & given.keys()):
            problems = [{"field": f, "message": "set by Haven, not by the caller"} for f in set_by_haven]
            raise fail("VALIDATION_FAILED", f"invalid input — {', '.join(set_by_haven)}: set by Haven",
                       problems=problems)  # fmt: skip
        if "obtained" not in given:
            problems = [
                {"field": "obtained", "message": "say how consent was obtained (method, language, interpreter)"}
            ]
            raise fail("VALIDATION_FAILED", "invalid input — obtained: required", problems=problems)
        await require_member(info, sid)
        version = 1
        if "directive_id" in given:
            latest = await info.context["pool"].fetchval(
                "SELECT max(version) FROM gateway.consent_directives WHERE directive_id = $1 AND survivor_id = $2",
                survivor_uuid(given["directive_id"], "directive.directive_id"), sid,
            )  # fmt: skip
            if latest is None:
                raise fail("BAD_INPUT", "directive_id: no such directive for this survivor", field="directive_id")
            version = latest + 1
        if given.get("justification") is not None:
            given = {**given, "justification": await sealed_text(info, sid, given["justification"], "justification")}
        fields = {"directive_id": str(uuid4()), **given, "version": version, "recorded_by": who.org_id}
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
