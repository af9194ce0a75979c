"""De-identified statistics: what an oversight body asks for, and what a release publishes.

A release counts survivors identified in one calendar period (a month ``2026-11``, a quarter ``2026-Q4`` or a year
``2026``) by one or two coded dimensions, with its margins: who they are (age band, gender, nationality), what was
done to them (exploitation, sector), where they were identified, whether they were assessed as needing a type of
service, their first referral (its type and outcome, whether it was escalated), how long that referral waited to be
accepted, how long from identification to a bed, and how far they have come in employment (enrolled, employed,
still employed at 3 and at 6 months). An organisation's own release counts only the survivors referred to it.
Only survivors whose consent permits the ``statistics`` category for the ``statistics`` purpose to oversight bodies
are counted; a figure under 11 survivors, and any figure that would give one away, is suppressed
(``services/statistics/disclosure.py``). No release carries a survivor id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from events.base import EventData
from events.catalog import STATISTICS, STATISTICS_COMMANDS
from events.consent import OrgType, Party
from events.identification import ExploitationPurpose
from events.needs import ReferralType
from events.referrals import ReferralStatus
from events.types import OrgId

THRESHOLD = 11
"""The fewest survivors (or, in outcome monitoring, referrals) a figure shown outside their care may count: as
CTDC's k-anonymised data, k = 11."""

STATISTICS_PARTY = Party("haven-statistics", OrgType.OVERSIGHT_BODY)
"""Whom statistics consent must reach: oversight bodies (a directive to the ``oversight_body`` type, or one naming
this party), for the ``statistics`` category and purpose."""


class Dimension(StrEnum):
    AGE_BAND = "age_band"
    GENDER = "gender"
    NATIONALITY = "nationality"
    EXPLOITATION = "exploitation"
    SECTOR = "sector"
    JURISDICTION = "jurisdiction"
    REFERRAL_TYPE = "referral_type"
    REFERRAL_OUTCOME = "referral_outcome"
    EMPLOYMENT = "employment"
    TIME_TO_ACCEPTANCE = "time_to_acceptance"
    TIME_TO_PLACEMENT = "time_to_placement"
    ESCALATION = "escalation"
    NEED = "need"


class Needed(StrEnum):
    """Whether the survivor's latest needs assessment named the release's ``need`` (needs are several per survivor,
    so a table counts one need at a time: yes or no, and its figures still add up)."""

    NEEDED = "needed"
    NOT_NEEDED = "not_needed"


class Escalation(StrEnum):
    """Whether the survivor's first referral went unanswered past its deadline, and whether Haven sent it on."""

    NONE = "none"
    ON_TIME = "on_time"
    ESCALATED_REROUTED = "escalated_rerouted"
    ESCALATED = "escalated"


class AcceptanceTime(StrEnum):
    """How long the first referral waited for its acceptance, in bands (one per survivor, so tables add up)."""

    NONE = "none"
    WITHIN_1_HOUR = "within_1_hour"
    WITHIN_1_DAY = "within_1_day"
    WITHIN_1_WEEK = "within_1_week"
    OVER_1_WEEK = "over_1_week"
    NOT_ACCEPTED = "not_accepted"

    @classmethod
    def of(cls, requested: datetime | None, accepted: datetime | None) -> AcceptanceTime:
        """
        >>> from datetime import UTC, timedelta
        >>> at = datetime(2026, 12, 1, tzinfo=UTC)
        >>> [AcceptanceTime.of(at, at + timedelta(hours=3)).value, AcceptanceTime.of(at, None).value]
        ['within_1_day', 'not_accepted']
        """
        if requested is None:
            return cls.NONE
        if accepted is None:
            return cls.NOT_ACCEPTED
        bands = ((timedelta(hours=1), cls.WITHIN_1_HOUR), (timedelta(days=1), cls.WITHIN_1_DAY),
                 (timedelta(days=7), cls.WITHIN_1_WEEK))  # fmt: skip
        return banded(accepted - requested, bands, cls.OVER_1_WEEK)


B = TypeVar("B")


def banded(elapsed: timedelta, bands: tuple[tuple[timedelta, B], ...], beyond: B) -> B:
    """The first band whose limit ``elapsed`` does not pass, else ``beyond``."""
    return next((band for limit, band in bands if elapsed <= limit), beyond)


class PlacementTime(StrEnum):
    """How long from identification to the survivor's first night in a shelter bed, in bands."""

    WITHIN_1_DAY = "within_1_day"
    WITHIN_1_WEEK = "within_1_week"
    WITHIN_1_MONTH = "within_1_month"
    OVER_1_MONTH = "over_1_month"
    NOT_PLACED = "not_placed"

    @classmethod
    def of(cls, identified: datetime, checked_in: datetime | None) -> PlacementTime:
        """
        >>> from datetime import UTC, timedelta
        >>> at = datetime(2026, 12, 1, tzinfo=UTC)
        >>> [PlacementTime.of(at, at + timedelta(days=3)).value, PlacementTime.of(at, None).value]
        ['within_1_week', 'not_placed']
        """
        if checked_in is None:
            return cls.NOT_PLACED
        bands = ((timedelta(days=1), cls.WITHIN_1_DAY), (timedelta(days=7), cls.WITHIN_1_WEEK),
                 (timedelta(days=31), cls.WITHIN_1_MONTH))  # fmt: skip
        return banded(checked_in - identified, bands, cls.OVER_1_MONTH)


class EmploymentStage(StrEnum):
    """The furthest a survivor has come in employment reintegration, across their enrolments."""

    NONE = "none"
    ENROLLED = "enrolled"
    EMPLOYED = "employed"
    RETAINED_3_MONTHS = "retained_3_months"
    RETAINED_6_MONTHS = "retained_6_months"


