"""A partner integration, written only from the README and the SDL with a standard GraphQL client (gql):
a hotline's case system screens, records consent, refers, sees the referral refused for no capacity,
refers elsewhere, and hears the acceptance by webhook and by a subscription authenticated in
connection_init; the referral read back as FHIR validates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
from fhir.resources.R4B.task import Task
from gateway.auth import Role, create_key
from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.websockets import WebsocketsTransport
from standardwebhooks.webhooks import Webhook

from events.consent import OrgType
from events.needs import ReferralType
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.gateway import partner, url
from tests.support.observe import eventually
from tests.support.partners import organisation
from tests.support.processes import ServiceProcess, running
from tests.support.webhooks import webhook_receiver

SCREEN = ("mutation($s: ScreeningInput!) { recordScreening(screening: $s, wait: 10000) {"
          " subjectId outcome { status code } } }")  # fmt: skip
GRANT = ("mutation($s: ID!, $d: DirectiveInput!) { grantConsent(survivorId: $s, directive: $d, wait: 10000) {"
         " outcome { status code } } }")  # fmt: skip
REFER = ("mutation($r: ReferralInput!) { requestReferral(referral: $r, wait: 10000) {"
         " referralId outcome { status code } } }")  # fmt: skip
PROVIDER = ("mutation($a: ProviderActionInput!) { providerAction(action: $a, wait: 10000) {"
            " outcome { status code message } } }")  # fmt: skip
HOOK = "mutation($u: String!, $e: [String!]!) { registerWebhook(url: $u, events: $e) { secret } }"
SCREENING = {  # a hotline's screening, as its case system sends it
    "screenerType": "HOTLINE", "outcome": "PROBABLE_VICTIM",
    "decidedBy": "city-hotline", "decidedByRole": "SCREENER",
    "statistics": {"ageBand": "AGE_24_26", "gender": "FEMALE", "nationality": "PH"},
    "identity": {"givenName": "Maria", "familyName": "Santos", "dateOfBirth": "1994-03-02"},
    "contact": {"phone": "+63 917 555 0101", "safeContactInstructions": "text only, after 8pm"},
    "narrative": {"acts": ["RECRUITMENT", "TRANSPORT"], "means": ["DECEPTION", "DEBT_BONDAGE"],
                  "purposes": ["DOMESTIC_SERVITUDE"], "sector": "DOMESTIC_WORK"},
}  # fmt: skip
UPDATES = "subscription { referralUpdates { id status recipientOrg transitions { status reason } } }"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("service-logs")
    local = {"HAVEN_WEBHOOKS_ALLOW_LOOPBACK": "true"}
    yield from running(logs, ("identification", "consent", "referrals", "shelter", "gateway"), local)


class Partner:
    """One organisation's system: a gql client over HTTP with its key."""

    def __init__(self, settings: Settings, key: str) -> None:
        self.key = key
        self.transport = AIOHTTPTransport(url=url(settings), headers={"Authorization": f"Bearer {key}"})

    async def run(self, query: str, **variables: Any) -> dict[str, Any]:
        async with Client(transport=self.transport) as session:
            result: dict[str, Any] = await session.execute(GraphQLRequest(query, variable_values=variables))
            return result


