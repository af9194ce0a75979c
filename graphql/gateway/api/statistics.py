"""De-identified statistics for oversight bodies: ask for a release, read it, export it in CTDC's columns."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import strawberry
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from events.statistics import Dimension, ReleaseStatistics
from gateway.api.base import Info, principal, validated
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
    requested_by: str
    released_at: datetime
    cells: list[StatisticsCell]
    csv_path: str = strawberry.field(description="GET it with the same key: the table in CTDC's column names.")

    @classmethod
    def of(cls, row: Any) -> StatisticsRelease:
        cells = [StatisticsCell(values=[StatisticsValue(dimension=Dimension(d), value=v)
                                        for d, v in sorted(c["values"].items())], count=c["count"])
                 for c in row["cells"]]  # fmt: skip
        return cls(id=strawberry.ID(str(row["release_id"])), period=row["period"], requested_by=row["requested_by"],
                   dimensions=[Dimension(d) for d in row["dimensions"]], released_at=row["released_at"],
                   cells=cells, csv_path=f"/statistics/{row['release_id']}.csv")  # fmt: skip


@strawberry.type
class StatisticsQuery:
    """Releases, for oversight bodies."""

    @strawberry.field(description="Statistics releases, newest first (oversight bodies only).")
    async def statistics_releases(self, info: Info, period: str | None = None) -> list[StatisticsRelease]:
        principal(info, Role.OVERSIGHT)
        rows = await info.context["pool"].fetch(
            "SELECT * FROM gateway.statistics_releases WHERE $1::text IS NULL OR period = $1"
            " ORDER BY released_at DESC LIMIT 100",
            period,
        )
        return [StatisticsRelease.of(r) for r in rows]


@strawberry.type
class StatisticsMutation:
    """Ask for a release."""

    @strawberry.mutation(
        description="Release a table of survivors identified in a period (2026, 2026-Q4 or 2026-11) by one or two "
        "dimensions. Only survivors whose consent permits statistics are counted; figures under 11 and figures that "
        "would give one away (from the table's sums or an earlier release) are suppressed. The answer's subjectId "
        "is the release; read it in statisticsReleases."
    )
    async def release_statistics(
        self, info: Info, dimensions: list[StatisticsDimension], period: str, wait: Wait = None,  # type: ignore[valid-type]
    ) -> Accepted:  # fmt: skip
        who = principal(info, Role.OVERSIGHT)
        check_wait(wait)
        command = validated(ReleaseStatistics, {"release_id": uuid4(), "requested_by": who.org_id,
                                                "dimensions": dimensions, "period": period})  # fmt: skip
        return await answer(info, (await send_commands(info, command))[0], wait)


CTDC_COLUMNS = {
    Dimension.AGE_BAND: "ageBroad",
    Dimension.GENDER: "gender",
    Dimension.NATIONALITY: "citizenship",
    Dimension.EXPLOITATION: "typeOfExploitConcatenated",
    Dimension.SECTOR: "typeOfLabourConcatenated",
    Dimension.JURISDICTION: "jurisdictionOfIdentification",  # not a CTDC column: where the survivor was identified
}
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
    writer.writerow(["yearOfRegistration", "period", *(CTDC_COLUMNS[d] for d in dims), "count", "suppressed"])
    for cell in row["cells"]:
        values = cell["values"]
        coded = [CTDC_VALUES.get(values[d], "" if values[d] in ("unknown", "undisclosed") else values[d])
                 if d in values else "(all)" for d in dims]  # fmt: skip
        count = cell["count"]
        writer.writerow([row["period"][:4], row["period"], *coded, "" if count is None else count,
                         "true" if count is None else "false"])  # fmt: skip
    return out.getvalue()


class StatisticsExport:
    """``GET /statistics/{id}.csv`` for oversight bodies."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def csv(self, request: Request) -> Response:
        who: Principal | None = request.scope.get(PRINCIPAL)
        if who is None:
            return PlainTextResponse("send an API key: Authorization: Bearer <key>\n", status_code=401)
        if who.role is not Role.OVERSIGHT:
            return PlainTextResponse("statistics are for oversight bodies\n", status_code=403)
        try:
            release = UUID(request.path_params["id"])
        except ValueError:
            return PlainTextResponse("no such release\n", status_code=404)
        row = await self.pool.fetchrow("SELECT * FROM gateway.statistics_releases WHERE release_id = $1", release)
        if row is None:
            return PlainTextResponse("no such release\n", status_code=404)
        return Response(
            ctdc_csv(row),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="haven-statistics-{release}.csv"'},
        )
