"""Statistics on the real stack: consenting survivors counted, small figures suppressed, a CTDC CSV, and a
revocation that leaves the survivor out of the next release without giving them away."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import string
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from gateway.api.inputs import variables
from gateway.audit import row_hash
from gateway.auth import Role, create_key

from events.audit import AuditCheckpointed, unb64
from events.catalog import AUDIT
from events.consent import Directive, OrgType
from events.directory import Organisation
from events.employment import Enrol, RecordEmploymentOutcome
from events.identification import EraseSurvivor, ErasureReason
from events.needs import ReferralType
from events.shelter import AcceptPlacement, CheckIn, ConfigureShelter
from events.statistics import Dimension, ReleaseStatistics
from services.kernel import host, rewind
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.gateway import (
    ACT,
    GRANT,
    MOVE,
    REFER,
    action,
    call,
    grant,
    move,
    partner,
    referral,
    screened,
    url,
    window,
)
from tests.support.intakes import send
from tests.support.observe import eventually, read_to_end
from tests.support.partners import organisation
from tests.support.processes import ROOT, ServiceProcess, running
from tests.support.referrals import refusals_for

RELEASE = ("mutation($d: [StatisticsDimension!]!, $p: String!, $n: ReferralType) { releaseStatistics(dimensions: $d,"
           " period: $p, need: $n, wait: 10000) { subjectId outcome { status code message } } }")  # fmt: skip
A_RELEASE = "id period dimensions need organisation csvPath cells { values { dimension value } count }"
RELEASES = f"query($p: String) {{ statisticsReleases(period: $p) {{ {A_RELEASE} }} }}"
ONE = f"query($id: ID!) {{ statistics(id: $id) {{ {A_RELEASE} }} }}"
REVOKE = ("mutation($s: ID!, $d: ID!) { revokeConsent(survivorId: $s, directiveId: $d, wait: 10000) {"
          " outcome { status } } }")  # fmt: skip


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    yield from running(logs, ("identification", "consent", "referrals", "referrals.deadline_worker", "employment",
                              "shelter", "statistics", "gateway"))  # fmt: skip


async def hotline_and_oversight(db: Pool) -> tuple[Organisation, str, str]:
    """A hotline (and its intake key) and an oversight body's oversight key."""
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    body = organisation(OrgType.OVERSIGHT_BODY)
    intake = await partner(db, hotline, Role.INTAKE)
    await partner(db, body, Role.CASEWORKER)
    async with db.acquire() as conn:
        return hotline, intake, await create_key(conn, body.org_id, Role.OVERSIGHT, "oversight")


async def counted(settings: Settings, db: Pool, intake: str, survivor: UUID) -> str:
    """The survivor consents to be counted in statistics (the statistics category, for the statistics purpose, to
    oversight bodies); the directive's id."""
    directive = {"grantee": {"org_type": "oversight_body"}, "categories": ["statistics"],
                 **window(purposes=["statistics"])}  # fmt: skip
    answer = (await call(settings, intake, GRANT, {"s": str(survivor), "w": 10000,
                                                   "d": variables(Directive, directive)}))[1]  # fmt: skip
    assert answer["data"]["grantConsent"]["outcome"]["status"] == "APPLIED", answer
    return str(await db.fetchval("SELECT directive_id FROM gateway.consent_directives WHERE survivor_id = $1"
                                 " AND directive->'purposes' ? 'statistics'", survivor))  # fmt: skip


async def release(
    settings: Settings, key: str, dims: list[str], period: str, need: str | None = None
) -> dict[str, Any]:
    answer = (await call(settings, key, RELEASE, {"d": dims, "p": period, "n": need}))[1]
    made = answer["data"]["releaseStatistics"]
    assert made["outcome"]["status"] == "APPLIED", answer
    found = (await call(settings, key, ONE, {"id": made["subjectId"]}))[1]["data"]["statistics"]
    assert found is not None, "the release, read back by the id its answer gave"
    return found  # type: ignore[no-any-return]


async def fresh_period(db: Pool) -> str:
    """This month, with no release before: what a release may show depends on what was released before in its period
    (figures suppressed then stay so), and a test stack kept from an earlier run this month has some."""
    period = datetime.now(UTC).strftime("%Y-%m")
    await db.execute("DELETE FROM statistics.releases WHERE period = $1", period)
    return period