async def test_a_partner_system_screens_refers_is_refused_retries_and_hears_the_acceptance(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    hotline = organisation(OrgType.HOTLINE, ReferralType.PSYCHOSOCIAL)
    full, roomy = (organisation(OrgType.SHELTER, ReferralType.EMERGENCY_SHELTER) for _ in range(2))
    keys = {org.org_id: await partner(db, org, Role.ORG_ADMIN) for org in (hotline, full, roomy)}
    async with db.acquire() as conn:
        intake = await create_key(conn, hotline.org_id, Role.INTAKE)
        roomy_caseworker = await create_key(conn, roomy.org_id, Role.CASEWORKER)
    ours, theirs = Partner(settings, intake), Partner(settings, roomy_caseworker)
    for org, beds in ((full, 0), (roomy, 2)):  # each shelter's own admin says how many beds it has
        configured = await Partner(settings, keys[org.org_id]).run(
            PROVIDER, a={"configureShelter": {"beds": [{"unitType": "ADULT_WOMEN", "count": beds}]}}
        )
        assert configured["providerAction"]["outcome"]["status"] == "APPLIED", configured

    cleanup = AsyncExitStack()
    hooked = await cleanup.enter_async_context(webhook_receiver())
    hook = await Partner(settings, keys[hotline.org_id]).run(
        HOOK, u=hooked.url, e=["referral.accepted", "referral.rejected"]
    )
    secret = hook["registerWebhook"]["secret"]

    updates: list[dict[str, Any]] = []

    async def follow() -> None:
        # A browser-style connection: the key travels in connection_init, not in a header.
        socket = WebsocketsTransport(url=url(settings, "ws"), init_payload={"authorization": f"Bearer {intake}"},
                                     subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])  # fmt: skip
        async with Client(transport=socket) as session:
            async for item in session.subscribe(GraphQLRequest(UPDATES)):
                updates.append(item["referralUpdates"])

    following = asyncio.create_task(follow())
    try:
        # The gateway records the caller as the screener; the key makes a retry of this screening harmless.
        screened = await ours.run(SCREEN, s={**SCREENING, "idempotencyKey": f"case-{uuid4()}"})
        assert screened["recordScreening"]["outcome"]["status"] == "APPLIED", screened
        survivor = screened["recordScreening"]["subjectId"]
        directive = {"grantee": {"orgType": "SHELTER"}, "categories": ["IDENTITY", "CONTACT", "CASE_STATUS"],
                     "purposes": ["SERVICE_DELIVERY"], "validFrom": "2026-01-01T00:00:00Z",
                     "validUntil": "2036-01-01T00:00:00Z",
                     "obtained": {"method": "WRITTEN", "language": "tl", "interpreter": True}}  # fmt: skip
        granted = await ours.run(GRANT, s=survivor, d=directive)
        assert granted["grantConsent"]["outcome"]["status"] == "APPLIED", granted

        ask = {"survivorId": survivor, "referralType": "EMERGENCY_SHELTER", "urgency": "EMERGENCY"}
        first = await ours.run(REFER, r={**ask, "recipientOrg": full.org_id})
        first_id = first["requestReferral"]["referralId"]

        async def refused() -> bool:
            return any(u["id"] == first_id and u["status"] == "REJECTED" for u in updates)

        await eventually(refused, timeout=45)
        (rejection,) = [u for u in updates if u["id"] == first_id and u["status"] == "REJECTED"]
        assert rejection["transitions"][-1] == {"status": "REJECTED", "reason": "no_capacity"}

        second = await ours.run(REFER, r={**ask, "recipientOrg": roomy.org_id})
        second_id = second["requestReferral"]["referralId"]

        async def received_by_roomy() -> bool:
            return any(u["id"] == second_id and u["status"] == "RECEIVED" for u in updates)

        await eventually(received_by_roomy, timeout=45)
        bed = {"referralId": second_id, "survivorId": survivor, "unitType": "ADULT_WOMEN"}
        placed = await theirs.run(PROVIDER, a={"acceptPlacement": bed})
        assert placed["providerAction"]["outcome"]["status"] == "APPLIED", placed

        async def accepted_everywhere() -> bool:
            seen = any(u["id"] == second_id and u["status"] == "ACCEPTED" for u in updates)
            heard = any(json.loads(b)["type"] == "referral.accepted" for b, _ in hooked.received)
            return seen and heard

        await eventually(accepted_everywhere, timeout=45)
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await cleanup.aclose()

    payloads = [Webhook(secret).verify(body, headers) for body, headers in hooked.received]  # each signed for us
    assert {(p["type"], p["data"]["referral_id"]) for p in payloads} >= {
        ("referral.rejected", first_id), ("referral.accepted", second_id)
    }  # fmt: skip
    async with (
        aiohttp.ClientSession() as session,
        session.get(url(settings).removesuffix("/graphql") + f"/fhir/Task/{second_id}",
                    headers={"Authorization": f"Bearer {intake}"}) as response,
    ):  # fmt: skip
        fhir_task = Task.model_validate(await response.json(content_type=None))
    assert fhir_task.status == "accepted"
    assert fhir_task.owner is not None
    assert fhir_task.owner.reference == f"Organization/{roomy.org_id}"
