"""Authority on the write side, on the real stack: only a survivor's care team records consent, revokes it,
refers, or reads the ledger — through the gateway and through commands sent straight to Kafka alike."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from gateway.api.inputs import variables
from gateway.auth import Role, create_key, hash_key
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from events.catalog import CONSENT_COMMANDS, REFERRALS_COMMANDS
from events.consent import Directive, GrantConsent, Grantee, OrgType, RevokeConsent
from events.directory import Organisation
from events.needs import ReferralType
from events.referrals import OPEN, RejectionReason, RequestReferral
from services.kernel import kafka
from services.kernel.db import Pool, create_pool
from services.kernel.settings import Settings
from tests.support.consent import shelter_directive
from tests.support.gateway import (
    GRANT,
    MOVE,
    REFER,
    call,
    grant,
    move,
    partner,
    persisted,
    production_gateway,
    referral,
    screened,
    url,
    window,
)
from tests.support.intakes import send
from tests.support.observe import eventually, read_to_end
from tests.support.partners import organisation
from tests.support.processes import ServiceProcess, running
from tests.support.referrals import refusals_for

REVOKE = "mutation($s: ID!, $d: ID!) { revokeConsent(survivorId: $s, directiveId: $d) { commandId } }"
LEDGER = "query($s: ID!) { accessLedger(survivorId: $s) { orgId categories } }"
CONTACT = "query($id: ID!) { survivor(id: $id, purpose: SERVICE_DELIVERY) { contact { phone } } }"
WRITERS = (Role.INTAKE, Role.CASEWORKER)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    gateway = {"HAVEN_KEY_RECHECK_SECONDS": "5", "HAVEN_ADDRESS_BURST": "5000", "HAVEN_RATE_BURST": "200"}
    yield from running(logs, ("identification", "consent", "referrals", "gateway"), gateway)


def refusal(body: dict[str, Any]) -> tuple[str, str | None]:
    """The code and reason of a refused call's one error."""
    (error,) = body["errors"]
    return error["extensions"]["code"], error["extensions"].get("reason")


NOT_IN_CARE_TEAM = ("FORBIDDEN", "not_in_care_team")


def consent(**fields: Any) -> dict[str, Any]:
    """A ``DirectiveInput`` valid from five minutes ago for thirty days, with ``fields``."""
    return variables(Directive, window(**fields))


async def commands_from(settings: Settings, topic: str, org: str) -> list[Any]:
    """Every command on ``topic`` (read to its end) that ``org`` sent as the actor."""
    found = []
    for m in await read_to_end(settings, topic):
        data = json.loads(m.value)  # raw JSON: whatever version or shape a record has, it is read
        actor = data.get("referrer_org") or data.get("revoked_by") or data.get("directive", {}).get("recorded_by")
        if actor == org:
            found.append(data)
    return found


