"""The gateway on the real stack: consent at the field, isolation, revocation, audit, hardening, subscriptions."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric import rsa
from gateway.api.inputs import variables
from gateway.auth import Role, create_key
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from events.consent import Category, ConsentRecord, Directive, OrgType, Party, Purpose, decide
from events.directory import CapacityStatus, Organisation
from events.needs import ReferralType
from services.kernel.db import Pool, create_pool
from services.kernel.settings import Settings
from tests.support.gateway import (
    GRANT,
    MOVE,
    REFER,
    SCREEN,
    call,
    codes,
    grant,
    move,
    partner,
    persisted,
    production_gateway,
    referral,
    screened,
    screening,
    url,
    window,
)
from tests.support.observe import eventually, read_to_end
from tests.support.oidc import AUDIENCE, ISSUER, IdentityProvider
from tests.support.partners import announce_capacity, organisation
from tests.support.processes import ROOT, ServiceProcess, running
from tests.support.webhooks import webhook_receiver

PATHWAY = """
query Pathway($id: ID!, $purpose: Purpose!) {
  survivor(id: $id, purpose: $purpose) {
    screening { outcome isMinor }
    identity { givenName familyName }
    contact { phone }
    narrative { story sector }
    needs { referralType urgency }
    placements { status location }
    health { engaged clinicalDetail }
    legalMatters { status }
    employment { employed }
  }
}"""
FIELD_CATEGORY = {
    "screening": Category.CASE_STATUS,
    "identity": Category.IDENTITY,
    "contact": Category.CONTACT,
    "narrative": Category.NARRATIVE,
    "needs": Category.CASE_STATUS,
    "placements": Category.CASE_STATUS,
    "health": Category.CASE_STATUS,
    "legalMatters": Category.LEGAL,
    "employment": Category.EMPLOYMENT,
}


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, idp: IdentityProvider) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    oidc = {"HAVEN_OIDC_ISSUER": ISSUER, "HAVEN_OIDC_AUDIENCE": AUDIENCE, "HAVEN_OIDC_JWKS_URL": idp.jwks_url,
            "HAVEN_WEBHOOKS_ALLOW_LOOPBACK": "true"}  # fmt: skip
    yield from running(logs, ("identification", "consent", "referrals", "gateway"), oidc)


async def referrable(settings: Settings, db: Pool, intake: str, recipient: Organisation, *known: Organisation) -> UUID:
    """A survivor screened through the gateway who consented to ``recipient``, once the referrals
    service knows the consent and every organisation involved (so a referral can be requested)."""
    survivor = await screened(settings, db, intake)
    await grant(
        settings,
        db,
        intake,
        survivor,
        grantee={"org_id": recipient.org_id},
        categories=["identity", "contact", "case_status"],
        **window(),
    )
    orgs = [recipient.org_id, *(o.org_id for o in known)]

    async def referrals_service_knows() -> bool:
        found = await db.fetchval("SELECT count(*) FROM referrals.organisations WHERE org_id = ANY($1)", orgs)
        consented = await db.fetchval("SELECT 1 FROM referrals.consent_directives WHERE survivor_id = $1", survivor)
        return bool(found == len(orgs) and consented)

    await eventually(referrals_service_knows)
    return survivor


async def test_a_screening_sent_again_after_a_lost_answer_names_the_same_survivor(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    """make chaos found it: a partner that sends a screening again (the answer was lost to a restart) was given a
    new survivor id that never existed; the retry now names the survivor the screening identified."""
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    intake = await partner(db, hotline, Role.INTAKE)
    sent = screening()
    answers = [(await call(settings, intake, SCREEN, {"s": sent, "w": 10000}))[1] for _ in range(2)]
    ids = {a["data"]["recordScreening"]["subjectId"] for a in answers}
    assert len(ids) == 1, answers
    assert [a["data"]["recordScreening"]["outcome"]["status"] for a in answers] == ["APPLIED", "APPLIED"]
    survivor = UUID(ids.pop())
    assert await db.fetchval("SELECT 1 FROM gateway.survivors WHERE survivor_id = $1", survivor)
    other = (await call(settings, intake, SCREEN, {"s": screening(), "w": 10000}))[1]
    assert UUID(other["data"]["recordScreening"]["subjectId"]) != survivor, "another key, another survivor"


async def test_a_grant_and_a_referral_sent_again_with_their_idempotency_keys_are_recorded_once(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    """make chaos found it: a grant sent again after a lost answer recorded a second directive, which a revocation
    of the first left in force. With the same idempotency key, the retry is the same directive (or referral), each
    attempt is answered APPLIED, and a revocation revokes the one directive there is; a retry after it revives
    nothing."""
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    intake = await partner(db, hotline, Role.INTAKE)
    await partner(db, shelter, Role.CASEWORKER)
    survivor = await referrable(settings, db, intake, shelter, hotline)  # one directive already
    directive = variables(Directive, {"grantee": {"org_id": shelter.org_id}, "categories": ["contact"], **window()})
    sent = {"s": str(survivor), "d": directive, "w": 10000, "k": "grant-0001-retry"}

    async def grant_it(**changes: Any) -> str:
        answer = (await call(settings, intake, GRANT, {**sent, **changes}))[1]
        return str(answer["data"]["grantConsent"]["outcome"]["status"])

    async def directives() -> list[UUID]:
        rows = await db.fetch("SELECT directive_id FROM consent.directives WHERE survivor_id = $1", survivor)
        return [r["directive_id"] for r in rows]

    before = await directives()
    assert [await grant_it(), await grant_it()] == ["APPLIED", "APPLIED"]
    keyed = [d for d in await directives() if d not in before]
    assert len(keyed) == 1, "one directive (one version of it), however often it was sent"
    assert await grant_it(k="grant-0002-other") == "APPLIED"
    assert len(await directives()) == len(before) + 2, "another key, another directive"

    asked = {"r": referral(survivor, shelter.org_id), "w": 10000, "k": "referral-0001-retry"}
    answers = [(await call(settings, intake, REFER, asked))[1]["data"]["requestReferral"] for _ in range(2)]
    assert [a["outcome"]["status"] for a in answers] == ["APPLIED", "APPLIED"], answers
    assert answers[0]["referralId"] == answers[1]["referralId"]
    assert await db.fetchval("SELECT count(*) FROM referrals.referrals WHERE survivor_id = $1", survivor) == 1
    medical = {**asked, "r": referral(survivor, shelter.org_id, referral_type="medical")}
    reused = (await call(settings, intake, REFER, medical))[1]["data"]["requestReferral"]
    assert (reused["outcome"]["status"], reused["outcome"]["code"]) == ("REFUSED", "duplicate_referral"), reused
    other = (await call(settings, intake, REFER, {**asked, "k": "referral-0002-other"}))[1]["data"]["requestReferral"]
    assert other["referralId"] != answers[0]["referralId"]

    revoke = ("mutation($s: ID!, $d: ID!) { revokeConsent(survivorId: $s, directiveId: $d, wait: 10000) {"
              " outcome { status } } }")  # fmt: skip
    revoked = (await call(settings, intake, revoke, {"s": str(survivor), "d": str(keyed[0])}))[1]
    assert revoked["data"]["revokeConsent"]["outcome"]["status"] == "APPLIED"
    assert await grant_it() == "APPLIED", "answered: the grant was recorded once, before"
    rows = await db.fetch("SELECT revoked_at FROM consent.directives WHERE directive_id = $1", keyed[0])
    assert [r["revoked_at"] is not None for r in rows] == [True], "a retry after the revocation revives nothing"


async def test_a_referral_across_a_border_needs_consent_that_names_it_and_the_pathway_shows_the_border(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    """A hotline in GB refers to a shelter in FR. With consent for the shelter that does not name FR, the
    preview shows the border and shares nothing, the referral is refused with border_not_consented, and the
    shelter reads nothing. Once the survivor consents to sharing with it in FR, the referral is made and both
    sides see the border it crossed."""
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, jurisdictions=frozenset({"FR"}))
    intake = await partner(db, hotline, Role.INTAKE)
    caseworker = await partner(db, shelter, Role.CASEWORKER)
    survivor = await screened(settings, db, intake)
    scope = {"grantee": {"org_id": shelter.org_id}, "categories": ["identity", "contact", "case_status"]}
    domestic = await grant(settings, db, intake, survivor, **scope, **window())

    async def referrals_service_knows(directives: int) -> None:
        async def known() -> bool:
            found = await db.fetchval("SELECT count(*) FROM referrals.consent_directives WHERE survivor_id = $1",
                                      survivor)  # fmt: skip
            return bool(found == directives)

        await eventually(known)

    await referrals_service_knows(1)
    preview = (
        "query($s: ID!, $o: String!) { referralSharing(survivorId: $s, recipientOrg: $o, referralType:"
        " EMERGENCY_SHELTER) { shared withheld border { survivorJurisdictions recipientJurisdictions } } }"
    )
    seen = (await call(settings, intake, preview, {"s": str(survivor), "o": shelter.org_id}))[1]["data"]
    assert seen["referralSharing"]["shared"] == []
    assert seen["referralSharing"]["border"] == {"survivorJurisdictions": ["GB"], "recipientJurisdictions": ["FR"]}
    asked = {"r": referral(survivor, shelter.org_id), "w": 10000}
    refused = (await call(settings, intake, REFER, asked))[1]["data"]["requestReferral"]["outcome"]
    assert (refused["status"], refused["code"], refused["field"]) == ("REFUSED", "border_not_consented",
                                                                      "recipientOrg"), refused  # fmt: skip
    assert "FR" in refused["message"]
    assert "GB" in refused["message"]
    read = "query($s: ID!) { survivor(id: $s, purpose: SERVICE_DELIVERY) { identity { givenName } } }"
    _, body = await call(settings, caseworker, read, {"s": str(survivor)})
    assert "Maria" not in json.dumps(body), "a permit for the survivor's own jurisdiction does not reach FR"

    await call(settings, intake, "mutation($s: ID!, $d: ID!) { revokeConsent(survivorId: $s, directiveId: $d,"
               " wait: 10000) { outcome { status } } }", {"s": str(survivor), "d": domestic})  # fmt: skip
    await grant(settings, db, intake, survivor, **scope, **window(cross_border=["FR"]))
    await referrals_service_knows(2)
    listed = (await call(settings, intake, "query($s: ID!) { consents(survivorId: $s) { crossBorder revokedAt } }",
                         {"s": str(survivor)}))[1]["data"]["consents"]  # fmt: skip
    assert {(tuple(c["crossBorder"]), c["revokedAt"] is None) for c in listed} == {((), False), (("FR",), True)}
    made = (await call(settings, intake, REFER, asked))[1]["data"]["requestReferral"]
    assert made["outcome"]["status"] == "APPLIED", made
    pathway = (
        "query($s: ID!) { survivor(id: $s, purpose: SERVICE_DELIVERY) { identity { givenName } referrals {"
        " recipientOrg border { survivorJurisdictions recipientJurisdictions } } } }"
    )
    crossed = {"survivorJurisdictions": ["GB"], "recipientJurisdictions": ["FR"]}
    for key, name in ((intake, None), (caseworker, {"givenName": "Maria"})):  # the hotline has no consent for itself
        body = (await call(settings, key, pathway, {"s": str(survivor)}))[1]
        assert body["data"]["survivor"]["identity"] == name, body
        assert body["data"]["survivor"]["referrals"] == [{"recipientOrg": shelter.org_id, "border": crossed}]


async def test_a_partner_sees_the_consented_fields_only_and_every_read_is_audited(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    intake_key = await partner(db, hotline, Role.INTAKE)
    survivor = await screened(settings, db, intake_key)
    await grant(
        settings,
        db,
        intake_key,
        survivor,
        grantee={"org_id": hotline.org_id},
        categories=["identity", "case_status"],
        **window(),
    )

    _status, body = await call(settings, intake_key, PATHWAY, {"id": str(survivor), "purpose": "SERVICE_DELIVERY"})

    data = body["data"]["survivor"]
    assert data["identity"] == {"givenName": "Maria", "familyName": "Santos"}
    assert data["screening"]["outcome"] == "PROBABLE_VICTIM"
    assert data["narrative"] is None, "not consented: null"
    assert data["contact"] is None, "not consented: null"
    refused = {tuple(e["path"])[-1]: e["extensions"]["code"] for e in body["errors"]}
    assert refused["narrative"] == refused["contact"] == "CONSENT_REQUIRED"
    assert "Recruited" not in json.dumps(body), "the story never leaves the gateway"
    async with db.acquire() as conn:  # the ledger is for the survivor's caseworker
        caseworker = await create_key(conn, hotline.org_id, Role.CASEWORKER, "ledger")
    _, ledger = await call(
        settings,
        caseworker,
        "query($s: ID!) { accessLedger(survivorId: $s) { orgId categories purpose } }",
        {"s": str(survivor)},
    )
    assert ledger["data"]["accessLedger"] == [
        {"orgId": hotline.org_id, "categories": ["CASE_STATUS", "IDENTITY"], "purpose": "SERVICE_DELIVERY"}
    ]
    rows = await db.fetch("SELECT org_id, categories, purpose FROM gateway.audit_log WHERE survivor_id = $1", survivor)
    assert [(r["org_id"], sorted(r["categories"]), r["purpose"]) for r in rows] == [
        (hotline.org_id, ["case_status", "identity"], "service_delivery")
    ]


async def test_a_revocation_hides_the_data_on_the_very_next_query(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    key = await partner(db, hotline, Role.INTAKE)
    survivor = await screened(settings, db, key)
    directive = await grant(
        settings, db, key, survivor, grantee={"org_id": hotline.org_id}, categories=["identity"], **window()
    )
    query = "query($id: ID!) { survivor(id: $id, purpose: SERVICE_DELIVERY) { identity { givenName } } }"
    _, seen = await call(settings, key, query, {"id": str(survivor)})
    assert seen["data"]["survivor"]["identity"]["givenName"] == "Maria"

    _, revoked = await call(
        settings,
        key,
        "mutation($s: ID!, $d: ID!) { revokeConsent(survivorId: $s, directiveId: $d) { commandId } }",
        {"s": str(survivor), "d": directive},
    )
    assert not revoked.get("errors"), revoked
    _, after = await call(settings, key, query, {"id": str(survivor)})

    assert after["data"]["survivor"]["identity"] is None
    assert codes(after) == ["CONSENT_REQUIRED"]


async def test_two_organisations_never_see_each_others_inbox_or_referrals(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    first, second = (organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER) for _ in range(2))
    intake = await partner(db, hotline, Role.INTAKE)
    keys = {org.org_id: await partner(db, org, Role.CASEWORKER) for org in (first, second)}
    survivor = await referrable(settings, db, intake, first, hotline, second)
    _, made = await call(settings, intake, REFER, {"r": referral(survivor, first.org_id)})
    assert not made.get("errors"), made
    inbox = "{ inbox(first: 10) { edges { node { id recipientOrg survivorId } } pageInfo { hasNextPage } } }"

    async def arrived() -> bool:
        _, body = await call(settings, keys[first.org_id], inbox)
        return bool(body["data"]["inbox"]["edges"])

    await eventually(arrived)
    _, mine = await call(settings, keys[first.org_id], inbox)
    _, theirs = await call(settings, keys[second.org_id], inbox)
    assert [e["node"]["recipientOrg"] for e in mine["data"]["inbox"]["edges"]] == [first.org_id]
    assert theirs["data"]["inbox"]["edges"] == [], "nothing addressed to another organisation"
    pathway = "query($id: ID!) { survivor(id: $id, purpose: SERVICE_DELIVERY) { referrals { recipientOrg } } }"
    _, outsider = await call(settings, keys[second.org_id], pathway, {"id": str(survivor)})
    _, nobody = await call(settings, keys[second.org_id], pathway, {"id": str(uuid4())})
    assert outsider["data"] == nobody["data"] == {"survivor": None}, "another organisation's survivor stays hidden"
    assert (
        [e["extensions"] for e in outsider["errors"]]
        == [e["extensions"] for e in nobody["errors"]]
        == [{"code": "FORBIDDEN", "reason": "not_in_care_team"}]
    ), "and is answered exactly as a survivor who does not exist"
    assert outsider["errors"][0]["message"] == nobody["errors"][0]["message"]


@st.composite
def directive_sets(draw: st.DrawFn, org_id: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    found = []
    for _ in range(draw(st.integers(0, 3))):
        start = now + timedelta(hours=draw(st.integers(-48, 24)))
        found.append(
            {
                "directive_id": str(uuid4()),
                "version": 1,
                "recorded_by": "city-hotline",
                "grantee": draw(
                    st.sampled_from([{"org_id": org_id}, {"org_type": "shelter"}, {"org_type": "hotline"}])
                ),
                "categories": draw(st.lists(st.sampled_from([c.value for c in Category]), min_size=1, unique=True)),
                "purposes": draw(st.lists(st.sampled_from([p.value for p in Purpose]), min_size=1, unique=True)),
                "valid_from": start.isoformat(),
                "valid_until": (start + timedelta(hours=draw(st.integers(1, 96)))).isoformat(),
                "effect": draw(st.sampled_from(["permit", "deny"])),
            }
        )
    return found


class World:
    """One shelter, one survivor, set up once for the property test."""

    survivor: UUID
    org_id: str
    keys: dict[Role, str]


@pytest.fixture(scope="module")
def world(services: dict[str, ServiceProcess]) -> World:
    async def setup() -> World:
        settings = Settings()
        pool = await create_pool(settings)
        try:
            w = World()
            hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
            shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
            intake = await partner(pool, hotline, Role.INTAKE)
            await partner(pool, shelter, Role.CASEWORKER)
            w.survivor = await screened(settings, pool, intake)
            w.org_id = shelter.org_id
            async with pool.acquire() as conn:
                w.keys = {
                    role: await create_key(conn, shelter.org_id, role) for role in Role if role is not Role.OVERSIGHT
                }
            w.keys[Role.OVERSIGHT] = await partner(pool, organisation(OrgType.OVERSIGHT_BODY), Role.OVERSIGHT)
            return w
        finally:
            await pool.close()

    return asyncio.run(setup())


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_gateway_returns_a_field_if_and_only_if_decide_permits_it(world: World, data: st.DataObject) -> None:
    directives = data.draw(directive_sets(world.org_id))
    role = data.draw(st.sampled_from(list(Role)))
    purpose = data.draw(st.sampled_from(list(Purpose)))

    async def check() -> None:
        settings = Settings()
        pool = await create_pool(settings)
        try:
            await pool.execute("DELETE FROM gateway.consent_directives WHERE survivor_id = $1", world.survivor)
            for d in directives:
                await pool.execute(
                    "INSERT INTO gateway.consent_directives (survivor_id, directive_id, version, directive)"
                    " VALUES ($1, $2, 1, $3)",
                    world.survivor,
                    UUID(d["directive_id"]),
                    d,
                )
            _, body = await call(
                settings, world.keys[role], PATHWAY, {"id": str(world.survivor), "purpose": purpose.name}
            )
        finally:
            await pool.close()
        if role not in (Role.CASEWORKER, Role.INTAKE):
            assert body["data"]["survivor"] is None
            assert codes(body) == ["FORBIDDEN"]
            return
        records = [ConsentRecord(Directive.model_validate(d)) for d in directives]
        party = Party(world.org_id, OrgType.SHELTER)
        shown = body["data"]["survivor"]
        now = datetime.now(UTC)
        if not any(decide(records, party, c, purpose, now).permitted for c in Category):
            # Not in the care team and shares nothing with it: answered as if the survivor did not exist.
            assert shown is None
            assert [e["extensions"].get("reason") for e in body["errors"]] == ["not_in_care_team"]
            return
        for field, category in FIELD_CATEGORY.items():
            permitted = decide(records, party, category, purpose, now).permitted
            assert (shown[field] is not None) == permitted, (field, category, purpose, directives)

    asyncio.run(check())


async def test_tampering_with_the_audit_log_is_detected(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    key = await partner(db, hotline, Role.INTAKE)
    survivor = await screened(settings, db, key)
    await grant(settings, db, key, survivor, grantee={"org_id": hotline.org_id}, categories=["identity"], **window())
    query = "query($id: ID!) { survivor(id: $id, purpose: SERVICE_DELIVERY) { identity { givenName } } }"
    for _ in range(3):
        await call(settings, key, query, {"id": str(survivor)})
    rows = await db.fetch("SELECT * FROM gateway.audit_log WHERE survivor_id = $1 ORDER BY seq", survivor)
    assert len(rows) == 3, "one record per read"

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / "bin" / "haven"), "audit", "verify"], capture_output=True, text=True)

    assert (await asyncio.to_thread(verify)).returncode == 0
    middle = rows[1]
    await db.execute("UPDATE gateway.audit_log SET purpose = 'statistics' WHERE seq = $1", middle["seq"])
    edited = await asyncio.to_thread(verify)
    await db.execute("UPDATE gateway.audit_log SET purpose = $2 WHERE seq = $1", middle["seq"], middle["purpose"])
    await db.execute("DELETE FROM gateway.audit_log WHERE seq = $1", middle["seq"])
    deleted = await asyncio.to_thread(verify)
    await db.execute(
        "INSERT INTO gateway.audit_log SELECT $1::bigint, $2, $3, $4, $5, $6, $7, $8, $9",
        *[
            middle[k]
            for k in ("seq", "at", "org_id", "role", "survivor_id", "categories", "purpose", "prev_hash", "hash")
        ],
    )
    assert edited.returncode == 1
    assert f"BROKEN at record {middle['seq']}: this record was edited" in edited.stdout
    assert deleted.returncode == 1
    assert "deleted or changed" in deleted.stdout
    assert (await asyncio.to_thread(verify)).returncode == 0, "restored, intact again"


async def test_hostile_requests_are_refused_with_clear_errors(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    key = await partner(db, organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL), Role.INTAKE)
    deep = "{ inbox { edges { node" + " { parent" * 10 + " { id }" + " }" * 10 + " } } }"
    _, depth = await call(settings, key, deep)
    aliases = "{ " + " ".join(f"a{i}: me {{ orgId }}" for i in range(30)) + " }"
    _, flood = await call(settings, key, aliases)
    batch_status, batch = await call(settings, key, "", raw=json.dumps([{"query": "{ me { orgId } }"}] * 50))
    big_status, big = await call(settings, key, "", raw=json.dumps({"query": "{ me { orgId } }", "pad": "x" * 70_000}))
    _, anonymous = await call(settings, None, "{ me { orgId } }")
    _, broken = await call(settings, key, "{ me { orgId ")
    keys_before = await db.fetchval("SELECT count(*) FROM keyring.data_keys")
    bad_intake = screening(identity__documents=[{"kind": "stolen", "number": "P1"}])
    _, invalid = await call(settings, key, SCREEN, {"s": bad_intake})
    not_in_schema = screening()
    not_in_schema["identity"]["dateOfBirth"] = "31/12/1990"
    not_in_schema["screenerOrg"] = "someone-else"
    _, untyped = await call(settings, key, SCREEN, {"s": not_in_schema})
    keys_after = await db.fetchval("SELECT count(*) FROM keyring.data_keys")

    assert "exceeds maximum operation depth" in depth["errors"][0]["message"]
    assert "aliases" in flood["errors"][0]["message"].lower()
    assert batch_status == 400
    assert codes(batch) == ["BATCH_NOT_ALLOWED"]
    assert big_status == 413
    assert codes(big) == ["REQUEST_TOO_LARGE"]
    assert codes(anonymous) == ["UNAUTHENTICATED"]
    assert "Syntax Error" in broken["errors"][0]["message"]
    assert codes(invalid) == ["VALIDATION_FAILED"], "the contract's model validates what the schema lets through"
    fields = {p["field"] for p in invalid["errors"][0]["extensions"]["problems"]}
    assert "identity.documents.0.kind" in fields
    assert set(codes(untyped)) == {"GRAPHQL_VALIDATION_FAILED"}, "the schema refuses what it does not describe"
    said = " ".join(e["message"] for e in untyped["errors"])
    assert "'screenerOrg'" in said, "the screener is the caller: the input has no such field"
    assert "'31/12/1990'" in said, "a date that is not one is named"
    assert "Date" in said, "with the type it should have"
    assert keys_after == keys_before, "an invalid intake creates no key and sends nothing"
    everything = json.dumps([depth, flood, batch, big, anonymous, broken])
    assert "Traceback" not in everything, "never a stack trace"
    assert "SELECT" not in everything, "never SQL"


async def test_a_new_referral_reaches_the_recipients_subscription(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    intake = await partner(db, hotline, Role.INTAKE)
    caseworker = await partner(db, shelter, Role.CASEWORKER)
    survivor = await referrable(settings, db, intake, shelter, hotline)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            url(settings, "ws"), protocols=["graphql-transport-ws"], headers={"Authorization": f"Bearer {caseworker}"}
        ) as ws,
    ):
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "subscription { inbox { id referralType recipientOrg } }"},
            }
        )
        await asyncio.sleep(0.3)
        _, sent = await call(settings, intake, REFER, {"r": referral(survivor, shelter.org_id)})
        # Nothing polls: this arrives by the projection's NOTIFY, and how fast
        # is measured by `make bench` (latency stage), never here.
        message = await ws.receive_json(timeout=30)

    assert message["type"] == "next", message
    assert message["payload"]["data"]["inbox"]["id"] == sent["data"]["requestReferral"]["referralId"]
    assert message["payload"]["data"]["inbox"]["recipientOrg"] == shelter.org_id


async def test_an_oidc_token_from_the_configured_issuer_is_accepted_and_a_forged_one_is_not(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, idp: IdentityProvider
) -> None:
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    await partner(db, shelter, Role.CASEWORKER)
    me = "{ me { orgId role } }"

    _, good = await call(settings, idp.token(shelter.org_id, "caseworker"), me)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _, forged = await call(settings, idp.token(shelter.org_id, "org_admin", key=stranger), me)
    _, elsewhere = await call(settings, idp.token(shelter.org_id, "caseworker", audience="another-app"), me)
    _, expired = await call(settings, idp.token(shelter.org_id, "caseworker", expires_in=-60), me)

    assert good["data"]["me"] == {"orgId": shelter.org_id, "role": "CASEWORKER"}
    assert codes(forged) == codes(elsewhere) == codes(expired) == ["UNAUTHENTICATED"]


async def test_production_mode_serves_only_persisted_queries_without_introspection(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, tmp_path: Path
) -> None:
    me, introspection = "{ me { orgId } }", "{ __schema { types { name } } }"
    key = await partner(db, organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL), Role.INTAKE)
    production, endpoint = await production_gateway(tmp_path, 1, [me, introspection], HAVEN_RATE_PER_SECOND="0.5",
                                                    HAVEN_RATE_BURST="4")  # fmt: skip

    def persisted_body(query: str) -> str:
        return json.dumps({"extensions": persisted(query)})

    try:
        _, served = await call(settings, key, "", raw=persisted_body(me), endpoint=endpoint)
        _, free_form = await call(settings, key, "{ directory { orgId } }", endpoint=endpoint)
        _, schema = await call(settings, key, "", raw=persisted_body(introspection), endpoint=endpoint)
        statuses = [(await call(settings, key, "", raw=persisted_body(me), endpoint=endpoint))[0] for _ in range(3)]
    finally:
        await asyncio.to_thread(production.stop)

    assert served["data"]["me"]["orgId"].startswith("hotline-")
    assert codes(free_form) == ["PERSISTED_QUERY_REQUIRED"]
    assert schema.get("data") is None
    assert "introspection" in schema["errors"][0]["message"].lower()
    assert statuses[-1] == 429, "the key's burst of 4 is spent: rate limited"


async def test_replay_rebuilds_the_read_model_from_the_topics(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    key = await partner(db, organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL), Role.INTAKE)
    await screened(settings, db, key)
    # Only tables fed by events alone: the property test writes consent rows straight into the read model.
    tables = ("survivors", "referrals", "transitions")

    async def counts() -> dict[str, int]:
        return {t: await db.fetchval(f"SELECT count(*) FROM gateway.{t}") for t in tables}

    before = await counts()
    replayed = await asyncio.to_thread(
        subprocess.run,
        [str(ROOT / "bin" / "haven"), "replay", "--workers", "2"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert replayed.returncode == 0, replayed.stderr
    assert "with 2 worker(s)" in replayed.stderr, "the partitions were shared between two processes"
    after = await counts()
    assert after["survivors"] >= before["survivors"] > 0
    assert {t: after[t] >= before[t] for t in tables} == dict.fromkeys(tables, True), (before, after)


async def test_every_command_is_answered_refused_with_its_code_or_applied_and_only_to_its_sender(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    clinic = organisation(OrgType.LEGAL_CLINIC, ReferralType.LEGAL_AID)
    intake = await partner(db, hotline, Role.INTAKE)
    caseworker = await partner(db, shelter, Role.CASEWORKER)
    await partner(db, clinic, Role.CASEWORKER)
    survivor = await referrable(settings, db, intake, shelter, hotline, clinic)
    _, refused = await call(settings, intake, REFER, {"r": referral(survivor, clinic.org_id), "w": 10_000})
    _, applied = await call(settings, intake, REFER, {"r": referral(survivor, shelter.org_id), "w": 10_000})
    _, too_long = await call(settings, intake, REFER, {"r": referral(survivor, shelter.org_id), "w": 60_000})

    answer = refused["data"]["requestReferral"]
    assert answer["outcome"]["status"] == "REFUSED", answer
    assert (answer["outcome"]["code"], answer["outcome"]["field"]) == ("service_not_offered", "referralType")
    assert applied["data"]["requestReferral"]["outcome"] == {"status": "APPLIED", "code": None, "field": None,
                                                               "message": None}  # fmt: skip
    assert codes(too_long) == ["BAD_INPUT"], "wait is capped"
    lookup = "query($id: ID!) { command(id: $id) { status code } }"
    command_id = answer["commandId"]
    _, mine = await call(settings, intake, lookup, {"id": command_id})
    _, theirs = await call(settings, caseworker, lookup, {"id": command_id})
    assert mine["data"]["command"] == {"status": "REFUSED", "code": "service_not_offered"}
    assert theirs["data"]["command"] is None, "only the sender's organisation reads its outcomes"

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url(settings, "ws"), protocols=["graphql-transport-ws"],
                           headers={"Authorization": f"Bearer {caseworker}"}) as ws,
    ):  # fmt: skip
        await ws.send_json({"type": "connection_init"})
        await ws.receive_json(timeout=5)
        await ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": "subscription { commandOutcomes { commandId status code } }"},
            }
        )
        await asyncio.sleep(0.3)
        _, moved = await call(
            settings,
            caseworker,
            "mutation($id: ID!, $s: ID!) { moveReferral(referralId: $id, survivorId: $s, move: {accept: {}}) {"
            " commandId } }",
            {"id": str(uuid4()), "s": str(survivor)},
        )
        pushed = await ws.receive_json(timeout=30)
    assert pushed["payload"]["data"]["commandOutcomes"] == {
        "commandId": moved["data"]["moveReferral"]["commandId"], "status": "REFUSED", "code": "unknown_referral"
    }  # fmt: skip
    dead = await read_to_end(settings, "haven.referrals.commands.dlq")
    assert command_id not in {dict(m.headers).get("ce_id", b"").decode() for m in dead}, "refusals are not dead letters"


async def test_an_intake_worker_finds_who_can_take_someone_before_any_consent(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    women = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER, eligibility={"genders": ["female"]})
    anyone = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    intake = await partner(db, organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL), Role.INTAKE)
    for org, places in ((women, 2), (anyone, 5)):
        await partner(db, org, Role.CASEWORKER)
        await announce_capacity(producer, org, ReferralType.EMERGENCY_SHELTER, CapacityStatus.CAPACITY, places)

    async def capacity_known() -> bool:
        n = await db.fetchval(
            "SELECT count(*) FROM gateway.organisations WHERE org_id = ANY($1) AND capacity <> '{}'"
            " AND profile IS NOT NULL",  # the profile and the capacity travel on different keys: either may be first
            [women.org_id, anyone.org_id],
        )
        return bool(n == 2)

    await eventually(capacity_known)
    search = "query($g: Gender!) { providers(service: EMERGENCY_SHELTER, gender: $g) { orgId status available } }"

    async def found(gender: str) -> list[str]:
        _, body = await call(settings, intake, search, {"g": gender})
        assert not body.get("errors"), body
        return [o["orgId"] for o in body["data"]["providers"] if o["orgId"] in (women.org_id, anyone.org_id)]

    assert await found("MALE") == [anyone.org_id], "a women-only shelter is not offered for a man"
    assert await found("FEMALE") == [anyone.org_id, women.org_id], "more places first"
    _, bad = await call(settings, intake, "{ providers(service: BEDS) { orgId } }")
    assert codes(bad) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "ReferralType" in bad["errors"][0]["message"], "the message names the enum to choose from"


REGISTER = "mutation($u: String!, $e: [String!]!) { registerWebhook(url: $u, events: $e) { secret endpoint { id } } }"
DELIVERIES = "{ webhooks { url deliveries { eventType status attempts log { statusCode } } } }"


async def test_a_partner_without_a_websocket_hears_of_its_referrals_by_a_signed_webhook_retried_until_delivered(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    intake = await partner(db, hotline, Role.INTAKE)
    caseworker = await partner(db, shelter, Role.CASEWORKER)
    async with db.acquire() as conn:
        admin = await create_key(conn, shelter.org_id, Role.ORG_ADMIN)
    async with webhook_receiver(down_for=1) as hook:  # the partner's system is down for the first attempt
        _, plain = await call(settings, admin, REGISTER, {"u": "http://example.org/haven", "e": ["referral.requested"]})
        _, not_admin = await call(settings, caseworker, REGISTER, {"u": hook.url,
                                                                   "e": ["referral.requested"]})  # fmt: skip
        _, registered = await call(settings, admin, REGISTER, {"u": hook.url,
                                                               "e": ["referral.requested"]})  # fmt: skip
        assert codes(plain) == ["BAD_INPUT"], "only https (loopback http in a local stack)"
        assert codes(not_admin) == ["FORBIDDEN"]
        secret = registered["data"]["registerWebhook"]["secret"]
        survivor = await referrable(settings, db, intake, shelter, hotline)
        ask = referral(survivor, shelter.org_id, note="she speaks Tagalog")
        _, made = await call(settings, intake, REFER, {"r": ask})

        async def delivered() -> bool:
            return bool(hook.received)

        await eventually(delivered, timeout=45)
    body, headers = hook.received[0]
    payload = Webhook(secret).verify(body, headers)  # raises unless signed with this endpoint's secret
    assert payload["type"] == "referral.requested"
    assert payload["data"]["referral_id"] == made["data"]["requestReferral"]["referralId"]
    assert payload["data"]["recipient_org"] == shelter.org_id
    assert b"Tagalog" not in body, "ids and codes only: the partner fetches the rest through GraphQL"
    assert b"Maria" not in body
    _, log = await call(settings, admin, DELIVERIES)
    (hook,) = log["data"]["webhooks"]
    (delivery,) = hook["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("DELIVERED", 2)
    assert [a["statusCode"] for a in delivery["log"]] == [503, 204], "the failed attempt is logged, then retried"


async def test_a_fhir_system_reads_its_referrals_as_tasks_that_validate_and_each_read_is_audited(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.task import Task

    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    stranger = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    intake = await partner(db, hotline, Role.INTAKE)
    caseworker = await partner(db, shelter, Role.CASEWORKER)
    outsider = await partner(db, stranger, Role.CASEWORKER)
    survivor = await referrable(settings, db, intake, shelter, hotline)
    _, made = await call(settings, intake, REFER, {"r": referral(survivor, shelter.org_id), "w": 10_000})
    made_id = made["data"]["requestReferral"]["referralId"]
    base = url(settings).removesuffix("/graphql")

    async def get(key: str | None, path: str) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with aiohttp.ClientSession() as session, session.get(base + path, headers=headers) as response:
            assert response.content_type == "application/fhir+json"
            return response.status, await response.json()

    states = {}
    for step, fields in ((None, {}), ("receive", {}), ("reject", {"reason": "ineligible"})):
        if step:
            _, moved = await call(
                settings, caseworker, MOVE, {"id": made_id, "s": str(survivor), "m": move(step, **fields), "w": 10_000}
            )
            assert moved["data"]["moveReferral"]["outcome"]["status"] == "APPLIED", moved

            async def projected(step: str = step) -> bool:
                status = await db.fetchval("SELECT status FROM gateway.referrals WHERE referral_id = $1",
                                           UUID(made_id))  # fmt: skip
                return bool(status == {"receive": "received", "reject": "rejected"}[step])

            await eventually(projected)
        status, body = await get(caseworker, f"/fhir/Task/{made_id}")
        assert status == 200, body
        states[step] = Task.model_validate(body)  # every Task we serve validates as FHIR R4
    assert states[None].status == "requested"
    received = states["receive"]
    assert received.status == "requested", "received is not in the IG's referral task status set"
    assert received.businessStatus is not None
    assert received.businessStatus.coding[0].code == "received"  # type: ignore[index]
    assert states["reject"].status == "rejected"
    assert states["reject"].statusReason.text == "ineligible"  # type: ignore[union-attr]

    found, bundle = await get(intake, f"/fhir/Task?owner=Organization/{shelter.org_id}&status=rejected")
    searched = Bundle.model_validate(bundle)
    assert found == 200
    assert [e.resource.id for e in searched.entry or []] == [made_id]  # type: ignore[union-attr]
    not_party, _ = await get(outsider, f"/fhir/Task/{made_id}")
    nobody, _ = await get(outsider, f"/fhir/Task/{uuid4()}")
    anonymous, _ = await get(None, f"/fhir/Task/{made_id}")
    assert (not_party, nobody, anonymous) == (404, 404, 401), "a non-party hears what an unknown id gets"
    reads = await db.fetch("SELECT org_id, categories FROM gateway.audit_log WHERE survivor_id = $1", survivor)
    assert {(r["org_id"], tuple(r["categories"])) for r in reads} == {
        (shelter.org_id, ("case_status",)),
        (hotline.org_id, ("case_status",)),
    }, "every Task read is in the access ledger"


async def test_the_care_team_lists_a_survivors_directives_and_no_one_else_can(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    intake = await partner(db, hotline, Role.INTAKE)
    stranger = await partner(db, shelter, Role.CASEWORKER)
    survivor = await screened(settings, db, intake)
    directive = await grant(settings, db, intake, survivor, grantee={"org_id": shelter.org_id},
                            categories=["contact"], **window())  # fmt: skip
    listing = "query($s: ID!) { consents(survivorId: $s) { id granteeOrgId categories revokedAt } }"

    _, mine = await call(settings, intake, listing, {"s": str(survivor)})
    _, theirs = await call(settings, stranger, listing, {"s": str(survivor)})

    assert mine["data"]["consents"] == [
        {"id": directive, "granteeOrgId": shelter.org_id, "categories": ["CONTACT"], "revokedAt": None}
    ]
    assert theirs["data"] is None, "even the grantee is not told what else the survivor shares"
    assert [e["extensions"].get("reason") for e in theirs["errors"]] == ["not_in_care_team"]
    reads = await db.fetch("SELECT org_id, categories FROM gateway.audit_log WHERE survivor_id = $1", survivor)
    assert [(r["org_id"], list(r["categories"])) for r in reads] == [(hotline.org_id, ["case_status"])], (
        "listing the directives is a read, in the ledger"
    )


async def test_an_org_admin_makes_and_revokes_its_own_keys_and_no_one_elses(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    ours, theirs = (organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER) for _ in range(2))
    admin = await partner(db, ours, Role.ORG_ADMIN)
    other_admin = await partner(db, theirs, Role.ORG_ADMIN)
    create = "mutation($r: Role!, $l: String) { createApiKey(role: $r, label: $l) { key apiKey { id role label } } }"
    revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }"
    me = "{ me { orgId role } }"

    _, made = await call(settings, admin, create, {"r": "CASEWORKER", "l": "night desk"})
    new = made["data"]["createApiKey"]
    _, works = await call(settings, new["key"], me)
    _, listed = await call(settings, admin, "{ apiKeys { id role label revokedAt } }")
    _, oversight = await call(settings, admin, create, {"r": "OVERSIGHT"})
    _, by_caseworker = await call(settings, new["key"], create, {"r": "ORG_ADMIN"})
    _, by_stranger = await call(settings, other_admin, revoke, {"id": new["apiKey"]["id"]})
    _, still = await call(settings, new["key"], me)
    _, revoked = await call(settings, admin, revoke, {"id": new["apiKey"]["id"]})
    _, after = await call(settings, new["key"], me)

    assert works["data"]["me"] == {"orgId": ours.org_id, "role": "CASEWORKER"}
    assert {"id": new["apiKey"]["id"], "role": "CASEWORKER", "label": "night desk", "revokedAt": None} in listed[
        "data"]["apiKeys"]  # fmt: skip
    assert new["key"] not in json.dumps(listed), "a key is shown once, when made"
    assert codes(oversight) == ["FORBIDDEN"], "only an oversight body holds the oversight role"
    assert codes(by_caseworker) == ["FORBIDDEN"]
    assert codes(by_stranger) == ["BAD_INPUT"], "another organisation's key is answered as one that does not exist"
    assert still["data"]["me"]["orgId"] == ours.org_id
    assert revoked["data"]["revokeApiKey"]["revokedAt"]
    assert codes(after) == ["UNAUTHENTICATED"]