class ReferralOutcome(StrEnum):
    """Where a survivor's first referral stands (``none``: not referred yet)."""

    NONE = "none"
    AWAITING_ANSWER = "awaiting_answer"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @classmethod
    def of(cls, status: ReferralStatus) -> ReferralOutcome:
        """
        >>> ReferralOutcome.of(ReferralStatus.IN_PROGRESS)
        <ReferralOutcome.ACCEPTED: 'accepted'>
        """
        return _OUTCOME.get(status, cls.AWAITING_ANSWER)


_OUTCOME = {
    ReferralStatus.ACCEPTED: ReferralOutcome.ACCEPTED, ReferralStatus.IN_PROGRESS: ReferralOutcome.ACCEPTED,
    ReferralStatus.ON_HOLD: ReferralOutcome.ACCEPTED, ReferralStatus.COMPLETED: ReferralOutcome.COMPLETED,
    ReferralStatus.REJECTED: ReferralOutcome.REJECTED, ReferralStatus.EXPIRED: ReferralOutcome.EXPIRED,
    ReferralStatus.DECLINED_BY_SURVIVOR: ReferralOutcome.DECLINED, ReferralStatus.CANCELLED: ReferralOutcome.CANCELLED,
    ReferralStatus.FAILED: ReferralOutcome.FAILED,
}  # fmt: skip


class ExploitationType(StrEnum):
    """CTDC's broad type of exploitation (``isSexualExploit``, ``isForcedLabour``, ``isOtherExploit``), one per
    survivor so that a table's figures add up."""

    SEXUAL = "sexual_exploitation"
    LABOUR = "forced_labour"
    SEXUAL_AND_LABOUR = "sexual_and_labour"
    OTHER = "other"

    @classmethod
    def of(cls, purposes: frozenset[ExploitationPurpose]) -> ExploitationType:
        """
        >>> ExploitationType.of(frozenset({ExploitationPurpose.DOMESTIC_SERVITUDE}))
        <ExploitationType.LABOUR: 'forced_labour'>
        """
        sexual = ExploitationPurpose.SEXUAL_EXPLOITATION in purposes
        labour = bool(purposes & {ExploitationPurpose.FORCED_LABOUR, ExploitationPurpose.DOMESTIC_SERVITUDE})
        if sexual and labour:
            return cls.SEXUAL_AND_LABOUR
        return cls.SEXUAL if sexual else cls.LABOUR if labour else cls.OTHER


PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")
Period = Annotated[str, StringConstraints(pattern=PERIOD.pattern)]


def months(period: str) -> tuple[int, int]:
    """A calendar period as months since year 0, [start, end): periods nest or do not overlap.

    >>> months("2026"), months("2026-Q4"), months("2026-11")
    ((24312, 24324), (24321, 24324), (24322, 24323))
    """
    found = PERIOD.match(period)
    if found is None:
        raise ValueError(f"{period}: a year (2026), a quarter (2026-Q4) or a month (2026-11)")
    year, month, quarter = found.groups()
    start = int(year) * 12
    if month:
        return start + int(month) - 1, start + int(month)
    if quarter:
        return start + 3 * (int(quarter) - 1), start + 3 * int(quarter)
    return start, start + 12


def dates(period: str) -> tuple[datetime, datetime]:
    """A calendar period as UTC instants, [start, end).

    >>> [d.isoformat() for d in dates("2026-Q4")]
    ['2026-10-01T00:00:00+00:00', '2027-01-01T00:00:00+00:00']
    """
    start, end = (datetime(m // 12, m % 12 + 1, 1, tzinfo=UTC) for m in months(period))
    return start, end


class ReleaseStatistics(EventData):
    """Command: release a table for an oversight body, or for an organisation about the survivors referred to it
    (refused to anyone else)."""

    event_type = "statistics.release"
    topic = STATISTICS_COMMANDS.name

    release_id: UUID
    requested_by: OrgId
    dimensions: tuple[Dimension, ...] = Field(min_length=1, max_length=2)
    period: Period
    need: ReferralType | None = Field(default=None, description="The need a NEED table counts (required with it).")
    organisation: OrgId | None = Field(
        default=None, description="Only survivors referred to this organisation: its own figures, for it alone."
    )

    @field_validator("dimensions")
    @classmethod
    def _distinct(cls, value: tuple[Dimension, ...]) -> tuple[Dimension, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each dimension once")
        return value

    @model_validator(mode="after")
    def _need_named(self) -> ReleaseStatistics:
        if (Dimension.NEED in self.dimensions) != (self.need is not None):
            raise ValueError("need: name the need exactly when the table counts by NEED")
        return self

    def subject(self) -> str:
        return str(self.release_id)


class Cell(BaseModel):
    """One figure: the dimension values it fixes (a margin fixes fewer) and its count, or null when suppressed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    values: dict[Dimension, str]
    count: int | None = Field(ge=11, description="At least 11 survivors; null: suppressed.")


class StatisticsReleased(EventData):
    """A published table: coded figures only, never a survivor id; small and revealing figures suppressed."""

    event_type = "statistics.released"
    topic = STATISTICS.name

    release_id: UUID
    requested_by: OrgId
    dimensions: tuple[Dimension, ...]
    period: Period
    need: ReferralType | None = None
    organisation: OrgId | None = Field(default=None, description="An organisation's own release: for it alone.")
    cells: tuple[Cell, ...]
    released_at: AwareDatetime

    def subject(self) -> str:
        return str(self.release_id)