async def test_each_write_side_attack_is_refused_with_its_code_and_nothing_is_sent(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    stranger = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    intake = await partner(db, hotline, Role.INTAKE)
    shelter_key = await partner(db, shelter, Role.CASEWORKER)
    outsider = await partner(db, stranger, Role.CASEWORKER)
    survivor = await screened(settings, db, intake)
    directive = await grant(settings, db, intake, survivor, grantee={"org_id": shelter.org_id},
                            categories=["contact", "case_status"], **window())  # fmt: skip
    sid = str(survivor)

    # A stranger grants itself consent and reads: refused, and told nothing about the survivor.
    _, self_grant = await call(
        settings,
        outsider,
        GRANT,
        {"s": sid, "d": consent(grantee={"org_id": stranger.org_id}, categories=["identity", "narrative"])},
    )
    _, read = await call(settings, outsider, CONTACT, {"id": sid})
    assert refusal(self_grant) == refusal(read) == NOT_IN_CARE_TEAM
    # A member cannot dictate who recorded it, its version, or the child rule.
    for forged in ({"recordedBy": shelter.org_id}, {"version": 7}, {"subjectIsMinor": False}):
        _, body = await call(
            settings,
            intake,
            GRANT,
            {"s": sid, "d": {**consent(grantee={"org_id": hotline.org_id}, categories=["identity"]), **forged}},
        )
        assert refusal(body)[0] == "GRAPHQL_VALIDATION_FAILED", "the input type has no such field"
        assert f"'{next(iter(forged))}'" in body["errors"][0]["message"], "and the message names it"
    _, unknown = await call(
        settings,
        intake,
        GRANT,
        {
            "s": sid,
            "d": consent(grantee={"org_id": hotline.org_id}, categories=["identity"], directive_id=str(uuid4())),
        },
    )
    assert refusal(unknown)[0] == "BAD_INPUT", "a directive id must name this survivor's directive"
    # A stranger revokes another organisation's directive, refers the survivor, reads the ledger.
    _, revoked = await call(settings, outsider, REVOKE, {"s": sid, "d": directive})
    _, referred = await call(settings, outsider, REFER, {"r": referral(sid, shelter.org_id)})
    _, ledger = await call(settings, outsider, LEDGER, {"s": sid})
    assert refusal(revoked) == refusal(referred) == refusal(ledger) == NOT_IN_CARE_TEAM
    _, still = await call(settings, shelter_key, CONTACT, {"id": sid})
    assert still["data"]["survivor"]["contact"]["phone"], "the shelter still sees what the survivor shared with it"

    assert await db.fetchval(
        "SELECT revoked_at FROM gateway.consent_directives WHERE directive_id = $1", UUID(directive)
    ) is None  # fmt: skip
    assert await commands_from(settings, CONSENT_COMMANDS.name, stranger.org_id) == [], "no grant or revoke sent"
    assert await commands_from(settings, REFERRALS_COMMANDS.name, stranger.org_id) == [], "no referral sent"


async def test_ledgers_by_role_auditors_their_own_reads_oversight_every_read(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    elsewhere = organisation(OrgType.LEGAL_CLINIC, ReferralType.LEGAL_AID)
    watchdog = organisation(OrgType.OVERSIGHT_BODY)
    intake = await partner(db, hotline, Role.INTAKE)
    shelter_key = await partner(db, shelter, Role.CASEWORKER)
    other_auditor = await partner(db, elsewhere, Role.AUDITOR)
    oversight = await partner(db, watchdog, Role.OVERSIGHT)
    async with db.acquire() as conn:
        shelter_auditor = await create_key(conn, shelter.org_id, Role.AUDITOR)
        with pytest.raises(ValueError, match="oversight body"):
            await create_key(conn, shelter.org_id, Role.OVERSIGHT)
    survivor = await screened(settings, db, intake)
    await grant(settings, db, intake, survivor, grantee={"org_type": "shelter"}, categories=["contact"], **window())
    await grant(settings, db, intake, survivor, grantee={"org_id": hotline.org_id}, categories=["contact"], **window())
    for key in (intake, shelter_key):
        _, body = await call(settings, key, CONTACT, {"id": str(survivor)})
        assert body["data"]["survivor"]["contact"]["phone"]

    async def ledger(key: str) -> list[str]:
        _, body = await call(settings, key, LEDGER, {"s": str(survivor)})
        assert not body.get("errors"), body
        return sorted(r["orgId"] for r in body["data"]["accessLedger"])

    assert await ledger(intake) == sorted([hotline.org_id, shelter.org_id]), "the care team sees every read"
    assert await ledger(shelter_auditor) == [shelter.org_id], "an auditor sees its own organisation's reads"
    assert await ledger(other_auditor) == [], "and nothing of anyone else's"
    assert await ledger(oversight) == sorted([hotline.org_id, shelter.org_id]), "oversight sees every read"
    _, chain = await call(settings, oversight, "{ auditChain { intact records } }")
    assert chain["data"]["auditChain"]["intact"]
    assert chain["data"]["auditChain"]["records"] >= 2
    _, data = await call(settings, oversight, CONTACT, {"id": str(survivor)})
    assert refusal(data)[0] == "FORBIDDEN", "oversight never reads survivor data"


# ---------------------------------------------------------------- the care-team property


@dataclass
class Partners:
    """One hotline that screens, providers that may join a care team, and a stranger; a key per role each."""

    hotline: Organisation
    providers: list[Organisation]
    stranger: Organisation
    sink: Organisation  # receives the referrals the callers make, so no caller joins a care team mid-test
    keys: dict[tuple[str, Role], str] = field(default_factory=dict)

    @property
    def everyone(self) -> list[Organisation]:
        return [self.hotline, *self.providers, self.stranger]


FATES = ("open", "accepted_then_cancelled", "rejected")
"""What happens to a referral: it stays open, it was accepted and closed (members for the grace period),
or it was rejected without ever being accepted (not members)."""


@pytest.fixture(scope="module")
def partners(services: dict[str, ServiceProcess]) -> Partners:
    async def setup() -> Partners:
        pool = await create_pool(Settings())
        try:
            shelters = [organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER) for _ in range(3)]
            found = Partners(organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL), shelters,
                             organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER),
                             organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER))  # fmt: skip
            await partner(pool, found.sink, Role.CASEWORKER)
            for org in found.everyone:
                await partner(pool, org, Role.CASEWORKER)
                async with pool.acquire() as conn:
                    for role in (Role.INTAKE, Role.CASEWORKER, Role.ORG_ADMIN, Role.AUDITOR):
                        found.keys[(org.org_id, role)] = await create_key(conn, org.org_id, role)

            async def directory_complete() -> bool:
                ids = [o.org_id for o in (*found.everyone, found.sink)]
                n = await pool.fetchval("SELECT count(*) FROM referrals.organisations WHERE org_id = ANY($1)", ids)
                return bool(n == len(ids))

            await eventually(directory_complete)
            return found
        finally:
            await pool.close()

    return asyncio.run(setup())


@dataclass
class Case:
    survivor: UUID
    fates: dict[str, str]  # provider → fate of the hotline's referral to it
    revocable: str = ""  # a directive no referral depends on, for the revocations under test

    def members(self, hotline: str) -> set[str]:
        return {hotline} | {p for p, fate in self.fates.items() if fate != "rejected"}


