"""De-identified statistics for oversight bodies: ask for a release, read it, export it in CTDC's columns."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import strawberry
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from events.needs import ReferralType
from events.statistics import THRESHOLD, Dimension, ReleaseStatistics, dates
from gateway.api.base import Info, fail, principal, validated
from gateway.api.commands import Accepted, Wait, answer, check_wait, send_commands
from gateway.auth import Principal, Role
from gateway.guard import PRINCIPAL

StatisticsDimension = strawberry.enum(Dimension, name="StatisticsDimension", description="What a table counts by.")


@strawberry.type(description="One dimension's value in a figure.")
class StatisticsValue:
    dimension: StatisticsDimension  # type: ignore[valid-type]
    value: str


@strawberry.type(description="One figure: the values it fixes (a margin fixes fewer, the grand total none).")
class StatisticsCell:
    values: list[StatisticsValue]
    count: int | None = strawberry.field(description="At least 11 survivors; null when suppressed.")


@strawberry.type(description="A published table: survivors identified in the period, by one or two dimensions.")
class StatisticsRelease:
    id: strawberry.ID
    period: str
    dimensions: list[StatisticsDimension]  # type: ignore[valid-type]
    need: ReferralType | None = strawberry.field(description="The need a NEED table counts: needed or not_needed.")
    organisation: str | None = strawberry.field(
        description="An organisation's own release (survivors referred to it), or null: national."
    )
    requested_by: str
    released_at: datetime
    cells: list[StatisticsCell]
    csv_path: str = strawberry.field(description="GET it with the same key: the table in CTDC's column names.")

    @classmethod
    def of(cls, row: Any) -> StatisticsRelease:
        cells = [StatisticsCell(values=[StatisticsValue(dimension=Dimension(d), value=v)
                                        for d, v in sorted(c["values"].items())], count=c["count"])
                 for c in row["cells"]]  # fmt: skip
        need = ReferralType(row["need"]) if row["need"] else None
        return cls(id=strawberry.ID(str(row["release_id"])), period=row["period"], requested_by=row["requested_by"],
                   dimensions=[Dimension(d) for d in row["dimensions"]], released_at=row["released_at"], need=need,
                   organisation=row["organisation"], cells=cells,
                   csv_path=f"/statistics/{row['release_id']}.csv")  # fmt: skip


def scope(who: Principal) -> str | None:
    """Whose releases a caller reads and asks for: an oversight body's are national (None); an admin's, its
    organisation's own. Each scope's releases are checked against each other, so neither reads the other's."""
    return who.org_id if who.role is Role.ORG_ADMIN else None


SCOPED = "SELECT * FROM gateway.statistics_releases WHERE organisation IS NOT DISTINCT FROM $1"


@strawberry.type
class StatisticsQuery:
    """Releases, for oversight bodies and, of their own organisation's figures, its admins."""

    @strawberry.field(
        description="Statistics releases, newest first: national ones to an oversight body; an organisation's own "
        "to its admins."
    )
    async def statistics_releases(self, info: Info, period: str | None = None) -> list[StatisticsRelease]:
        who = principal(info, Role.OVERSIGHT, Role.ORG_ADMIN)
        rows = await info.context["pool"].fetch(
            f"{SCOPED} AND ($2::text IS NULL OR period = $2) ORDER BY released_at DESC LIMIT 100", scope(who), period
        )
        return [StatisticsRelease.of(r) for r in rows]

    @strawberry.field(
        description="One release, by the subjectId releaseStatistics answered with: to whoever may read its scope "
        "(null for anyone else, as for no such release)."
    )
    async def statistics(self, info: Info, id: strawberry.ID) -> StatisticsRelease | None:
        who = principal(info, Role.OVERSIGHT, Role.ORG_ADMIN)
        try:
            release = UUID(str(id))
        except ValueError as exc:
            raise fail("BAD_INPUT", "id: not a release id", field="id") from exc
        row = await info.context["pool"].fetchrow(f"{SCOPED} AND release_id = $2", scope(who), release)
        return StatisticsRelease.of(row) if row else None


@strawberry.type
class StatisticsMutation:
    """Ask for a release."""

    @strawberry.mutation(
        description="Release a table of survivors identified in a period (2026, 2026-Q4 or 2026-11) by one or two "
        "dimensions. Only survivors whose consent permits statistics are counted; figures under 11 and figures that "
        "would give one away (from the table's sums or an earlier release) are suppressed. An oversight body's "
        "release is national; an organisation admin's counts the survivors referred to its organisation. A NEED "
        "table names its need. The answer's subjectId is the release; read it in statisticsReleases."
    )
    async def release_statistics(
        self, info: Info, dimensions: list[StatisticsDimension], period: str,  # type: ignore[valid-type]
        need: ReferralType | None = None, wait: Wait = None,
    ) -> Accepted:  # fmt: skip
        who = principal(info, Role.OVERSIGHT, Role.ORG_ADMIN)
        check_wait(wait)
        command = validated(ReleaseStatistics, {"release_id": uuid4(), "requested_by": who.org_id, "need": need,
                                                "dimensions": dimensions, "period": period,
                                                "organisation": scope(who)})  # fmt: skip
        return await answer(info, (await send_commands(info, command))[0], wait)


