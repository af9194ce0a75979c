"""Screening: the personal parts are sealed here, before they travel."""

from __future__ import annotations

from uuid import uuid4

import strawberry

from events.envelope import Envelope
from events.identification import ScreeningIntake, SealedProfile
from gateway.api.base import SOURCE, Info, principal, validated
from gateway.api.commands import Accepted, Wait, answer, check_wait, write_commands
from gateway.api.inputs import Shape, input_type, plain
from gateway.auth import Role

ScreeningInput = input_type(
    Shape(ScreeningIntake, "ScreeningInput", omit=frozenset({"screener_org"}),
          description="A screening, as the intake worker recorded it; the screening organisation is yours.")
)  # fmt: skip


@strawberry.type
class IntakeMutation:
    """Record a screening."""

    @strawberry.mutation(description="Record a screening; personal parts are sealed here, before they travel.")
    async def record_screening(self, info: Info, screening: ScreeningInput, wait: Wait = None) -> Accepted:  # type: ignore[valid-type]
        who = principal(info, Role.INTAKE)
        check_wait(wait)
        intake: ScreeningIntake = validated(ScreeningIntake, {**plain(screening), "screener_org": who.org_id})
        keyring = info.context["keyring"]
        # A retry after a lost answer (the same idempotency key) names the same survivor, with the same key: the
        # answer's subjectId is the survivor the screening identified, whichever attempt reached the service first.
        survivor_id = keyring.pseudonym("survivor", who.org_id, intake.idempotency_key)
        async with info.context["pool"].acquire() as conn, conn.transaction():
            key = await keyring.create(conn, survivor_id)
            sealed = SealedProfile.model_validate(key.seal_parts(intake.personal_parts()))
            envelope = Envelope.new(intake.to_command(survivor_id, uuid4(), sealed), source=SOURCE)
            await write_commands(conn, who, envelope)
        return await answer(info, envelope, wait)
