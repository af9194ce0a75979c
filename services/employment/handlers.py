"""Employment's handlers: enrolment starts the referral; the 6-month retention answer completes it."""

from __future__ import annotations

from events.employment import EmploymentOutcomeRecorded, Enrol, Enrolled, RecordEmploymentOutcome
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import SurvivorErased
from events.needs import HAVEN_PROVIDERS
from events.referrals import CompleteReferral
from services.kernel.consumer import UnitOfWork
from services.kernel.provider import ReferralFollower, referral_for, require_awaiting_answer

SOURCE = "haven/employment"
FOLLOWER = ReferralFollower(HAVEN_PROVIDERS["employment"], SOURCE)


async def enrol(command: Enrol, uow: UnitOfWork) -> None:
    referral = await referral_for(uow.conn, command.referral_id, command.actor_org, survivor_id=command.survivor_id)
    require_awaiting_answer(referral)
    inserted = await uow.conn.fetchval(
        "INSERT INTO enrolments (enrolment_id, referral_id, survivor_id, program_org, program_type)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
        command.enrolment_id, command.referral_id, referral["survivor_id"], command.actor_org, command.program_type,
    )  # fmt: skip
    if not inserted:
        raise DomainError("already_enrolled", "this referral or enrolment id is already enrolled", field="enrolment_id")
    enrolled = Enrolled(survivor_id=referral["survivor_id"], enrolment_id=command.enrolment_id,
                        program_org=command.actor_org, referral_id=command.referral_id,
                        program_type=command.program_type)  # fmt: skip
    await uow.emit(
        Envelope.new(enrolled, source=SOURCE),
        *FOLLOWER.taking_on(referral),
    )


def outcome_code(employed: bool, retained_6_months: bool) -> str:
    """The referral's outcome once the 6-month answer is in.

    >>> outcome_code(True, True)
    'employed_retained_6_months'
    """
    if retained_6_months:
        return "employed_retained_6_months"
    return "employed_not_retained" if employed else "not_employed"


async def record_outcome(command: RecordEmploymentOutcome, uow: UnitOfWork) -> None:
    row = await uow.conn.fetchrow("SELECT * FROM enrolments WHERE enrolment_id = $1 FOR UPDATE", command.enrolment_id)
    if row is None or row["program_org"] != command.actor_org:
        raise DomainError("unknown_enrolment", "no such enrolment in this program", field="enrolment_id")
    if command.retained_6_months and not command.retained_3_months:
        raise DomainError("retention_out_of_order", "retained at 6 months but not at 3", field="retained_3_months")
    if command.wage_band is not None and not command.employed:
        raise DomainError("wage_without_job", "a wage band needs employment", field="wage_band")
    await uow.conn.execute(
        "UPDATE enrolments SET employed = $2, wage_band = $3, retained_3_months = $4, retained_6_months = $5,"
        " updated_at = now() WHERE enrolment_id = $1",
        command.enrolment_id, command.employed, command.wage_band, command.retained_3_months,
        command.retained_6_months,
    )  # fmt: skip
    recorded = EmploymentOutcomeRecorded(
        survivor_id=row["survivor_id"], enrolment_id=command.enrolment_id, program_org=command.actor_org,
        employed=command.employed, wage_band=command.wage_band, retained_3_months=command.retained_3_months,
        retained_6_months=command.retained_6_months,
    )  # fmt: skip
    await uow.emit(Envelope.new(recorded, source=SOURCE))
    if command.retained_6_months is not None:
        referral = await referral_for(uow.conn, row["referral_id"], command.actor_org)
        outcome = outcome_code(command.employed, command.retained_6_months)
        await uow.emit(FOLLOWER.command(CompleteReferral, referral, outcome=outcome))


async def purge_survivor(event: SurvivorErased, uow: UnitOfWork) -> None:
    await uow.conn.execute("DELETE FROM enrolments WHERE survivor_id = $1", event.survivor_id)