async def settled(settings: Settings, db: Pool, partners: Partners, rng: random.Random) -> Case:
    """A survivor screened by the hotline, with referrals to a random set of providers, each to its fate."""
    intake = partners.keys[(partners.hotline.org_id, Role.INTAKE)]
    survivor = await screened(settings, db, intake)
    case = Case(survivor, {p.org_id: rng.choice(FATES) for p in rng.sample(partners.providers, rng.randint(0, 3))})
    await grant(settings, db, intake, survivor, grantee={"org_type": "shelter"}, categories=["case_status"],
                **window())  # fmt: skip
    case.revocable = await grant(settings, db, intake, survivor, grantee={"org_type": "hotline"},
                                 categories=["employment"], **window())  # fmt: skip
    for provider, fate in case.fates.items():
        _, made = await call(settings, intake, REFER, {"r": referral(survivor, provider)})
        made_id = UUID(made["data"]["requestReferral"]["referralId"])
        await eventually(lambda r=made_id: referral_known(db, r))
        moves: list[tuple[str, str, dict[str, Any]]] = []  # (who, move, its fields)
        if fate == "accepted_then_cancelled":
            moves = [(provider, "accept", {}), (partners.hotline.org_id, "cancel", {})]
        elif fate == "rejected":
            moves = [(provider, "reject", {"reason": RejectionReason.OTHER})]
        # A shelter referral is received as it is requested (the shelter service takes it in).
        final = {"open": "received", "accepted_then_cancelled": "cancelled", "rejected": "rejected"}[fate]
        for actor, name, fields in moves:
            _, moved = await call(settings, partners.keys[(actor, Role.CASEWORKER)], MOVE,
                                  {"id": str(made_id), "s": str(survivor), "m": move(name, **fields)})  # fmt: skip
            assert not moved.get("errors"), moved
        referral_id = made_id
        try:
            await eventually(lambda r=referral_id, f=final: everyone_knows(db, r, f))
        except AssertionError:
            seen = await db.fetchrow(
                "SELECT (SELECT status FROM gateway.referrals WHERE referral_id = $1) AS gateway,"
                " (SELECT status FROM referrals.referrals WHERE referral_id = $1) AS referrals,"
                " (SELECT open FROM consent.care_links WHERE referral_id = $1) AS consent_open",
                referral_id,
            )
            raise AssertionError(f"{fate}: wanted {final} everywhere, saw {seen}") from None
    return case


async def referral_known(db: Pool, referral: UUID) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM gateway.referrals WHERE referral_id = $1", referral))


async def everyone_knows(db: Pool, referral: UUID, status: str) -> bool:
    """The referral's state has reached each place that decides on the care team."""
    return bool(await db.fetchval(
        "SELECT (SELECT status FROM gateway.referrals WHERE referral_id = $1) = $2"
        " AND (SELECT status FROM referrals.referrals WHERE referral_id = $1) = $2"
        " AND (SELECT open = ($2 = ANY($3::text[])) FROM consent.care_links WHERE referral_id = $1)",
        referral, status, list(OPEN),
    ))  # fmt: skip


@hypothesis_settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.generate],  # no shrinking: each example is a whole stack's work
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rng=st.randoms(use_true_random=False))
def test_write_and_ledger_succeed_exactly_for_the_care_team_through_the_gateway_and_kafka(
    partners: Partners, rng: random.Random
) -> None:
    asyncio.run(_care_team_property(partners, rng))


async def _care_team_property(partners: Partners, rng: random.Random) -> None:
    settings = Settings()
    db = await create_pool(settings)
    producer = AIOKafkaProducer(**kafka.auth(settings), acks="all")
    await producer.start()
    try:
        cases = [await settled(settings, db, partners, rng) for _ in range(2)]
        raw_sent: list[tuple[Case, str, Any]] = []
        for case in cases:
            members = case.members(partners.hotline.org_id)
            for org in partners.everyone:
                role = rng.choice([Role.INTAKE, Role.CASEWORKER, Role.ORG_ADMIN, Role.AUDITOR])
                await _through_gateway(settings, partners, case, org, role, member=org.org_id in members)
                raw_sent.append((case, org.org_id, await _straight_to_kafka(producer, partners, case, org)))
        for case, org_id, sent in raw_sent:
            member = org_id in case.members(partners.hotline.org_id)
            await _decided_in_the_services(settings, db, org_id, sent, member=member)
    finally:
        await producer.stop()
        await db.close()


async def _through_gateway(
    settings: Settings, partners: Partners, case: Case, org: Organisation, role: Role, *, member: bool
) -> None:
    key, sid, recipient = partners.keys[(org.org_id, role)], str(case.survivor), partners.sink.org_id
    calls: dict[str, tuple[str, dict[str, Any]]] = {
        "grant": (GRANT, {"s": sid, "d": consent(grantee={"org_id": org.org_id}, categories=["case_status"])}),
        "refer": (REFER, {"r": referral(sid, recipient, urgency="routine")}),
        "ledger": (LEDGER, {"s": sid}),
    }  # fmt: skip
    for action, (query, values) in calls.items():
        _, body = await call(settings, key, query, values)
        may = role is Role.AUDITOR if action == "ledger" else False
        may = may or (role in WRITERS and member)
        if may:
            assert not body.get("errors"), (action, org.org_id, role, case.fates, body)
        else:
            assert refusal(body)[0] == "FORBIDDEN", (action, org.org_id, role, case.fates, body)
            if role in WRITERS:
                assert refusal(body) == NOT_IN_CARE_TEAM, (action, org.org_id, role, case.fates, body)


