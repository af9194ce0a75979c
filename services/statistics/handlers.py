"""Statistics: keep each survivor's sealed coded facts, and release de-identified tables to oversight bodies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from events.consent import Category, ConsentGranted, ConsentRevoked, OrgType, Purpose, decide
from events.directory import OrganisationRegistered
from events.employment import EmploymentOutcomeRecorded, EnrolmentEvent
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import (
    AgeBand,
    Gender,
    NeedsAssessed,
    Sector,
    Statistics,
    SurvivorErased,
    SurvivorIdentified,
)
from events.needs import ReferralType
from events.referrals import EVENT_STATUS, ReferralEscalated, ReferralEvent, ReferralRequested, ReferralStatus
from events.shelter import PlacementCheckedIn
from events.statistics import (
    STATISTICS_PARTY,
    THRESHOLD,
    AcceptanceTime,
    Cell,
    Dimension,
    EmploymentStage,
    Escalation,
    ExploitationType,
    Needed,
    PlacementTime,
    ReferralOutcome,
    ReleaseStatistics,
    StatisticsReleased,
    dates,
    months,
)
from events.types import Sealed
from services.kernel import consent_copy
from services.kernel.consumer import UnitOfWork
from services.kernel.crypto import Keyring, open_or_none
from services.statistics.disclosure import Key, Published, Table, protect

SOURCE = "haven/statistics"
Clock = Callable[[], datetime]
UNKNOWN, OTHER = "unknown", "other"

FIXED: dict[str, list[str]] = {
    Dimension.AGE_BAND.value: [b.value for b in AgeBand],
    Dimension.GENDER.value: [g.value for g in Gender],
    Dimension.EXPLOITATION.value: [e.value for e in ExploitationType],
    Dimension.SECTOR.value: [*(s.value for s in Sector), UNKNOWN],
    Dimension.REFERRAL_TYPE.value: [*(t.value for t in ReferralType), ReferralOutcome.NONE.value],
    Dimension.REFERRAL_OUTCOME.value: [o.value for o in ReferralOutcome],
    Dimension.EMPLOYMENT.value: [e.value for e in EmploymentStage],
    Dimension.TIME_TO_ACCEPTANCE.value: [t.value for t in AcceptanceTime],
    Dimension.TIME_TO_PLACEMENT.value: [t.value for t in PlacementTime],
    Dimension.ESCALATION.value: [e.value for e in Escalation],
    Dimension.NEED.value: [n.value for n in Needed],
}
"""Closed vocabularies: every value is a row of the table, counted or not. Nationality and jurisdiction are open:
a value with fewer than 11 survivors in the period is counted as ``other`` (so a row's mere presence says nothing
of a rare nationality)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


async def note_identified(envelope: Envelope, uow: UnitOfWork) -> None:
    event = envelope.data
    assert isinstance(event, SurvivorIdentified)
    sealed = event.profile.statistics
    await uow.conn.execute(
        "INSERT INTO survivors (survivor_id, identified_at, screener_org, statistics) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (survivor_id) DO UPDATE SET statistics = excluded.statistics",
        event.survivor_id, envelope.time, event.screener_org, sealed.model_dump(mode="json") if sealed else None,
    )  # fmt: skip


async def note_organisation(event: OrganisationRegistered, uow: UnitOfWork) -> None:
    org = event.organisation
    await uow.conn.execute(
        "INSERT INTO organisations (org_id, org_type, jurisdictions) VALUES ($1, $2, $3) ON CONFLICT (org_id)"
        " DO UPDATE SET org_type = excluded.org_type, jurisdictions = excluded.jurisdictions",
        org.org_id, org.org_type, sorted(org.jurisdictions),
    )  # fmt: skip


async def note_consent(event: ConsentGranted, uow: UnitOfWork) -> None:
    await consent_copy.save(uow.conn, event.survivor_id, event.directive)


async def note_revocation(event: ConsentRevoked, uow: UnitOfWork) -> None:
    await consent_copy.revoke(uow.conn, event.directive_id, event.revoked_at)