@strawberry.type(description="How often a referral was rejected for one coded reason.")
class ReasonCount:
    reason: str
    count: int


@strawberry.type(
    description="One organisation's answers to one type of referral in a period. To an oversight body, figures "
    "over fewer than 11 referrals are withheld (null): they would be about a handful of people."
)
class OrganisationOutcomes:
    org_id: str
    referral_type: ReferralType
    referrals: int | None = strawberry.field(description="Referrals it received in the period (null: under 11).")
    answered: int | None
    median_hours_to_answer: float | None = strawberry.field(description="From the request to acceptance or rejection.")
    p90_hours_to_answer: float | None
    accepted: int | None
    rejections: list[ReasonCount] | None
    expired: int | None = strawberry.field(description="Not answered by the deadline.")
    rerouted: int | None = strawberry.field(description="Expired or rejected, and sent on to another provider.")
    completed: int | None
    retained_3_months: int | None = strawberry.field(description="Employment referrals: still employed at 3 months.")
    retained_6_months: int | None


OUTCOMES = """
WITH r AS (
  SELECT r.referral_id, r.recipient_org, r.referral_type, r.status, r.created_at,
         (SELECT min(t.at) FROM gateway.transitions t
           WHERE t.referral_id = r.referral_id AND t.status IN ('accepted', 'rejected')) AS answered_at,
         (SELECT t.reason FROM gateway.transitions t
           WHERE t.referral_id = r.referral_id AND t.status = 'rejected' ORDER BY t.at LIMIT 1) AS rejection,
         r.accepted_ever AS accepted,
         EXISTS (SELECT 1 FROM gateway.transitions t
                  WHERE t.referral_id = r.referral_id AND t.status = 'expired') AS expired,
         EXISTS (SELECT 1 FROM gateway.referrals c WHERE c.parent_referral_id = r.referral_id) AS rerouted,
         (SELECT bool_or((s.state->>'retained_3_months')::boolean) FROM gateway.service_records s
           WHERE s.referral_id = r.referral_id AND s.kind = 'employment') AS retained_3,
         (SELECT bool_or((s.state->>'retained_6_months')::boolean) FROM gateway.service_records s
           WHERE s.referral_id = r.referral_id AND s.kind = 'employment') AS retained_6
    FROM gateway.referrals r
   WHERE r.created_at >= $1 AND r.created_at < $2 AND ($3::text IS NULL OR r.recipient_org = $3)
     AND r.status <> 'entered_in_error'
)
SELECT recipient_org, referral_type, count(*) AS n, count(answered_at) AS answered,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - created_at))
         FILTER (WHERE answered_at IS NOT NULL) AS median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - created_at))
         FILTER (WHERE answered_at IS NOT NULL) AS p90_s,
       count(*) FILTER (WHERE accepted) AS accepted, count(*) FILTER (WHERE expired) AS expired,
       count(*) FILTER (WHERE rerouted) AS rerouted, count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE retained_3) AS retained_3, count(*) FILTER (WHERE retained_6) AS retained_6,
       array_remove(array_agg(rejection), NULL) AS rejections
  FROM r GROUP BY recipient_org, referral_type ORDER BY recipient_org, referral_type"""


def _outcomes(row: Any, *, whole: bool) -> OrganisationOutcomes:
    """A row as shown: all of it to the organisation itself; to an oversight body, nothing under 11 referrals."""
    shown = whole or row["n"] >= THRESHOLD
    if not shown:
        return OrganisationOutcomes(
            org_id=row["recipient_org"], referral_type=ReferralType(row["referral_type"]), **dict.fromkeys(_FIGURES)
        )
    employment = row["referral_type"] == ReferralType.EMPLOYMENT
    return OrganisationOutcomes(
        org_id=row["recipient_org"], referral_type=ReferralType(row["referral_type"]), referrals=row["n"],
        answered=row["answered"], median_hours_to_answer=_hours(row["median_s"]),
        p90_hours_to_answer=_hours(row["p90_s"]),
        accepted=row["accepted"], expired=row["expired"], rerouted=row["rerouted"], completed=row["completed"],
        rejections=[ReasonCount(reason=r, count=n) for r, n in sorted(Counter(row["rejections"]).items())],
        retained_3_months=row["retained_3"] if employment else None,
        retained_6_months=row["retained_6"] if employment else None,
    )  # fmt: skip


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


_FIGURES = ("referrals", "answered", "median_hours_to_answer", "p90_hours_to_answer", "accepted", "rejections",
            "expired", "rerouted", "completed", "retained_3_months", "retained_6_months")  # fmt: skip


