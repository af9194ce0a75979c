"""The projection consumer: every topic into the gateway's read model, idempotently (the kernel's inbox)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from events.audit import AuditCheckpointed
from events.base import EventData
from events.consent import ConsentExpired, ConsentGranted, ConsentRevoked
from events.directory import CapacityChanged, OrganisationRegistered
from events.employment import EmploymentOutcomeRecorded, Enrolled
from events.envelope import Envelope
from events.health import EngagementChanged
from events.identification import NeedsAssessed, SurvivorErased, SurvivorIdentified
from events.legal_aid import MatterClosed, MatterMilestoneReached, MatterOpened
from events.outcomes import CommandApplied, CommandRefused
from events.referrals import EVENT_STATUS, ReferralEscalated, ReferralEvent, ReferralRequested
from events.shelter import PlacementCheckedIn, PlacementCheckedOut, PlacementEvent, PlacementReleased, PlacementReserved
from events.statistics import StatisticsReleased
from gateway import webhooks
from services.kernel import erasure
from services.kernel.consumer import BatchHandler, Handler, UnitOfWork

INBOX_CHANNEL = "gateway_inbox"
OUTCOMES_CHANNEL = "gateway_outcomes"
MOVES_CHANNEL = "gateway_referral_moves"


async def survivor_identified(event: Envelope, uow: UnitOfWork) -> None:
    data = event.data
    assert isinstance(data, SurvivorIdentified)
    await uow.conn.execute(
        "INSERT INTO survivors (survivor_id, outcome, is_minor, screener_org, profile, identified_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (survivor_id) DO UPDATE SET outcome = excluded.outcome,"
        " is_minor = excluded.is_minor, profile = excluded.profile",
        data.survivor_id, data.outcome, data.is_minor, data.screener_org, data.profile.model_dump(mode="json"),
        event.time,
    )  # fmt: skip


async def needs_assessed(event: Envelope, uow: UnitOfWork) -> None:
    data = event.data
    assert isinstance(data, NeedsAssessed)
    needs = [n.model_dump(mode="json") for n in data.needs]
    await uow.conn.execute("UPDATE survivors SET needs = $2 WHERE survivor_id = $1", data.survivor_id, needs)


async def survivor_erased(event: Envelope, uow: UnitOfWork) -> None:
    """Purge every row about the survivor and remember the erasure, so that nothing about them is projected
    again, whatever order a replay meets the topics in; the audit log keeps only pseudonymous ids."""
    await erasure.remember(uow.conn, event.data.survivor_id)  # type: ignore[attr-defined]
    for table in ("survivors", "consent_directives", "referrals", "transitions", "service_records"):
        await uow.conn.execute(f"DELETE FROM {table} WHERE survivor_id = $1", event.data.survivor_id)  # type: ignore[attr-defined]


async def consent_granted(event: Envelope, uow: UnitOfWork) -> None:
    data = event.data
    assert isinstance(data, ConsentGranted)
    await uow.conn.execute(
        "INSERT INTO consent_directives (survivor_id, directive_id, version, directive) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (directive_id, version) DO NOTHING",
        data.survivor_id, data.directive.directive_id, data.directive.version, data.directive.model_dump(mode="json"),
    )  # fmt: skip


async def consent_revoked(event: Envelope, uow: UnitOfWork) -> None:
    """The earliest revocation time wins: the gateway may already have applied it when it was asked."""
    data = event.data
    assert isinstance(data, ConsentRevoked)
    await uow.conn.execute(
        "UPDATE consent_directives SET revoked_at = LEAST(coalesce(revoked_at, $2), $2) WHERE directive_id = $1",
        data.directive_id,
        data.revoked_at,
    )


async def ignore(event: Envelope, uow: UnitOfWork) -> None:
    """``consent.expired`` needs nothing: ``decide()`` reads each directive's own period; nor does the gateway's own
    ``audit.checkpointed``."""


async def referral_moved(event: Envelope, uow: UnitOfWork) -> None:
    data = event.data
    assert isinstance(data, ReferralEvent)
    status = EVENT_STATUS[type(data)]
    if isinstance(data, ReferralRequested):
        await uow.conn.execute(
            """
            INSERT INTO referrals (referral_id, survivor_id, referrer_org, recipient_org, referral_type, urgency,
                                   status, deadline, parent_referral_id, created_at, updated_at, shared, withheld,
                                   moved_seq, border)
            VALUES ($1, $2, $3, $4, $5, $6, 'requested', $7, $8, $9, $9, $10, $11, nextval('referral_move_seq'), $12)
            ON CONFLICT (referral_id) DO NOTHING
            """,
            data.referral_id, data.survivor_id, data.referrer_org, data.recipient_org, data.referral_type,
            data.urgency, data.deadline, data.parent_referral_id, event.time, sorted(data.categories),
            sorted(data.withheld), data.border.model_dump(mode="json") if data.border else None,
        )  # fmt: skip
        await uow.conn.execute(f"NOTIFY {INBOX_CHANNEL}")
    else:
        await uow.conn.execute(
            "UPDATE referrals SET status = $2, updated_at = $3, accepted_ever = accepted_ever OR $2 = 'accepted',"
            " moved_seq = nextval('referral_move_seq') WHERE referral_id = $1",
            data.referral_id, status, event.time,
        )  # fmt: skip
    await uow.conn.execute(
        "INSERT INTO transitions (event_id, referral_id, survivor_id, status, actor_org, reason, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        event.id, data.referral_id, data.survivor_id, status, data.actor_org, data.reason, event.time,
    )  # fmt: skip
    await uow.conn.execute(f"NOTIFY {MOVES_CHANNEL}")
    await webhooks.enqueue(uow.conn, event)


async def referrals_moved(events: Sequence[Envelope], uow: UnitOfWork, *, live: bool = False) -> None:
    """``referral_moved`` for a run of referral events, in a few statements whatever the run's length. ``live``: as
    the events come (the subscriptions are woken and webhook deliveries queued); otherwise a replay, which queues no
    webhook deliveries (the live projection did when the events were new).

    A referral's events share a partition and arrive in order, so inserting every new referral first,
    then each referral's last status, ends where applying them one by one would.
    """
    erased = {r["survivor_id"] for r in await uow.conn.fetch(
        "SELECT survivor_id FROM erased_survivors WHERE survivor_id = ANY($1::uuid[])",
        list({e.data.survivor_id for e in events}),  # type: ignore[attr-defined]
    )}  # fmt: skip
    events = [e for e in events if e.data.survivor_id not in erased]  # type: ignore[attr-defined]
    if not events:
        return
    new: list[tuple[Any, ...]] = []
    last: dict[Any, tuple[str, Any]] = {}
    accepted: set[Any] = set()
    moves: list[tuple[Any, ...]] = []
    for e in events:  # one pass, exact type checks: this loop runs once per event of a long history
        d: Any = e.data
        status = EVENT_STATUS[type(d)]
        if type(d) is ReferralRequested:
            new.append((d.referral_id, d.survivor_id, d.referrer_org, d.recipient_org, d.referral_type, d.urgency,
                        d.deadline, d.parent_referral_id, e.time, json.dumps(sorted(d.categories)),
                        json.dumps(sorted(d.withheld)), d.border.model_dump_json() if d.border else None))  # fmt: skip
        else:
            last[d.referral_id] = (status, e.time)
            if status == "accepted":
                accepted.add(d.referral_id)
        moves.append((e.id, d.referral_id, d.survivor_id, status, d.actor_org, d.reason, e.time))
    if new:
        await uow.conn.execute(
            """
            INSERT INTO referrals (referral_id, survivor_id, referrer_org, recipient_org, referral_type, urgency,
                                   status, deadline, parent_referral_id, created_at, updated_at, shared, withheld,
                                   moved_seq, border)
            SELECT r, s, rf, rc, t, u, 'requested', d, p, at, at,
                   ARRAY(SELECT jsonb_array_elements_text(sh::jsonb)),
                   ARRAY(SELECT jsonb_array_elements_text(wh::jsonb)), nextval('referral_move_seq'), b::jsonb
              FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                          $7::timestamptz[], $8::uuid[], $9::timestamptz[], $10::text[], $11::text[], $12::text[])
                   AS x(r, s, rf, rc, t, u, d, p, at, sh, wh, b)
            ON CONFLICT (referral_id) DO NOTHING
            """,
            *map(list, zip(*new, strict=True)),
        )
        await uow.conn.execute(f"NOTIFY {INBOX_CHANNEL}")
    if last:
        await uow.conn.execute(
            "UPDATE referrals r SET status = x.st, updated_at = x.at,"
            " accepted_ever = r.accepted_ever OR x.id = ANY($4), moved_seq = nextval('referral_move_seq')"
            " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS x(id, st, at) WHERE r.referral_id = x.id",
            list(last), [st for st, _ in last.values()], [at for _, at in last.values()], list(accepted),
        )  # fmt: skip
    await uow.conn.execute(
        "INSERT INTO transitions (event_id, referral_id, survivor_id, status, actor_org, reason, at)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],"
        " $7::timestamptz[]) ON CONFLICT DO NOTHING",
        *map(list, zip(*moves, strict=True)),
    )
    if live:
        await uow.conn.execute(f"NOTIFY {MOVES_CHANNEL}")
        await webhooks.enqueue(uow.conn, *events)


async def organisation_registered(event: Envelope, uow: UnitOfWork) -> None:
    data = event.data
    assert isinstance(data, OrganisationRegistered)
    org = data.organisation
    await uow.conn.execute(
        "INSERT INTO organisations (org_id, name, org_type, profile) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (org_id) DO UPDATE SET name = excluded.name, org_type = excluded.org_type,"
        " profile = excluded.profile",
        org.org_id, org.name, org.org_type, org.model_dump(mode="json"),
    )  # fmt: skip


async def capacity_changed(event: Envelope, uow: UnitOfWork) -> None:
    data = event.data
    assert isinstance(data, CapacityChanged)
    key = f"{data.service}/{data.unit_type or '-'}"
    await uow.conn.execute(
        "UPDATE organisations SET capacity = capacity || jsonb_build_object($2::text, $3::jsonb) WHERE org_id = $1",
        data.org_id, key, {"status": data.status, "available": data.available},  # the jsonb codec encodes it
    )  # fmt: skip


async def _upsert_record(
    uow: UnitOfWork, event: Envelope, kind: str, record_id: Any, org: str, referral: Any, state: dict[str, Any]
) -> None:
    """Merge ``state`` into the provider record ``kind/record_id`` (lists under "milestones" append)."""
    milestone = state.pop("milestone", None)
    await uow.conn.execute(
        """
        INSERT INTO service_records (record_id, survivor_id, kind, org_id, referral_id, state, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb || jsonb_build_object('milestones', coalesce($7::jsonb, '[]'::jsonb)), $8)
        ON CONFLICT (record_id) DO UPDATE SET
            state = service_records.state || $6::jsonb || jsonb_build_object('milestones',
                coalesce(service_records.state->'milestones', '[]'::jsonb) || coalesce($7::jsonb, '[]'::jsonb)),
            referral_id = coalesce(service_records.referral_id, excluded.referral_id),
            updated_at = excluded.updated_at
        """,
        f"{kind}/{record_id}", event.data.survivor_id, kind, org, referral,  # type: ignore[attr-defined]
        state, [milestone] if milestone else None, event.time,  # the pool's jsonb codec encodes them
    )  # fmt: skip


async def provider_reported(event: Envelope, uow: UnitOfWork) -> None:
    data: EventData = event.data
    match data:
        case PlacementEvent():
            state: dict[str, Any] = {"unit_type": data.unit_type, "status": PLACEMENT_STATUS[type(data)]}
            if isinstance(data, PlacementReserved) and data.location is not None:
                state["location"] = data.location.model_dump()
            if isinstance(data, PlacementCheckedOut):
                state["destination"] = data.destination
            await _upsert_record(uow, event, "placement", data.referral_id, data.shelter_org, data.referral_id, state)
        case MatterOpened():
            await _upsert_record(uow, event, "legal_matter", data.matter_id, data.clinic_org, data.referral_id,
                                 {"matter_type": data.matter_type, "status": MatterStatus.OPEN})  # fmt: skip
        case MatterMilestoneReached():
            milestone = {
                "milestone": data.milestone,
                "hearing_date": data.hearing_date and data.hearing_date.isoformat(),
            }
            await _upsert_record(uow, event, "legal_matter", data.matter_id, data.clinic_org, None,
                                 {"milestone": milestone})  # fmt: skip
        case MatterClosed():
            await _upsert_record(uow, event, "legal_matter", data.matter_id, data.clinic_org, None,
                                 {"status": MatterStatus.CLOSED, "outcome": data.outcome})  # fmt: skip
        case EngagementChanged():
            state = {"service": data.service, "engaged": data.engaged}
            if data.clinical_detail is not None:
                state["clinical_detail"] = data.clinical_detail.model_dump()
            await _upsert_record(uow, event, "health", data.referral_id, data.provider_org, data.referral_id, state)
        case Enrolled():
            await _upsert_record(uow, event, "employment", data.enrolment_id, data.program_org, data.referral_id,
                                 {"program_type": data.program_type})  # fmt: skip
        case EmploymentOutcomeRecorded():
            state = data.model_dump(
                mode="json", include={"employed", "wage_band", "retained_3_months", "retained_6_months"}
            )
            await _upsert_record(uow, event, "employment", data.enrolment_id, data.program_org, None, state)


async def command_decided(event: Envelope, uow: UnitOfWork) -> None:
    """A service applied or refused a command: its sender reads the outcome (woken by NOTIFY)."""
    assert isinstance(event.data, CommandApplied | CommandRefused)
    await commands_decided([event], uow)


async def commands_decided(events: Sequence[Envelope], uow: UnitOfWork) -> None:
    """Outcomes decided, a run of them in three statements whatever its length (the first decision of a command
    stands, as one by one): their senders read them, woken by NOTIFY."""
    rows: dict[Any, tuple[Any, ...]] = {}
    for event in events:
        data: Any = event.data
        refused = data if isinstance(data, CommandRefused) else None
        status = "refused" if refused else "applied"
        rows.setdefault(data.command_id, (data.command_id, data.requested_by, data.command_type, status,
                                          refused and refused.code, refused and refused.field,
                                          refused and refused.message, data.decided_at))  # fmt: skip
    await uow.conn.execute(
        """
        INSERT INTO command_outcomes (command_id, org_id, command_type, status, code, field, message, decided_at,
                                      decided_seq)
        SELECT c, o, t, s, k, f, m, d, nextval('outcome_seq')
          FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                      $8::timestamptz[]) AS x(c, o, t, s, k, f, m, d)
        ON CONFLICT (command_id) DO UPDATE SET status = excluded.status, code = excluded.code,
            field = excluded.field, message = excluded.message, decided_at = excluded.decided_at,
            decided_seq = excluded.decided_seq
        WHERE command_outcomes.decided_at IS NULL
        """,
        *map(list, zip(*rows.values(), strict=True)),
    )  # fmt: skip
    await uow.conn.execute(f"NOTIFY {OUTCOMES_CHANNEL}")
    await webhooks.enqueue(uow.conn, *events)


async def referral_escalated(event: Envelope, uow: UnitOfWork) -> None:
    """Nothing to keep (the expiry itself moved the referral); the referrer's webhooks hear of it."""
    await webhooks.enqueue(uow.conn, event)