async def note_referral(envelope: Envelope, uow: UnitOfWork) -> None:
    """A survivor's first referral, when it was asked for and accepted, and where it stands (later referrals are not
    counted: one row per survivor)."""
    event = envelope.data
    assert isinstance(event, ReferralEvent)
    if isinstance(event, ReferralRequested):
        await uow.conn.execute(
            "INSERT INTO first_referrals (survivor_id, referral_id, referral_type, requested_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            event.survivor_id, event.referral_id, event.referral_type, envelope.time,
        )  # fmt: skip
        await uow.conn.execute("INSERT INTO referred_to (survivor_id, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               event.survivor_id, event.recipient_org)  # fmt: skip
        return
    status = EVENT_STATUS[type(event)]
    await uow.conn.execute(
        "UPDATE first_referrals SET outcome = $2,"
        " accepted_at = CASE WHEN $3 THEN coalesce(accepted_at, $4) ELSE accepted_at END WHERE referral_id = $1",
        event.referral_id, ReferralOutcome.of(status), status is ReferralStatus.ACCEPTED, envelope.time,
    )  # fmt: skip


async def note_escalation(event: ReferralEscalated, uow: UnitOfWork) -> None:
    """The first referral went unanswered past its deadline (later referrals' escalations are not counted)."""
    await uow.conn.execute(
        "UPDATE first_referrals SET escalated = true, rerouted = rerouted OR $2 WHERE referral_id = $1",
        event.referral_id, event.rerouted_to is not None,
    )  # fmt: skip


async def note_placement(envelope: Envelope, uow: UnitOfWork) -> None:
    """The survivor's first night in a shelter bed (a later stay does not move it)."""
    event = envelope.data
    assert isinstance(event, PlacementCheckedIn)
    await uow.conn.execute(
        "INSERT INTO placements (survivor_id, checked_in_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        event.survivor_id, envelope.time,
    )  # fmt: skip


async def note_needs(event: NeedsAssessed, uow: UnitOfWork) -> None:
    """The latest assessment's needs replace the earlier ones."""
    await uow.conn.execute("DELETE FROM needs WHERE survivor_id = $1", event.survivor_id)
    await uow.conn.executemany("INSERT INTO needs (survivor_id, referral_type) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               [(event.survivor_id, n.referral_type) for n in event.needs])  # fmt: skip


STAGES = list(EmploymentStage)


async def note_employment(event: EnrolmentEvent, uow: UnitOfWork) -> None:
    """The furthest stage reached: enrolled; employed; still employed at 3, at 6 months."""
    stage = EmploymentStage.ENROLLED
    if isinstance(event, EmploymentOutcomeRecorded):
        stage = (EmploymentStage.RETAINED_6_MONTHS if event.retained_6_months else
                 EmploymentStage.RETAINED_3_MONTHS if event.retained_3_months else
                 EmploymentStage.EMPLOYED if event.employed else EmploymentStage.ENROLLED)  # fmt: skip
    await uow.conn.execute(
        "INSERT INTO employment (survivor_id, stage) VALUES ($1, $2)"
        " ON CONFLICT (survivor_id) DO UPDATE SET stage = greatest(employment.stage, excluded.stage)",
        event.survivor_id, STAGES.index(stage),
    )  # fmt: skip


async def purge_survivor(event: SurvivorErased, uow: UnitOfWork) -> None:
    """Erased: gone from every future release (released tables hold no ids, only counts)."""
    await uow.conn.execute("DELETE FROM survivors WHERE survivor_id = $1", event.survivor_id)
    await uow.conn.execute("DELETE FROM first_referrals WHERE survivor_id = $1", event.survivor_id)
    for table in ("employment", "placements", "needs", "referred_to"):
        await uow.conn.execute(f"DELETE FROM {table} WHERE survivor_id = $1", event.survivor_id)
    await consent_copy.purge(uow.conn, event.survivor_id)


async def release(command: ReleaseStatistics, uow: UnitOfWork, *, keyring: Keyring, clock: Clock = utcnow) -> None:
    """Count the consenting survivors identified in the period (in an organisation's own release, those referred to
    it), suppress what must be, record and publish."""
    conn, now = uow.conn, clock()
    if await conn.fetchval("SELECT 1 FROM releases WHERE release_id = $1", command.release_id):
        return  # sent again: released once
    await _may_release(conn, command)
    period = months(command.period)
    rows = await _counted(uow, keyring, dates(command.period), now, command)
    dims = [_dimension(d, command) for d in command.dimensions]
    vocabulary = {d: FIXED.get(d.partition(":")[0]) or _open_values(rows, d) for d in dims}
    for row in rows:
        for d in dims:
            if row[d] not in vocabulary[d]:
                row[d] = OTHER
    table = Table.of(dims, vocabulary, rows)
    published = protect(table, period, await _earlier(conn, command.organisation))
    await conn.execute(
        "INSERT INTO releases (release_id, requested_by, dimensions, period, period_start, period_end, vocabulary,"
        " shown, contributors, released_at, organisation, need)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        command.release_id, command.requested_by, dims, command.period, period[0], period[1], vocabulary,
        [[sorted(k), v] for k, v in published.shown.items()], len(rows), now, command.organisation, command.need,
    )  # fmt: skip
    cells = tuple(Cell(values={d.partition(":")[0]: v for d, v in k}, count=published.shown.get(k))
                  for k in sorted(table.counts, key=_order))  # fmt: skip
    await uow.emit(Envelope.new(StatisticsReleased(
        release_id=command.release_id, requested_by=command.requested_by, dimensions=command.dimensions,
        period=command.period, need=command.need, organisation=command.organisation, cells=cells, released_at=now,
    ), source=SOURCE))  # fmt: skip


async def _may_release(conn: Any, command: ReleaseStatistics) -> None:
    """National tables go to oversight bodies; an organisation's own, to it alone."""
    if command.organisation is not None:
        if command.organisation != command.requested_by:
            raise DomainError("not_your_organisation", "an organisation's own figures are released to it alone",
                              field="organisation")  # fmt: skip
        return
    org_type = await conn.fetchval("SELECT org_type FROM organisations WHERE org_id = $1", command.requested_by)
    if org_type != OrgType.OVERSIGHT_BODY:
        raise DomainError("not_an_oversight_body", "statistics are released to oversight bodies only",
                          field="requested_by")  # fmt: skip


def _dimension(dimension: Dimension, command: ReleaseStatistics) -> str:
    """A dimension as the disclosure checks key it: a NEED table's is the need's own (``need:legal_aid``), so that
    tables of two needs are never taken for the same figures."""
    return f"{dimension.value}:{command.need}" if dimension is Dimension.NEED else dimension.value


def _order(k: Key) -> tuple[int, list[tuple[str, str]]]:
    return -len(k), sorted(k)


COUNTED = """
SELECT s.survivor_id, s.identified_at, s.statistics, o.jurisdictions, r.referral_type, r.outcome, r.requested_at,
       r.accepted_at, r.escalated, r.rerouted, e.stage, p.checked_in_at,
       EXISTS (SELECT 1 FROM needs n WHERE n.survivor_id = s.survivor_id AND n.referral_type = $4) AS needed
  FROM survivors s
  LEFT JOIN organisations o ON o.org_id = s.screener_org LEFT JOIN first_referrals r USING (survivor_id)
  LEFT JOIN employment e USING (survivor_id) LEFT JOIN placements p USING (survivor_id)
 WHERE s.identified_at >= $1 AND s.identified_at < $2
   AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM referred_to t WHERE t.org_id = $3 AND t.survivor_id = s.survivor_id))
"""


async def _counted(
    uow: UnitOfWork, keyring: Keyring, period: tuple[datetime, datetime], now: datetime, command: ReleaseStatistics
) -> list[dict[str, str]]:
    """One row of coded facts per survivor identified in ``period`` (and referred to the command's organisation,
    if it names one) whose consent permits statistics now."""
    start, end = period
    survivors = await uow.conn.fetch(COUNTED, start, end, command.organisation, command.need)
    rows = []
    for s in survivors:
        records = await consent_copy.records(uow.conn, s["survivor_id"])
        if not decide(records, STATISTICS_PARTY, Category.STATISTICS, Purpose.STATISTICS, now).permitted:
            continue
        facts = await _opened(uow, keyring, s)
        if facts is None:
            continue  # erased: the key is gone
        needed = {_dimension(Dimension.NEED, command): (Needed.NEEDED if s["needed"] else Needed.NOT_NEEDED).value}
        rows.append({**_coded(facts, s["jurisdictions"]), **_followed(s), **(needed if command.need else {})})
    return rows


def _followed(survivor: Any) -> dict[str, str]:
    """What happened after identification, coded: the first referral, its wait and escalation, a bed, work."""
    referred = survivor["referral_type"] is not None
    escalation = (Escalation.NONE if not referred else Escalation.ON_TIME if not survivor["escalated"] else
                  Escalation.ESCALATED_REROUTED if survivor["rerouted"] else Escalation.ESCALATED)  # fmt: skip
    return {
        Dimension.REFERRAL_TYPE.value: survivor["referral_type"] or ReferralOutcome.NONE.value,
        Dimension.REFERRAL_OUTCOME.value: survivor["outcome"] or ReferralOutcome.NONE.value,
        Dimension.EMPLOYMENT.value: STAGES[survivor["stage"] or 0].value,
        Dimension.TIME_TO_ACCEPTANCE.value: AcceptanceTime.of(survivor["requested_at"], survivor["accepted_at"]).value,
        Dimension.TIME_TO_PLACEMENT.value: PlacementTime.of(survivor["identified_at"], survivor["checked_in_at"]).value,
        Dimension.ESCALATION.value: escalation.value,
    }


async def _opened(uow: UnitOfWork, keyring: Keyring, survivor: Any) -> Statistics | None:
    sealed = Sealed.model_validate(survivor["statistics"]) if survivor["statistics"] else None
    if sealed is None:
        return Statistics()  # a screening that recorded no statistics: every dimension unknown
    return await open_or_none(keyring, uow.conn, survivor["survivor_id"], Category.STATISTICS, sealed, Statistics)


def _coded(facts: Statistics, jurisdictions: list[str] | None) -> dict[str, str]:
    return {
        Dimension.AGE_BAND.value: facts.age_band.value,
        Dimension.GENDER.value: facts.gender.value,
        Dimension.NATIONALITY.value: facts.nationality or UNKNOWN,
        Dimension.EXPLOITATION.value: ExploitationType.of(facts.purposes).value,
        Dimension.SECTOR.value: facts.sector.value if facts.sector else UNKNOWN,
        Dimension.JURISDICTION.value: ",".join(sorted(jurisdictions or [])) or UNKNOWN,
    }


def _open_values(rows: list[dict[str, str]], dimension: str) -> list[str]:
    """An open vocabulary's values with at least ``THRESHOLD`` survivors, then ``other`` for the rest, if any (an
    empty row would only force suppressions in every column)."""
    counts = Counter(r[dimension] for r in rows)
    kept = sorted(v for v, n in counts.items() if n >= THRESHOLD and v != OTHER)
    return kept + ([OTHER] if set(counts) - set(kept) else []) if kept or counts else [OTHER]


async def _earlier(conn: Any, organisation: str | None) -> list[Published]:
    """Every release so far of the same scope (national, or one organisation's own), as the disclosure checks take
    them: a scope's readers see its releases only."""
    found = []
    for r in await conn.fetch("SELECT dimensions, vocabulary, period_start, period_end, shown FROM releases"
                              " WHERE organisation IS NOT DISTINCT FROM $1", organisation):  # fmt: skip
        table = Table.of(list(r["dimensions"]), r["vocabulary"], [])  # its shape: every figure, and its lines
        shown = {frozenset((d, v) for d, v in k): count for k, count in r["shown"]}
        found.append(Published((r["period_start"], r["period_end"]), table.lines(), shown, frozenset(table.counts)))
    return found