@strawberry.type
class OutcomesQuery:
    """Outcome monitoring."""

    @strawberry.field(
        description="How organisations answer referrals in a period (2026, 2026-Q4, 2026-11): time to answer, "
        "acceptance, rejection reasons, expiry and re-routing, completion, employment retention. An oversight body "
        "sees every organisation (figures under 11 referrals withheld); an organisation's admin sees its own, whole."
    )
    async def outcome_monitoring(
        self, info: Info, period: str, org_id: str | None = None
    ) -> list[OrganisationOutcomes]:
        who = principal(info, Role.OVERSIGHT, Role.ORG_ADMIN)
        try:
            start, end = dates(period)
        except ValueError as exc:
            raise fail("BAD_INPUT", f"period: {exc}", field="period") from exc
        own = who.role is Role.ORG_ADMIN
        rows = await info.context["pool"].fetch(OUTCOMES, start, end, who.org_id if own else org_id)
        return [_outcomes(r, whole=own) for r in rows]


CTDC_COLUMNS = {
    Dimension.AGE_BAND: "ageBroad",
    Dimension.GENDER: "gender",
    Dimension.NATIONALITY: "citizenship",
    Dimension.EXPLOITATION: "typeOfExploitConcatenated",
    Dimension.SECTOR: "typeOfLabourConcatenated",
    Dimension.JURISDICTION: "jurisdictionOfIdentification",  # not a CTDC column: where the survivor was identified
}
"""CTDC's column names; a dimension CTDC has no column for keeps Haven's name (``timeToPlacement``)."""
CTDC_VALUES = {
    "age_0_8": "0--8", "age_9_17": "9--17", "age_18_20": "18--20", "age_21_23": "21--23", "age_24_26": "24--26",
    "age_27_29": "27--29", "age_30_38": "30--38", "age_39_47": "39--47", "age_48_plus": "48+",
    "female": "Woman", "male": "Man", "non_binary": "Trans/Transgender/NonConforming",
    "sexual_exploitation": "Sexual exploitation", "forced_labour": "Forced labour",
    "sexual_and_labour": "Forced labour;Sexual exploitation", "other": "Other",
}  # fmt: skip
"""CTDC's spellings; an unknown or undisclosed value is left empty, as CTDC leaves a missing one."""


def ctdc_csv(row: Any) -> str:
    """The release as CSV: the year and period, a column per dimension in CTDC's name and spelling (empty for a
    margin's "all"), then the count (empty when suppressed) and whether it was."""
    dims = [Dimension(d) for d in row["dimensions"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["yearOfRegistration", "period", *(_column(d, row["need"]) for d in dims), "count", "suppressed"])
    for cell in row["cells"]:
        values = cell["values"]
        coded = [CTDC_VALUES.get(values[d], "" if values[d] in ("unknown", "undisclosed") else values[d])
                 if d in values else "(all)" for d in dims]  # fmt: skip
        count = cell["count"]
        writer.writerow([row["period"][:4], row["period"], *coded, "" if count is None else count,
                         "true" if count is None else "false"])  # fmt: skip
    return out.getvalue()


def _column(dimension: Dimension, need: str | None) -> str:
    """
    >>> _column(Dimension.TIME_TO_PLACEMENT, None), _column(Dimension.NEED, "legal_aid")
    ('timeToPlacement', 'needLegalAid')
    """
    if dimension in CTDC_COLUMNS:
        return CTDC_COLUMNS[dimension]
    words = f"{dimension.value}_{need}" if dimension is Dimension.NEED else dimension.value
    first, *rest = words.split("_")
    return first + "".join(w.title() for w in rest)


async def export(pool: Any, who: Principal | None, release: str) -> Response:
    """A release as CTDC CSV, to whoever may read it (the API's endpoint and the console's both answer with this)."""
    if who is None:
        return PlainTextResponse("send an API key: Authorization: Bearer <key>\n", status_code=401)
    if who.role not in (Role.OVERSIGHT, Role.ORG_ADMIN):
        return PlainTextResponse("statistics are for oversight bodies and organisation admins\n", status_code=403)
    try:
        release_id = UUID(release)
    except ValueError:
        return PlainTextResponse("no such release\n", status_code=404)
    row = await pool.fetchrow(f"{SCOPED} AND release_id = $2", scope(who), release_id)
    if row is None:
        return PlainTextResponse("no such release\n", status_code=404)
    return Response(
        ctdc_csv(row),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="haven-statistics-{release_id}.csv"'},
    )


class StatisticsExport:
    """``GET /statistics/{id}.csv`` for whoever may read the release: an oversight body a national one, an
    organisation's admin its own."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def csv(self, request: Request) -> Response:
        return await export(self.pool, request.scope.get(PRINCIPAL), request.path_params["id"])