async def _straight_to_kafka(producer: AIOKafkaProducer, partners: Partners, case: Case, org: Organisation) -> Any:
    """The same commands sent as a rogue process would, naming ``org`` as the actor."""
    recipient = partners.sink.org_id
    directive = shelter_directive(grantee=Grantee(org_id=org.org_id), recorded_by=org.org_id)
    return await send(
        producer,
        GrantConsent(survivor_id=case.survivor, directive=directive),
        RequestReferral(referral_id=uuid4(), survivor_id=case.survivor, referrer_org=org.org_id,
                        recipient_org=recipient, referral_type=ReferralType.EMERGENCY_SHELTER, urgency="routine"),
        RevokeConsent(survivor_id=case.survivor, directive_id=UUID(case.revocable), revoked_by=org.org_id),
    )  # fmt: skip


async def _decided_in_the_services(settings: Settings, db: Pool, org: str, sent: Any, *, member: bool) -> None:
    grant_, refer_, revoke_ = sent
    if member:

        async def applied() -> bool:
            return bool(await db.fetchval(
                "SELECT (SELECT count(*) FROM consent.directives WHERE directive_id = $1)"
                " + (SELECT count(*) FROM referrals.referrals WHERE referral_id = $2 AND referrer_org = $4)"
                " + (SELECT count(*) FROM consent.directives WHERE directive_id = $3 AND revoked_at IS NOT NULL) = 3",
                grant_.data.directive.directive_id, refer_.data.referral_id, revoke_.data.directive_id, org,
            ))  # fmt: skip

        await eventually(applied)
        return
    consent_refusals = await refusals_for(settings, [grant_, revoke_])
    referral_refusals = await refusals_for(settings, [refer_])
    assert {consent_refusals[grant_.id][0], consent_refusals[revoke_.id][0], referral_refusals[refer_.id][0]} == {
        "not_in_care_team"
    }, org
    assert not await db.fetchval("SELECT 1 FROM consent.directives WHERE directive_id = $1",
                                 grant_.data.directive.directive_id)  # fmt: skip
    assert not await db.fetchval("SELECT 1 FROM referrals.referrals WHERE referral_id = $1", refer_.data.referral_id)
    assert not await db.fetchval("SELECT 1 FROM consent.directives WHERE directive_id = $1 AND revoked_by = $2",
                                 revoke_.data.directive_id, org)  # fmt: skip


def test_a_care_team_lasts_the_grace_period_after_an_accepted_referral_closes() -> None:
    """The rule the property above exercises, at its time boundary (pure: no stack needed)."""
    from events.care import CareLink, in_care_team

    closed = datetime(2026, 11, 1, tzinfo=UTC)
    link = CareLink("city-hotline", "harbour-shelter", open=False, accepted=True, closed_at=closed)
    grace = timedelta(days=30)
    assert in_care_team("harbour-shelter", "city-hotline", [link], closed + grace - timedelta(seconds=1), grace)
    assert not in_care_team("harbour-shelter", "city-hotline", [link], closed + grace, grace)
    never_accepted = CareLink("city-hotline", "harbour-shelter", open=False, accepted=False, closed_at=closed)
    assert not in_care_team("harbour-shelter", "city-hotline", [never_accepted], closed, grace)


# ---------------------------------------------------------------- websockets and the guard

INBOX = {"query": "subscription { inbox { id } }"}