def figure(found: dict[str, Any], **values: str) -> int | None:
    """The count of the cell that fixes exactly ``values`` (None: suppressed)."""
    for cell in found["cells"]:
        if {v["dimension"]: v["value"] for v in cell["values"]} == values:
            return cell["count"]  # type: ignore[no-any-return]
    raise AssertionError(f"no cell {values}")


async def test_a_release_counts_consenting_survivors_suppresses_small_figures_and_forgets_a_revocation(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    hotline, intake, oversight = await hotline_and_oversight(db)
    # A nationality code of this run's own, so that its figures are its own on a stack kept from earlier runs: each
    # run adds survivors, so their count so far picks a code no recent run had (a random pick once met an earlier).
    before = await db.fetchval("SELECT count(*) FROM statistics.survivors")
    nationality = string.ascii_uppercase[before // 26 % 26] + string.ascii_uppercase[before % 26]
    if nationality in ("PH", "GB", "FR", "AE"):  # codes other tests' survivors have
        nationality = "XQ"
    people = [("female", 24, True), ("male", 12, True), ("female", 1, False)]  # the last has not consented
    survivors: list[tuple[UUID, str | None]] = []
    for gender, n, consents in people:
        for _ in range(n):
            survivor = await screened(settings, db, intake, statistics__gender=gender,
                                      statistics__nationality=nationality)  # fmt: skip
            survivors.append((survivor, await counted(settings, db, intake, survivor) if consents else None))
    ids = [s for s, _ in survivors]

    async def statistics_knows() -> bool:
        known = await db.fetchval("SELECT count(*) FROM statistics.survivors WHERE survivor_id = ANY($1)", ids)
        consented = await db.fetchval(
            "SELECT count(DISTINCT survivor_id) FROM statistics.consent_directives WHERE survivor_id = ANY($1)", ids
        )
        return bool(known == len(ids) and consented == 36)  # fmt: skip

    await eventually(statistics_knows)
    period = await fresh_period(db)
    first = await release(settings, oversight, ["NATIONALITY", "GENDER"], period)

    assert figure(first, NATIONALITY=nationality, GENDER="female") == 24, "the one without consent is not counted"
    assert figure(first, NATIONALITY=nationality) == 36
    assert figure(first, NATIONALITY=nationality, GENDER="non_binary") is None, "zero: under 11, suppressed"
    assert figure(first, NATIONALITY=nationality, GENDER="male") is None, "12, suppressed beside the zeros of its row"
    published = [c["count"] for c in first["cells"] if c["count"] is not None]
    assert published, first
    assert all(n >= 11 for n in published), "every published figure counts 11 survivors or more"
    text = json.dumps(first)
    assert not any(str(s) in text for s in ids), "no survivor id in a release"

    async with aiohttp.ClientSession() as session:
        for key, status in ((oversight, 200), (intake, 403), (None, 401)):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            endpoint = url(settings).removesuffix("/graphql") + first["csvPath"]
            async with session.get(endpoint, headers=headers) as got:
                assert got.status == status, await got.text()
                if status == 200:
                    table = list(csv.DictReader(io.StringIO(await got.text())))
    assert list(table[0]) == ["yearOfRegistration", "period", "citizenship", "gender", "count", "suppressed"]
    row = next(r for r in table if r["citizenship"] == nationality and r["gender"] == "Woman")
    assert (row["count"], row["suppressed"], row["period"]) == ("24", "false", period)

    for asked, values in ((RELEASE, {"d": ["GENDER"], "p": period}), (RELEASES, {"p": period})):
        refused = (await call(settings, intake, asked, values))[1]
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", "oversight bodies only"
    # … and the statistics service itself refuses anyone else, whatever reached it past the gateway.
    sent = await send(producer, ReleaseStatistics(release_id=uuid4(), requested_by=hotline.org_id,
                                                  dimensions=(Dimension.GENDER,), period=period))  # fmt: skip
    assert [code for code, _ in (await refusals_for(settings, sent)).values()] == ["not_an_oversight_body"]
    bad = (await call(settings, oversight, RELEASE, {"d": ["GENDER"], "p": "2026-13"}))[1]
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED", bad
    assert bad["errors"][0]["extensions"]["problems"][0]["field"] == "period"

    # One survivor revokes statistics consent: the next release leaves them out, and does not give them away.
    leaving, directive = next((s, d) for s, d in survivors if d)
    revoked = (await call(settings, intake, REVOKE, {"s": str(leaving), "d": directive}))[1]
    assert revoked["data"]["revokeConsent"]["outcome"]["status"] == "APPLIED"

    async def statistics_revoked() -> bool:
        return bool(await db.fetchval(
            "SELECT revoked_at IS NOT NULL FROM statistics.consent_directives WHERE directive_id = $1",
            UUID(directive)))  # fmt: skip

    await eventually(statistics_revoked)
    second = await release(settings, oversight, ["NATIONALITY", "GENDER"], period)
    assert figure(second, NATIONALITY=nationality, GENDER="female") is None, "23 beside 24: a group of one, hidden"
    assert figure(second, NATIONALITY=nationality) is None

    # Another is erased: their facts go, their key with them, and the next release counts one fewer again.
    erased = next(s for s, d in survivors if d and s != leaving)
    await send(producer, EraseSurvivor(survivor_id=erased, requested_by=hotline.org_id,
                                       reason=ErasureReason.SURVIVOR_REQUEST))  # fmt: skip

    async def statistics_forgot() -> bool:
        return not await db.fetchval("SELECT 1 FROM statistics.survivors WHERE survivor_id = $1", erased)

    await eventually(statistics_forgot)
    third = await release(settings, oversight, ["NATIONALITY", "GENDER"], period)
    records = await db.fetch("SELECT release_id, contributors FROM statistics.releases WHERE release_id = ANY($1)",
                             [UUID(r["id"]) for r in (first, second, third)])  # fmt: skip
    contributors = {str(r["release_id"]): r["contributors"] for r in records}
    assert contributors[second["id"]] == contributors[first["id"]] - 1, "the revoked survivor is left out"
    assert contributors[third["id"]] == contributors[second["id"]] - 1, "so is the erased one"
    assert figure(third, NATIONALITY=nationality, GENDER="female") is None, "once suppressed in the period, so stays"


OUTCOMES_QUERY = ("query($p: String!) { outcomeMonitoring(period: $p) { orgId referralType referrals answered"
                  " medianHoursToAnswer p90HoursToAnswer accepted rejections { reason count } expired rerouted"
                  " completed } }")  # fmt: skip


async def test_outcome_monitoring_shows_an_oversight_body_each_organisation_and_each_organisation_itself(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    busy, quiet = (organisation(OrgType.NGO, ReferralType.INTERPRETATION) for _ in range(2))
    body = organisation(OrgType.OVERSIGHT_BODY)
    intake = await partner(db, hotline, Role.INTAKE)
    keys = {org.org_id: await partner(db, org, Role.CASEWORKER) for org in (busy, quiet, body)}
    async with db.acquire() as conn:
        oversight = await create_key(conn, body.org_id, Role.OVERSIGHT, "monitoring")
        admin = await create_key(conn, busy.org_id, Role.ORG_ADMIN, "monitoring")
    await eventually(lambda: _in_directory(db, [busy.org_id, quiet.org_id]))
    answers = ["accept"] * 8 + ["reject"] * 4 + [None]  # twelve answered, one not yet
    for to, answer in [*((busy, a) for a in answers), (quiet, "accept"), (quiet, "reject")]:
        survivor = await screened(settings, db, intake)
        made = (await call(settings, intake, REFER, {"r": referral(survivor, to.org_id, referral_type="interpretation"),
                                                     "w": 10000}))[1]["data"]["requestReferral"]  # fmt: skip
        assert made["outcome"]["status"] == "APPLIED", made
        key, about = keys[to.org_id], {"id": made["referralId"], "s": str(survivor), "w": 10000}
        assert (await call(settings, key, MOVE, {**about, "m": move("receive")}))[1]["data"], "received"
        if answer is not None:
            fields = {"reason": "no_capacity"} if answer == "reject" else {}
            moved = (await call(settings, key, MOVE, {**about, "m": move(answer, **fields)}))[1]
            assert moved["data"]["moveReferral"]["outcome"]["status"] == "APPLIED", moved
    period = datetime.now(UTC).strftime("%Y-%m")

    async def projected() -> bool:
        n = await db.fetchval("SELECT count(*) FROM gateway.transitions t JOIN gateway.referrals r USING (referral_id)"
                              " WHERE r.recipient_org = ANY($1) AND t.status IN ('accepted', 'rejected')",
                              [busy.org_id, quiet.org_id])  # fmt: skip
        return bool(n == 14)

    await eventually(projected)
    answered = (await call(settings, oversight, OUTCOMES_QUERY, {"p": period}))[1]
    assert not answered.get("errors"), answered
    seen = answered["data"]["outcomeMonitoring"]
    mine = next(r for r in seen if r["orgId"] == busy.org_id)
    assert (mine["referrals"], mine["answered"], mine["accepted"]) == (13, 12, 8)
    assert mine["rejections"] == [{"reason": "no_capacity", "count": 4}]
    assert mine["medianHoursToAnswer"] is not None
    assert mine["p90HoursToAnswer"] >= mine["medianHoursToAnswer"]
    few = next(r for r in seen if r["orgId"] == quiet.org_id)
    assert few["referrals"] is None, "two referrals: withheld from the oversight body"
    assert few["rejections"] is None

    itself = (await call(settings, admin, OUTCOMES_QUERY, {"p": period}))[1]["data"]["outcomeMonitoring"]
    assert {r["orgId"] for r in itself} == {busy.org_id}, "an organisation's admin sees its own figures only"
    assert itself[0]["referrals"] == 13
    refused = (await call(settings, keys[busy.org_id], OUTCOMES_QUERY, {"p": period}))[1]
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def _in_directory(db: Pool, orgs: list[str]) -> bool:
    return bool(await db.fetchval("SELECT count(*) = $2 FROM referrals.organisations WHERE org_id = ANY($1)",
                                  orgs, len(orgs)))  # fmt: skip


async def test_a_checkpoint_kept_elsewhere_shows_the_audit_unchanged_and_catches_a_rebuilt_chain(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, tmp_path: Path
) -> None:
    """The operator's own chain check passes on a chain it rebuilt after editing a read; a checkpoint the oversight
    body kept does not. Checkpoints are published to haven.audit, signed, at each release too; an export of the
    period's reads carries no survivor data."""
    hotline, intake, oversight = await hotline_and_oversight(db)
    survivor = await screened(settings, db, intake)
    await grant(settings, db, intake, survivor, grantee={"org_id": hotline.org_id}, categories=["identity"],
                **window())  # fmt: skip
    read = "query($id: ID!) { survivor(id: $id, purpose: SERVICE_DELIVERY) { identity { givenName } } }"
    for _ in range(2):
        assert "Maria" in json.dumps((await call(settings, intake, read, {"id": str(survivor)}))[1])

    def haven(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / "bin" / "haven"), "audit", *args], capture_output=True, text=True)

    made = await asyncio.to_thread(haven, "checkpoint")
    assert made.returncode == 0, made.stderr
    held = tmp_path / "checkpoint.json"
    held.write_text(made.stdout)  # the oversight body keeps it, away from the operator
    checkpoint = json.loads(made.stdout)
    await call(settings, intake, read, {"id": str(survivor)})  # reads after the checkpoint change nothing before it
    kept = await asyncio.to_thread(haven, "verify", "--against", str(held))
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "unchanged up to the checkpoint" in kept.stdout

    # The operator edits a read before the checkpoint and rebuilds every hash after it: its own check passes …
    rows = await db.fetch("SELECT * FROM gateway.audit_log WHERE seq >= $1 ORDER BY seq", checkpoint["seq"])
    try:
        prev = rows[0]["prev_hash"]
        for r in rows:
            purpose = "statistics" if r["seq"] == checkpoint["seq"] else r["purpose"]
            digest = row_hash(prev, r["at"], r["org_id"], r["role"], r["survivor_id"], list(r["categories"]), purpose)
            await db.execute("UPDATE gateway.audit_log SET purpose = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
                             r["seq"], purpose, prev, digest)  # fmt: skip
            prev = digest
        rebuilt = await asyncio.to_thread(haven, "verify")
        caught = await asyncio.to_thread(haven, "verify", "--against", str(held))
    finally:
        for r in rows:
            await db.execute("UPDATE gateway.audit_log SET purpose = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
                             r["seq"], r["purpose"], r["prev_hash"], r["hash"])  # fmt: skip
    assert rebuilt.returncode == 0, "a rebuilt chain is consistent with itself"
    assert caught.returncode == 1
    assert f"BROKEN at record {checkpoint['seq']}" in caught.stdout
    forged = {**checkpoint, "records": checkpoint["records"] + 1}
    held.write_text(json.dumps(forged))
    assert "signature does not verify" in (await asyncio.to_thread(haven, "verify", "--against", str(held))).stdout

    # Published: the gateway's checkpoints reach haven.audit, signed, one after each statistics release.
    period = datetime.now(UTC).strftime("%Y-%m")
    await release(settings, oversight, ["GENDER"], period)

    async def published_after_release() -> bool:
        found = [AuditCheckpointed.model_validate_json(m.value) for m in await read_to_end(settings, AUDIT.name)]
        return any(c.reason == "statistics_release" for c in found)

    await eventually(published_after_release)
    for message in await read_to_end(settings, AUDIT.name):
        published = AuditCheckpointed.model_validate_json(message.value)
        key = Ed25519PublicKey.from_public_bytes(unb64(published.public_key))
        key.verify(unb64(published.signature), published.signed())  # raises if it does not verify
    latest = (await call(settings, oversight, "{ auditCheckpoints(last: 1) { reason json } }"))[1]
    assert latest["data"]["auditCheckpoints"][0]["json"]

    exported = (await call(settings, oversight, "query($p: String!) { auditExport(period: $p) { seq orgId subject"
                           " categories purpose hash } }", {"p": period}))[1]  # fmt: skip
    mine = [r for r in exported["data"]["auditExport"] if r["orgId"] == hotline.org_id]
    assert len(mine) == 3
    assert len({r["subject"] for r in mine}) == 1, "one survivor, one pseudonym within the export"
    assert str(survivor) not in json.dumps(exported), "no survivor id"
    again = (await call(settings, oversight, "query($p: String!) { auditExport(period: $p) { orgId subject } }",
                        {"p": period}))[1]["data"]["auditExport"]  # fmt: skip
    assert {r["subject"] for r in again if r["orgId"] == hotline.org_id} != {mine[0]["subject"]}, "not joinable"
    for asked in ("query($p: String!) { auditExport(period: $p) { seq } }", "{ auditCheckpoints { seq } }"):
        refused = (await call(settings, intake, asked, {"p": period}))[1]
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", "oversight bodies only"


async def test_a_release_counts_survivors_by_their_first_referrals_type_and_outcome(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    """Twelve survivors referred and accepted, eleven rejected: each counted once, by their first referral's outcome
    (the eleven hidden beside the zeros of the table, which must hide 11 survivors or more between them)."""
    _, intake, oversight = await hotline_and_oversight(db)
    interpreters = organisation(OrgType.NGO, ReferralType.INTERPRETATION)
    key = await partner(db, interpreters, Role.CASEWORKER)
    await eventually(lambda: _in_directory(db, [interpreters.org_id]))
    referred = []
    for answer in ["accept"] * 12 + ["reject"] * 11:
        survivor = await screened(settings, db, intake)
        await counted(settings, db, intake, survivor)
        ask = {"r": referral(survivor, interpreters.org_id, referral_type="interpretation"), "w": 10000}
        made = (await call(settings, intake, REFER, ask))[1]["data"]["requestReferral"]
        about = {"id": made["referralId"], "s": str(survivor), "w": 10000}
        await call(settings, key, MOVE, {**about, "m": move("receive")})
        fields = {"reason": "no_capacity"} if answer == "reject" else {}
        moved = (await call(settings, key, MOVE, {**about, "m": move(answer, **fields)}))[1]
        assert moved["data"]["moveReferral"]["outcome"]["status"] == "APPLIED", moved
        referred.append(survivor)

    async def statistics_knows() -> bool:
        answered = await db.fetchval("SELECT count(*) FROM statistics.first_referrals WHERE survivor_id = ANY($1)"
                                     " AND outcome <> 'awaiting_answer'", referred)  # fmt: skip
        return bool(answered == len(referred))

    await eventually(statistics_knows)
    outcomes = await db.fetch("SELECT outcome, count(*) AS n FROM statistics.first_referrals"
                              " WHERE survivor_id = ANY($1) GROUP BY outcome", referred)  # fmt: skip
    assert {r["outcome"]: r["n"] for r in outcomes} == {"accepted": 12, "rejected": 11}
    period = await fresh_period(db)
    found = await release(settings, oversight, ["REFERRAL_OUTCOME"], period)
    accepted = figure(found, REFERRAL_OUTCOME="accepted")
    assert accepted is not None
    assert accepted >= 12, "ours, and on a stack kept from earlier runs, theirs"
    assert figure(found, REFERRAL_OUTCOME="expired") is None, "zero: suppressed"
    assert all(c["count"] is None or c["count"] >= 11 for c in found["cells"])
    waited = await release(settings, oversight, ["TIME_TO_ACCEPTANCE"], period)
    quick = figure(waited, TIME_TO_ACCEPTANCE="within_1_hour")  # accepted a moment after each request
    assert quick is not None
    assert quick >= 12
    assert figure(waited, TIME_TO_ACCEPTANCE="over_1_week") is None, "zero: suppressed"


async def test_a_release_counts_survivors_by_how_far_they_have_come_in_employment(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    """Twelve survivors still employed at three months, eleven employed and no further: each counted at the
    furthest stage they reached (the eleven hidden beside the zeros)."""
    _, intake, oversight = await hotline_and_oversight(db)
    program = organisation(OrgType.EMPLOYMENT_PROGRAM, ReferralType.EMPLOYMENT)
    key = await partner(db, program, Role.CASEWORKER)
    await eventually(lambda: _in_directory(db, [program.org_id]))
    placed = []
    for retained in [True] * 12 + [False] * 11:
        survivor = await screened(settings, db, intake)
        await counted(settings, db, intake, survivor)
        ask = {"r": referral(survivor, program.org_id, referral_type="employment"), "w": 10000}
        made = (await call(settings, intake, REFER, ask))[1]["data"]["requestReferral"]
        assert made["outcome"]["status"] == "APPLIED", made
        enrolment, about = str(uuid4()), {"referral_id": made["referralId"], "survivor_id": str(survivor)}
        for step in (action(Enrol, **about, enrolment_id=enrolment, program_type="vocational_training"),
                     action(RecordEmploymentOutcome, enrolment_id=enrolment, survivor_id=str(survivor),
                            employed=True, retained_3_months=retained)):  # fmt: skip
            done = (await call(settings, key, ACT, {"a": step, "w": 10000}))[1]
            assert done["data"]["providerAction"]["outcome"]["status"] == "APPLIED", done
        placed.append(survivor)

    async def statistics_knows() -> bool:
        stages = await db.fetch("SELECT stage, count(*) AS n FROM statistics.employment WHERE survivor_id = ANY($1)"
                                " GROUP BY stage", placed)  # fmt: skip
        return {r["stage"]: r["n"] for r in stages} == {3: 12, 2: 11}  # retained at 3 months; employed

    await eventually(statistics_knows)
    period = await fresh_period(db)
    found = await release(settings, oversight, ["EMPLOYMENT"], period)
    shown = figure(found, EMPLOYMENT="retained_3_months")
    assert shown is not None
    assert shown >= 12, "ours, and on a stack kept from earlier runs, theirs"
    assert figure(found, EMPLOYMENT="retained_6_months") is None, "zero: suppressed"


async def test_an_organisations_own_release_counts_the_survivors_referred_to_it_for_it_alone(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    """A shelter's admin releases its own figures: time from identification to a bed, and who needed immigration
    advice; an interpretation service's, which first referrals went unanswered past their deadline. Each scope's
    population is exactly the test's (new organisations), so the figures are exact; each is read by its own admin
    alone, and the statistics service refuses one organisation's figures to another."""
    _, intake, oversight = await hotline_and_oversight(db)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    interpreters = organisation(OrgType.NGO, ReferralType.INTERPRETATION)
    shelter_key = await partner(db, shelter, Role.CASEWORKER)
    interpreters_key = await partner(db, interpreters, Role.CASEWORKER)
    async with db.acquire() as conn:
        shelter_admin, interpreters_admin = [await create_key(conn, o.org_id, Role.ORG_ADMIN, "admin")
                                             for o in (shelter, interpreters)]  # fmt: skip
    await eventually(lambda: _in_directory(db, [shelter.org_id, interpreters.org_id]))
    beds = (await call(settings, shelter_key, ACT, {"a": action(ConfigureShelter, beds={"adult_women": 12}),
                                                    "w": 10000}))[1]  # fmt: skip
    assert beds["data"]["providerAction"]["outcome"]["status"] == "APPLIED", beds

    async def refer(survivor: UUID, org: Organisation, **more: Any) -> dict[str, Any]:
        await counted(settings, db, intake, survivor)
        await grant(settings, db, intake, survivor, grantee={"org_id": org.org_id},
                    categories=["identity", "case_status"], **window())  # fmt: skip
        made = (await call(settings, intake, REFER, {"r": referral(survivor, org.org_id, **more), "w": 10000}))[1]
        assert made["data"]["requestReferral"]["outcome"]["status"] == "APPLIED", made
        return {"id": made["data"]["requestReferral"]["referralId"], "s": str(survivor), "w": 10000}

    # The shelter: twelve who need immigration advice, placed the day they were identified; eleven left waiting.
    sheltered = []
    for placed in [True] * 12 + [False] * 11:
        indicators = ["withheld_wages", "no_safe_accommodation", *(["irregular_immigration_status"] * placed)]
        survivor = await screened(settings, db, intake, narrative__indicators=indicators)
        about = await refer(survivor, shelter)
        if placed:
            which = {"referral_id": about["id"], "survivor_id": about["s"]}
            for step in (action(AcceptPlacement, **which, unit_type="adult_women"), action(CheckIn, **which)):
                done = (await call(settings, shelter_key, ACT, {"a": step, "w": 10000}))[1]
                assert done["data"]["providerAction"]["outcome"]["status"] == "APPLIED", done
        sheltered.append(survivor)

    # The interpreters: eleven accepted in time; twelve left unanswered past a deadline seconds away.
    interpreted = []
    for answered in [True] * 11 + [False] * 12:
        survivor = await screened(settings, db, intake)
        due = None if answered else (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
        about = await refer(survivor, interpreters, referral_type="interpretation", respond_by=due)
        for answer in ("receive", "accept") if answered else ():
            moved = (await call(settings, interpreters_key, MOVE, {**about, "m": move(answer)}))[1]
            assert moved["data"]["moveReferral"]["outcome"]["status"] == "APPLIED", moved
        interpreted.append(survivor)

    async def statistics_knows() -> bool:
        placed = await db.fetchval("SELECT count(*) FROM statistics.placements WHERE survivor_id = ANY($1)", sheltered)
        late = await db.fetchval("SELECT count(*) FROM statistics.first_referrals WHERE survivor_id = ANY($1)"
                                 " AND escalated", interpreted)  # fmt: skip
        return bool(placed == 12 and late == 12)

    await eventually(statistics_knows, timeout=90)
    period = datetime.now(UTC).strftime("%Y-%m")
    to_a_bed = await release(settings, shelter_admin, ["TIME_TO_PLACEMENT"], period)
    assert to_a_bed["organisation"] == shelter.org_id
    assert figure(to_a_bed) == 23, "the survivors referred to the shelter, and no one else"
    assert figure(to_a_bed, TIME_TO_PLACEMENT="within_1_day") == 12
    assert figure(to_a_bed, TIME_TO_PLACEMENT="not_placed") is None, "eleven, hidden beside the zeros"
    needs = await release(settings, shelter_admin, ["NEED"], period, need="IMMIGRATION_LEGAL")
    assert (needs["need"], figure(needs, NEED="needed"), figure(needs, NEED="not_needed")) == (
        "IMMIGRATION_LEGAL", 12, 11)  # fmt: skip
    late = await release(settings, interpreters_admin, ["ESCALATION"], period)
    assert figure(late) == 23
    assert figure(late, ESCALATION="escalated") == 12, "unanswered past the deadline; no one else to send them to"
    assert figure(late, ESCALATION="on_time") is None, "eleven, hidden beside the zeros"

    # Each organisation's releases are its own: not the other's, not the oversight body's, not a caseworker's.
    def ids(found: list[dict[str, Any]]) -> set[str]:
        return {r["id"] for r in found}

    own = {to_a_bed["id"], needs["id"]}
    for key, sees in ((shelter_admin, own), (interpreters_admin, {late["id"]}), (oversight, set())):
        found = (await call(settings, key, RELEASES, {"p": period}))[1]["data"]["statisticsReleases"]
        assert ids(found) & (own | {late["id"]}) == sees
    for key in (interpreters_admin, oversight):
        assert (await call(settings, key, ONE, {"id": to_a_bed["id"]}))[1]["data"]["statistics"] is None
    refused = (await call(settings, shelter_key, RELEASES, {"p": period}))[1]
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", "a caseworker reads no statistics"
    async with aiohttp.ClientSession() as session:
        endpoint = url(settings).removesuffix("/graphql") + to_a_bed["csvPath"]
        for key, status in ((shelter_admin, 200), (interpreters_admin, 404), (oversight, 404)):
            async with session.get(endpoint, headers={"Authorization": f"Bearer {key}"}) as got:
                assert got.status == status, await got.text()
                if status == 200:
                    assert (await got.text()).startswith("yearOfRegistration,period,timeToPlacement,count,")
    missing = (await call(settings, shelter_admin, RELEASE, {"d": ["NEED"], "p": period}))[1]
    assert missing["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED", "a NEED table names its need"

    # … and the statistics service refuses one organisation another's figures, whatever reached it.
    sent = await send(producer, ReleaseStatistics(release_id=uuid4(), requested_by=interpreters.org_id,
                                                  organisation=shelter.org_id, dimensions=(Dimension.GENDER,),
                                                  period=period))  # fmt: skip
    assert [code for code, _ in (await refusals_for(settings, sent)).values()] == ["not_your_organisation"]


async def test_a_rewound_service_fills_a_new_measure_from_history_and_nothing_else_happens_twice(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    """A measure added to a running service starts empty: its consumer group is past the events it needs.
    ``haven rewind`` fills it from the topics' history: the needs of every survivor assessed before, not those of
    a survivor erased since, and no other event takes effect again (no release is published twice)."""
    hotline, intake, _ = await hotline_and_oversight(db)
    indicators = ["withheld_wages", "no_safe_accommodation", "irregular_immigration_status"]
    kept = [await screened(settings, db, intake, narrative__indicators=indicators) for _ in range(2)]
    erased = await screened(settings, db, intake, narrative__indicators=indicators)
    ours = [*kept, erased]

    async def needs_of(survivors: list[UUID]) -> dict[UUID, set[str]]:
        rows = await db.fetch("SELECT survivor_id, referral_type FROM statistics.needs WHERE survivor_id = ANY($1)",
                              survivors)  # fmt: skip
        found: dict[UUID, set[str]] = {}
        for r in rows:
            found.setdefault(r["survivor_id"], set()).add(r["referral_type"])
        return found

    async def assessed() -> bool:
        return len(await needs_of(ours)) == 3

    await eventually(assessed)
    assessed_needs = (await needs_of(kept))[kept[0]]
    assert {"immigration_legal", "legal_aid", "emergency_shelter", "psychosocial"} <= assessed_needs
    await send(producer, EraseSurvivor(survivor_id=erased, requested_by=hotline.org_id,
                                       reason=ErasureReason.SURVIVOR_REQUEST))  # fmt: skip

    async def forgotten() -> bool:
        return erased not in await needs_of([erased])

    await eventually(forgotten)
    counts = "SELECT array[(SELECT count(*) FROM statistics.releases), (SELECT count(*) FROM statistics.survivors)]"
    before = await db.fetchval(counts)
    published = len(await read_to_end(settings, "haven.statistics"))

    statistics = services["statistics"]
    assert statistics.stop() == 0
    await db.execute("DELETE FROM statistics.needs")  # the measure as an upgrade adds it: empty
    ((spec, _),) = host.build(["statistics"], settings)
    done = await rewind.rewind(settings, spec, "statistics", db, ["needs.assessed"], wait=30)
    assert done.forgotten >= 3, done
    with pytest.raises(ValueError, match=r"handles no referral\.cancel"):
        await rewind.rewind(settings, spec, "statistics", db, ["referral.cancel"])
    await asyncio.to_thread(statistics.start)

    async def refilled() -> bool:
        return set(await needs_of(ours)) == set(kept)

    await eventually(refilled, timeout=90)
    assert (await needs_of(kept))[kept[0]] == assessed_needs, "the same needs as the assessment named"
    await asyncio.sleep(2)  # an erased survivor's needs, replayed after the erasure, would show by now
    assert erased not in await needs_of([erased]), "nothing comes back about an erased survivor"
    assert await db.fetchval(counts) == before, "no release made again, no survivor counted twice"
    assert len(await read_to_end(settings, "haven.statistics")) == published, "no release published again"
