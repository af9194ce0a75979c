"""Health's handlers: engagement in care (detail sealed under the health category), discharge."""

from __future__ import annotations

from events.consent import Category
from events.envelope import Envelope
from events.errors import DomainError
from events.health import DischargeFromCare, EngagementChanged, RecordEngagement
from events.identification import SurvivorErased
from events.needs import HAVEN_PROVIDERS
from events.referrals import CompleteReferral
from services.kernel.consumer import UnitOfWork
from services.kernel.crypto import Keyring, SealBroken, SurvivorKeyMissing
from services.kernel.provider import ReferralFollower, referral_for

SOURCE = "haven/health"
FOLLOWER = ReferralFollower(HAVEN_PROVIDERS["health"], SOURCE)


async def record_engagement(command: RecordEngagement, uow: UnitOfWork, *, keyring: Keyring) -> None:
    """Record engagement; the first engagement accepts and starts the referral."""
    referral = await referral_for(uow.conn, command.referral_id, command.actor_org, survivor_id=command.survivor_id)
    if command.clinical_detail is not None:
        try:
            key = await keyring.get(uow.conn, referral["survivor_id"])
            key.open(Category.HEALTH, command.clinical_detail)  # sealed for this survivor and for health, or refused
        except (SurvivorKeyMissing, SealBroken) as exc:
            raise DomainError("clinical_detail_unsealed", str(exc), field="clinical_detail") from None
    await uow.conn.execute(
        """
        INSERT INTO engagements (referral_id, survivor_id, provider_org, service, engaged, clinical_detail)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (referral_id) DO UPDATE SET engaged = $5, service = $4,
            clinical_detail = coalesce($6, engagements.clinical_detail), updated_at = now()
        """,
        command.referral_id, referral["survivor_id"], command.actor_org, command.service, command.engaged,
        command.clinical_detail.model_dump() if command.clinical_detail else None,
    )  # fmt: skip
    changed = EngagementChanged(
        survivor_id=referral["survivor_id"], provider_org=command.actor_org, referral_id=command.referral_id,
        service=command.service, engaged=command.engaged, clinical_detail=command.clinical_detail,
    )  # fmt: skip
    await uow.emit(Envelope.new(changed, source=SOURCE))
    if command.engaged and referral["status"] in ("requested", "received"):
        await uow.emit(*FOLLOWER.taking_on(referral))


async def discharge(command: DischargeFromCare, uow: UnitOfWork) -> None:
    """End care with an outcome, which completes the referral for the referrer to see."""
    referral = await referral_for(uow.conn, command.referral_id, command.actor_org)
    updated = await uow.conn.fetchval(
        "UPDATE engagements SET discharged_with = $2, engaged = false, updated_at = now()"
        " WHERE referral_id = $1 AND discharged_with IS NULL RETURNING true",
        command.referral_id,
        command.outcome,
    )
    if not updated:
        raise DomainError("not_in_care", "no engagement in care to discharge", field="referral_id")
    await uow.emit(FOLLOWER.command(CompleteReferral, referral, outcome=command.outcome))


async def purge_survivor(event: SurvivorErased, uow: UnitOfWork) -> None:
    await uow.conn.execute("DELETE FROM engagements WHERE survivor_id = $1", event.survivor_id)