async def subscribed(session: aiohttp.ClientSession, settings: Settings, *, key: str | None = None,
                     init: dict[str, Any] | None = None) -> aiohttp.ClientWebSocketResponse:  # fmt: skip
    """A graphql-transport-ws connection, acknowledged."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    ws = await session.ws_connect(url(settings, "ws"), protocols=["graphql-transport-ws"], headers=headers)
    await ws.send_json({"type": "connection_init", **({"payload": init} if init is not None else {})})
    answer = await ws.receive(timeout=10)
    assert answer.type is aiohttp.WSMsgType.TEXT, answer
    assert json.loads(answer.data)["type"] == "connection_ack"
    return ws


async def test_over_a_websocket_only_subscriptions_are_served_and_the_guard_holds(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    key = await partner(db, organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER), Role.CASEWORKER)
    async with aiohttp.ClientSession() as session:
        ws = await subscribed(session, settings, key=key)
        refused = {}
        for n, query in enumerate(
            ["{ me { orgId } }", 'mutation { providerAction(action: "x", input: {}) { commandId } }']
        ):
            await ws.send_json({"id": str(n), "type": "subscribe", "payload": {"query": query}})
            refused[n] = await ws.receive_json(timeout=10)
        await ws.send_json({"id": "p", "type": "subscribe",
                            "payload": {"query": "subscription { inbox(pollInterval: 0.02) { id } }"}})  # fmt: skip
        poll = await ws.receive_json(timeout=10)
        await ws.send_json({"id": "big", "type": "subscribe", "payload": {"query": "#" + "x" * 70_000}})
        closed = await ws.receive(timeout=10)
        await ws.close()

    assert [(m["type"], m["payload"][0]["extensions"]["code"]) for m in refused.values()] == [
        ("error", "SUBSCRIPTIONS_ONLY")
    ] * 2
    assert poll["type"] == "error", "no client-chosen polling"
    assert "pollInterval" in poll["payload"][0]["message"]
    assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4413), "a message over the size limit closes it"


async def test_a_key_in_connection_init_serves_a_browser_and_a_bad_one_is_refused(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    key = await partner(db, organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER), Role.CASEWORKER)
    async with aiohttp.ClientSession() as session:
        ws = await subscribed(session, settings, init={"authorization": f"Bearer {key}"})
        await ws.send_json({"id": "1", "type": "subscribe", "payload": INBOX})
        with pytest.raises(TimeoutError):
            await ws.receive_json(timeout=1)  # subscribed and quiet: no error came back
        await ws.close()
        bad = await session.ws_connect(url(settings, "ws"), protocols=["graphql-transport-ws"])
        await bad.send_json({"type": "connection_init", "payload": {"apiKey": "hvn_not-a-key"}})
        refused = await bad.receive(timeout=10)
    assert (refused.type, refused.data) == (aiohttp.WSMsgType.CLOSE, 4403)


async def test_a_revoked_key_closes_its_open_subscription_within_30_seconds(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    key = await partner(db, organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER), Role.CASEWORKER)
    async with aiohttp.ClientSession() as session:
        ws = await subscribed(session, settings, key=key)
        await ws.send_json({"id": "1", "type": "subscribe", "payload": INBOX})
        await asyncio.sleep(0.5)
        await db.execute("UPDATE gateway.api_keys SET revoked_at = now() WHERE key_hash = $1", hash_key(key))
        started = time.monotonic()
        closed = await ws.receive(timeout=30)
        waited = time.monotonic() - started
    assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4403), closed
    assert waited < 30


async def transactions(db: Pool) -> int:
    """Committed transactions in the database so far (statistics flushed by every backend first)."""
    total: int = await db.fetchval("SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = current_database()")
    return total


async def test_idle_subscriptions_hold_postgres_load_within_twice_none(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    keys = [await partner(db, organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER), Role.CASEWORKER)
            for _ in range(5)]  # fmt: skip
    window_seconds = 12.0  # longer than PostgreSQL's 10 s idle flush of backend statistics

    async def load() -> int:
        before = await transactions(db)
        await asyncio.sleep(window_seconds)
        return await transactions(db) - before

    await asyncio.sleep(window_seconds)  # let earlier tests' statistics settle
    none = await load()
    async with aiohttp.ClientSession() as session:
        sockets = [await subscribed(session, settings, key=k) for k in keys]
        for ws in sockets:
            for n in range(100):
                await ws.send_json({"id": str(n), "type": "subscribe", "payload": INBOX})
        await asyncio.sleep(window_seconds)  # subscribing itself is not idle load
        idle = await load()
        for ws in sockets:
            assert not ws.closed, "all 500 subscriptions were accepted"
            await ws.close()
    print(
        f"idle PostgreSQL load over {window_seconds:.0f} s: {none} transactions with no subscriptions, {idle} with 500"
    )
    assert idle <= 2 * max(none, 1), f"{idle} transactions with 500 idle subscriptions against {none} with none"


async def test_production_guard_on_get_and_websocket_and_random_tokens_limited_by_address(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, tmp_path: Path
) -> None:
    me, inbox = "{ me { orgId } }", "subscription { inbox { id } }"
    key = await partner(db, organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER), Role.CASEWORKER)
    strict, endpoint = await production_gateway(tmp_path, 2, [me, inbox], HAVEN_ADDRESS_BURST="12",
                                                HAVEN_ADDRESS_RATE_PER_SECOND="0.01")  # fmt: skip

    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as session:
            async with session.get(endpoint, params={"query": "{ directory { orgId } }"}) as r:
                free_get = await r.json()
            async with session.get(endpoint, params={"extensions": json.dumps(persisted(me))}) as r:
                served_get = await r.json()
            ws = await session.ws_connect(endpoint.replace("http", "ws", 1), protocols=["graphql-transport-ws"])
            await ws.send_json({"type": "connection_init"})
            await ws.receive_json(timeout=10)
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "subscription { inbox { id } }"}})
            free_ws = await ws.receive_json(timeout=10)
            await ws.send_json({"id": "2", "type": "subscribe", "payload": {"extensions": persisted(inbox)}})
            with pytest.raises(TimeoutError):
                await ws.receive_json(timeout=1)  # the persisted subscription runs, quietly
            await ws.close()
        statuses = []
        async with aiohttp.ClientSession() as anonymous:
            for _ in range(12):
                headers = {"Authorization": f"Bearer hvn_{uuid4().hex}"}  # a new random token each time
                async with anonymous.post(endpoint, json={"extensions": persisted(me)}, headers=headers) as r:
                    statuses.append(r.status)
    finally:
        await asyncio.to_thread(strict.stop)

    assert free_get["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
    assert served_get["data"]["me"]["orgId"].startswith("shelter-")
    assert (free_ws["type"], free_ws["payload"][0]["extensions"]["code"]) == ("error", "PERSISTED_QUERY_REQUIRED")
    assert statuses[-1] == 429, f"random tokens are limited by the address they come from: {statuses}"


# ---------------------------------------------------------------- every root field, every role, bad arguments

OVERFLOWING_CURSOR = "c2VxOjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ=="  # "seq:99999999999999999999999"
ARGUMENTS: dict[str, list[Any]] = {
    "ID": [str(uuid4()), "not-an-id", ""],
    "String": ["emergency_shelter", "", "x" * 300],
    "Int": [5, -1, 2_000_000_000],
    "Purpose": ["SERVICE_DELIVERY", "LAW_ENFORCEMENT", "STATISTICS"],
    "ReferralType": ["EMERGENCY_SHELTER", "LEGAL_AID", "NOT_A_SERVICE"],
    "ReferralMoveInput": [{"accept": {}}, {"cancel": {}, "accept": {}}, {"markEnteredInError": {"note": ""}}],
    "Boolean": [False, True, True],
}
ANY_INPUT = [{}, "not an object", [1, 2]]
"""For every other input type and enum: an empty object, a string, a list (the schema refuses each, with a code)."""
MASKED = "Unexpected error"


def operations() -> list[tuple[str, str, dict[str, str]]]:
    """Every root query and mutation field: (operation, field, argument → its GraphQL type, as declared)."""
    from gateway.schema import build_schema as haven_schema

    from graphql import GraphQLObjectType

    schema = haven_schema()._schema
    found = []
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert isinstance(root, GraphQLObjectType)
        for name, definition in root.fields.items():
            found.append((kind, name, {arg_name: str(arg.type) for arg_name, arg in definition.args.items()}))
    return found


def argument(declared: str, variant: int) -> Any:
    """A value of the declared type (``[String!]!`` gets a list of one), well-formed or not by ``variant``."""
    value = ARGUMENTS.get(declared.strip("[]!"), ANY_INPUT)[variant]
    return [value] if declared.startswith("[") else value


async def test_every_root_field_and_mutation_answers_every_role_with_data_or_a_code_never_a_masked_error(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    keys: dict[str, str | None] = {"anonymous": None, "oversight": await partner(db, organisation(
        OrgType.OVERSIGHT_BODY), Role.OVERSIGHT)}  # fmt: skip
    await partner(db, shelter, Role.CASEWORKER)
    async with db.acquire() as conn:
        for role in (Role.INTAKE, Role.CASEWORKER, Role.ORG_ADMIN, Role.AUDITOR):
            keys[role.value] = await create_key(conn, shelter.org_id, role)
    answered = 0
    for kind, name, args in operations():
        for variant in range(3):
            values = {a: argument(t, variant) for a, t in args.items()}
            if name in ("inbox", "myReferrals") and variant == 2:
                values["after"] = OVERFLOWING_CURSOR
            declared = ", ".join(f"${a}: {t}" for a, t in args.items())
            passed = ", ".join(f"{a}: ${a}" for a in args)
            query = f"{kind} Walk{f'({declared})' if declared else ''} {{ {name}{f'({passed})' if passed else ''}"
            query += " { __typename } }"
            for who, key in keys.items():
                status, body = await call(settings, key, query, values)
                errors = body.get("errors") or []
                where = (kind, name, values, who, body)
                assert status == 200, where
                assert not any(MASKED in e["message"] for e in errors), where
                assert body.get("data") is not None or errors, where
                for error in errors:
                    coded = "code" in error.get("extensions", {})
                    assert coded or (body.get("data") is None and "$" in error["message"]), where
                answered += 1
    assert answered == len(operations()) * 3 * len(keys)

    _, auditor_own = await call(settings, keys["auditor"], "{ myReferrals { edges { node { id } } } }")
    assert auditor_own == {"data": {"myReferrals": {"edges": []}}}, "an auditor may ask: empty, not refused"
    _, bad_ledger = await call(settings, keys["caseworker"], LEDGER, {"s": "not-an-id"})
    _, bad_cursor = await call(settings, keys["caseworker"],
                               "query($a: String) { inbox(after: $a) { pageInfo { hasNextPage } } }",
                               {"a": OVERFLOWING_CURSOR})  # fmt: skip
    assert refusal(bad_ledger)[0] == "BAD_INPUT"
    assert refusal(bad_cursor)[0] == "BAD_CURSOR"


# ---------------------------------------------------------------- erasure reaches the topics

CLEAR_AFTER_ERASURE = frozenset({
    # ids: pseudonymous, or of organisations and their staff, or of a filed form; the screener's key as a hash
    "survivor_id", "referral_id", "directive_id", "screening_id", "matter_id", "enrolment_id", "parent_referral_id",
    "rerouted_to", "idempotency_key", "form_reference", "org_id", "actor_org", "referrer_org", "recipient_org",
    "screener_org", "decided_by", "assessed_by", "recorded_by", "revoked_by", "requested_by", "shelter_org",
    "clinic_org", "provider_org", "program_org", "approvers",
    # codes and statuses
    "referral_type", "urgency", "purpose", "purposes", "reason", "outcome", "status", "effect", "basis", "categories",
    "withheld", "screener_type", "decided_by_role", "org_type", "milestone", "matter_type", "unit_type",
    "destination", "service", "program_type", "wage_band", "method", "language", "is_minor", "allow_reroute",
    "engaged", "employed", "retained_3_months", "retained_6_months", "interpreter", "subject_is_minor", "version",
    # jurisdictions (ISO 3166 codes): where consent reaches, and the border a referral crossed
    "cross_border", "any_jurisdiction", "home", "recipient",
    # timestamps
    "deadline", "valid_from", "valid_until", "revoked_at", "expired_at", "respond_by", "hearing_date",
})  # fmt: skip
"""What a record that names an erased survivor may still say in clear: ids, codes, statuses and timestamps."""

SEALED_KEYS = frozenset({"alg", "kid", "nonce", "ciphertext"})


def clear_fields(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every clear leaf of a decoded payload as (path, value); sealed values are opaque and skipped."""
    if isinstance(value, dict):
        if set(value) == SEALED_KEYS:
            return []
        return [leaf for key, inner in value.items() for leaf in clear_fields(inner, f"{path}.{key}".lstrip("."))]
    if isinstance(value, list):
        return [leaf for inner in value for leaf in clear_fields(inner, path)]
    return [] if value is None else [(path, value)]  # an absent value (null) says nothing