class PlacementStatus(StrEnum):
    """Where a placement stands: a bed reserved, the survivor checked in, checked out, or the bed released."""

    RESERVED = "reserved"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    RELEASED = "released"


class MatterStatus(StrEnum):
    """Whether a legal matter is open or closed."""

    OPEN = "open"
    CLOSED = "closed"


PLACEMENT_STATUS: dict[type[PlacementEvent], PlacementStatus] = {
    PlacementReserved: PlacementStatus.RESERVED, PlacementCheckedIn: PlacementStatus.CHECKED_IN,
    PlacementCheckedOut: PlacementStatus.CHECKED_OUT, PlacementReleased: PlacementStatus.RELEASED,
}  # fmt: skip


async def statistics_released(event: Envelope, uow: UnitOfWork) -> None:
    data = event.data
    assert isinstance(data, StatisticsReleased)
    await uow.conn.execute(
        "INSERT INTO statistics_releases (release_id, requested_by, dimensions, period, cells, released_at,"
        " organisation, need) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (release_id) DO NOTHING",
        data.release_id, data.requested_by, [d.value for d in data.dimensions], data.period,
        [c.model_dump(mode="json") for c in data.cells], data.released_at, data.organisation, data.need,
    )  # fmt: skip


HANDLERS: dict[type[EventData], Handler] = {
    SurvivorIdentified: survivor_identified,
    NeedsAssessed: needs_assessed,
    SurvivorErased: survivor_erased,
    ConsentGranted: consent_granted,
    ConsentRevoked: consent_revoked,
    ConsentExpired: ignore,
    OrganisationRegistered: organisation_registered,
    CommandApplied: command_decided,
    ReferralEscalated: referral_escalated,
    CommandRefused: command_decided,
    CapacityChanged: capacity_changed,
    StatisticsReleased: statistics_released,
    AuditCheckpointed: ignore,  # the gateway wrote it: audit_checkpoints has it
    **dict.fromkeys(EVENT_STATUS, referral_moved),
    **dict.fromkeys([*PLACEMENT_STATUS, MatterOpened, MatterMilestoneReached, MatterClosed, EngagementChanged,
                     Enrolled, EmploymentOutcomeRecorded], provider_reported),
}  # fmt: skip
"""Event type → projection handler (they take the envelope: event time and id matter here)."""


def _unless_erased(handler: Handler) -> Handler:
    """``handler``, skipping any event about a survivor already erased (a replay may meet it after the erasure)."""

    async def project(event: Envelope, uow: UnitOfWork) -> None:
        survivor = getattr(event.data, "survivor_id", None)
        if survivor is not None and await uow.conn.fetchval(
            "SELECT 1 FROM erased_survivors WHERE survivor_id = $1", survivor
        ):
            return
        await handler(event, uow)

    return project


def handlers() -> dict[str, Handler]:
    return {
        model.event_type: handler if model is SurvivorErased else _unless_erased(handler)
        for model, handler in HANDLERS.items()
    }


def batch_handlers(*, live: bool = False) -> dict[str, BatchHandler]:
    """The set-based handlers for runs of referral events (nearly all of a long history): a replay's, or, ``live``,
    the projection's as events come."""
    handler = functools.partial(referrals_moved, live=live)
    moves: dict[str, BatchHandler] = {model.event_type: handler for model in EVENT_STATUS}
    if not live:  # a replay decides each outcome one by one, as it always has
        return moves
    return {**moves, CommandApplied.event_type: commands_decided, CommandRefused.event_type: commands_decided}