async def test_after_erasure_the_topics_hold_only_ids_codes_statuses_and_timestamps_about_the_survivor(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool, producer: AIOKafkaProducer
) -> None:
    from events.catalog import all_topics
    from events.identification import EraseSurvivor, ErasureReason
    from tests.support.observe import broker_log_files, pg_dump

    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    intake = await partner(db, hotline, Role.INTAKE)
    shelter_key = await partner(db, shelter, Role.CASEWORKER)
    markers = {part: f"{part}{uuid4().hex[:10]}" for part in ("Name", "Story", "Why", "Asked", "Answered", "Refused")}
    survivor = await screened(settings, db, intake, identity__given_name=markers["Name"],
                              narrative__story=f"{markers['Story']} said")  # fmt: skip
    signed = {"method": "written", "language": "tl", "form_reference": "CF-2026-0113"}
    await grant(settings, db, intake, survivor, grantee={"org_id": shelter.org_id},
                categories=["identity", "contact", "case_status"], justification=markers["Why"],
                **window(obtained=signed))  # fmt: skip
    sid = str(survivor)
    _, asked = await call(settings, intake, REFER, {"r": referral(sid, shelter.org_id, note=markers["Asked"])})
    referral_id = asked["data"]["requestReferral"]["referralId"]
    await eventually(lambda: referral_known(db, UUID(referral_id)))
    _, accepted = await call(settings, shelter_key, MOVE, {"id": referral_id, "s": sid,
                                                           "m": move("accept", note=markers["Answered"])})  # fmt: skip
    _, refused = await call(settings, shelter_key, MOVE, {"id": referral_id, "s": sid,
                                                          "m": move("complete", note=markers["Refused"],
                                                                    outcome="housed")})  # fmt: skip
    assert not accepted.get("errors")
    assert not refused.get("errors"), "accepted into the outbox: the referrals service refuses it"
    await eventually(lambda: everyone_knows(db, UUID(referral_id), "accepted"))
    await send(producer, EraseSurvivor(survivor_id=survivor, requested_by=hotline.org_id,
                                       reason=ErasureReason.SURVIVOR_REQUEST))  # fmt: skip

    async def purged() -> bool:
        left: int = await db.fetchval(
            "SELECT (SELECT count(*) FROM gateway.survivors WHERE survivor_id = $1)"
            " + (SELECT count(*) FROM consent.directives WHERE survivor_id = $1)"
            " + (SELECT count(*) FROM referrals.referrals WHERE survivor_id = $1)",
            survivor,
        )
        return left == 0

    await eventually(purged)
    records, violations, scanned = 0, [], set()
    for spec in all_topics():
        messages = await read_to_end(settings, spec.name)  # fails unless every partition was read to its end
        scanned.add(spec.name)
        for m in messages:
            if m.key != sid.encode() and sid.encode() not in (m.value or b""):
                continue
            records += 1
            payload = json.loads(m.value)
            violations += [(spec.name, dict(m.headers).get("ce_type"), path, v) for path, v in clear_fields(payload)
                           if path.split(".")[-1] not in CLEAR_AFTER_ERASURE]  # fmt: skip
    assert records >= 10, f"the scan found this survivor's records ({records})"
    assert "haven.referrals.commands.dlq" in scanned, "dead-letter topics were read too"
    completion = UUID(refused["data"]["moveReferral"]["commandId"])

    async def answered() -> bool:
        """The refused completion reached its sender as an outcome (not a dead letter)."""
        code = await db.fetchval("SELECT code FROM gateway.command_outcomes WHERE command_id = $1", completion)
        return bool(code == "illegal_transition")

    await eventually(answered)
    assert violations == [], "clear fields beyond ids, codes, statuses and timestamps"
    dump = await asyncio.to_thread(pg_dump, settings)
    logs = await asyncio.to_thread(broker_log_files, settings)
    assert b"CREATE TABLE referrals.transitions" in dump, "the dump really holds the database"
    assert logs, "the broker's log segments were read"
    for marker in markers.values():
        assert marker.encode() not in dump, f"{marker} is not in the database"
        assert not any(marker.encode() in data for data in logs.values()), f"{marker} is not in the broker's logs"


# ---------------------------------------------------------------- what others' referrals reveal, and the ledger

SHARING = ("query($s: ID!, $o: String!, $t: ReferralType!) { referralSharing(survivorId: $s, recipientOrg: $o,"
           " referralType: $t) { shared withheld } }")  # fmt: skip
PATHWAY_REFERRALS = ("query($id: ID!) { survivor(id: $id, purpose: SERVICE_DELIVERY) { referrals { id referralType"
                     " recipientOrg parent { id } } } }")  # fmt: skip


async def test_others_referrals_show_under_consent_health_under_health_and_each_read_is_in_the_ledger(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    shelter = organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER)
    clinic = organisation(OrgType.HEALTH_PROVIDER, ReferralType.MENTAL_HEALTH)
    intake = await partner(db, hotline, Role.INTAKE)
    shelter_key = await partner(db, shelter, Role.CASEWORKER)
    clinic_key = await partner(db, clinic, Role.CASEWORKER)
    survivor = await screened(settings, db, intake)
    sid = str(survivor)
    await grant(settings, db, intake, survivor, grantee={"org_id": shelter.org_id},
                categories=["contact", "case_status"], **window())  # fmt: skip
    orgs = [hotline.org_id, shelter.org_id, clinic.org_id]

    async def in_the_directory() -> bool:
        return bool(await db.fetchval("SELECT count(*) = 3 FROM referrals.organisations WHERE org_id = ANY($1)", orgs))

    await eventually(in_the_directory)
    _, preview = await call(settings, intake, SHARING, {"s": sid, "o": shelter.org_id, "t": "EMERGENCY_SHELTER"})
    assert preview["data"]["referralSharing"] == {"shared": ["CASE_STATUS", "CONTACT"], "withheld": ["IDENTITY"]}

    _, first = await call(settings, intake, REFER, {"r": referral(sid, shelter.org_id)})
    first_id = first["data"]["requestReferral"]["referralId"]
    await eventually(lambda: referral_known(db, UUID(first_id)))
    _, onward = await call(settings, shelter_key, REFER, {"r": referral(
        sid, clinic.org_id, referral_type="mental_health", urgency="urgent", parent_referral_id=first_id)})  # fmt: skip
    assert not onward.get("errors"), "the shelter is in the care team: its open referral makes it so"
    onward_id = onward["data"]["requestReferral"]["referralId"]
    await eventually(lambda: referral_known(db, UUID(onward_id)))

    async def hotline_sees() -> list[str]:
        _, body = await call(settings, intake, PATHWAY_REFERRALS, {"id": sid})
        return [r["id"] for r in body["data"]["survivor"]["referrals"]]

    assert await hotline_sees() == [first_id], "the onward mental-health referral is not the hotline's to see"
    await grant(settings, db, intake, survivor, grantee={"org_id": hotline.org_id}, categories=["case_status"],
                **window())  # fmt: skip
    assert await hotline_sees() == [first_id], "its type says something about health: case_status is not enough"
    await grant(settings, db, intake, survivor, grantee={"org_id": hotline.org_id}, categories=["health"],
                **window())  # fmt: skip
    assert await hotline_sees() == [first_id, onward_id]

    _, clinic_view = await call(settings, clinic_key, PATHWAY_REFERRALS, {"id": sid})
    (mine,) = clinic_view["data"]["survivor"]["referrals"]
    assert mine["parent"] is None, "the shelter's referral is not the clinic's to see without consent"
    await grant(settings, db, intake, survivor, grantee={"org_id": clinic.org_id}, categories=["case_status"],
                **window())  # fmt: skip
    _, clinic_view = await call(settings, clinic_key, PATHWAY_REFERRALS, {"id": sid})
    shown = {r["id"]: r for r in clinic_view["data"]["survivor"]["referrals"]}
    assert shown[onward_id]["parent"] == {"id": first_id}
    rows = await db.fetch("SELECT org_id, categories FROM gateway.audit_log WHERE survivor_id = $1 ORDER BY seq",
                          survivor)  # fmt: skip
    assert (clinic.org_id, ["case_status"]) in [(r["org_id"], sorted(r["categories"])) for r in rows], (
        "the clinic's read of the shelter's referral (through parent) is in the ledger"
    )
    assert (hotline.org_id, ["case_status", "health"]) in [(r["org_id"], sorted(r["categories"])) for r in rows]
