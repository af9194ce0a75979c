"""``haven seed-survivors N``: synthetic survivors for the demo, screened and consented through the GraphQL API as
the demo hotline would (``make run`` must be up). Each consents to the demo shelter and, most of them, to
statistics; a seeded random mix of ages, genders, nationalities and forms of exploitation, so that a statistics
release has something to count and something to suppress. No real person is in it."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import aiohttp

SCREEN = ("mutation($s: ScreeningInput!) { recordScreening(screening: $s, wait: 10000) { subjectId"
          " outcome { status code } } }")  # fmt: skip
GRANT = ("mutation($s: ID!, $d: DirectiveInput!, $k: String) { grantConsent(survivorId: $s, directive: $d,"
         " idempotencyKey: $k, wait: 10000) { outcome { status code } } }")  # fmt: skip

WEIGHTED: dict[str, list[tuple[str, int]]] = {
    "ageBand": [("AGE_9_17", 8), ("AGE_18_20", 12), ("AGE_21_23", 16), ("AGE_24_26", 18), ("AGE_27_29", 14),
                ("AGE_30_38", 20), ("AGE_39_47", 8), ("AGE_48_PLUS", 3), ("UNKNOWN", 1)],
    "gender": [("FEMALE", 58), ("MALE", 38), ("NON_BINARY", 2), ("UNDISCLOSED", 2)],
    "nationality": [("PH", 24), ("VN", 22), ("RO", 18), ("NG", 14), ("AL", 10), ("ER", 5), ("SY", 4), ("BR", 3)],
}  # fmt: skip
FORMS = [  # (purposes, sector, weight)
    (["FORCED_LABOUR"], "AGRICULTURE", 14), (["FORCED_LABOUR"], "CONSTRUCTION", 10), (["FORCED_LABOUR"], "FISHING", 6),
    (["DOMESTIC_SERVITUDE"], "DOMESTIC_WORK", 16), (["SEXUAL_EXPLOITATION"], "SEX_INDUSTRY", 24),
    (["FORCED_LABOUR", "SEXUAL_EXPLOITATION"], "HOSPITALITY", 8), (["FORCED_CRIMINALITY"], "OTHER", 6),
    (["FORCED_LABOUR"], "ONLINE_SCAM", 6),
]  # fmt: skip
GIVEN = ["Ana", "Binh", "Chidi", "Dana", "Elira", "Femi", "Grace", "Hoa", "Ioana", "Joy", "Kiet", "Luan", "Mira"]


def _pick(rng: random.Random, options: list[tuple[str, int]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def screening(rng: random.Random) -> dict[str, Any]:
    purposes, sector, _ = rng.choices(FORMS, weights=[w for *_, w in FORMS])[0]
    stats = {k: _pick(rng, v) for k, v in WEIGHTED.items()}
    return {
        "idempotencyKey": f"demo-{uuid4().hex}", "screenerType": "HOTLINE", "outcome": "PROBABLE_VICTIM",
        "decidedBy": "city-hotline", "decidedByRole": "SCREENER",
        "presumedMinor": stats["ageBand"] == "AGE_9_17", "statistics": stats,
        "identity": {"givenName": rng.choice(GIVEN)},
        "narrative": {"acts": ["RECRUITMENT", "TRANSPORT"], "means": ["DECEPTION", "DEBT_BONDAGE"],
                      "purposes": purposes, "sector": sector},
    }  # fmt: skip


def directive(grantee: dict[str, str], categories: list[str], purposes: list[str], *, child: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    given = {"grantee": grantee, "categories": categories, "purposes": purposes,
             "validFrom": (now - timedelta(minutes=1)).isoformat(),
             "validUntil": (now + timedelta(days=365)).isoformat(),
             "obtained": {"method": "WRITTEN", "language": "en", "interpreter": False}}  # fmt: skip
    if child:  # a child's directive rests on the child's best interest, written down, with two approvers
        given |= {"basis": "BEST_INTEREST", "approvers": ["cw-0001", "cw-0002"],
                  "justification": "Demo: agreed with the child and the appointed guardian."}  # fmt: skip
    return given


async def seed(endpoint: str, key: str, count: int, seed: int = 2026) -> tuple[int, int]:
    """Screen ``count`` survivors; (screened, consenting to statistics)."""
    rng = random.Random(seed)  # synthetic data, not a secret
    screened = consenting = 0
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def call(query: str, variables: dict[str, Any]) -> Any:
            async with session.post(endpoint, json={"query": query, "variables": variables}) as answer:
                body = await answer.json()
            if body.get("errors"):
                raise RuntimeError(f"the gateway refused: {body['errors'][0]['message']}")
            return next(iter(body["data"].values()))

        for n in range(count):
            intake = screening(rng)
            child = intake["presumedMinor"]
            made = await call(SCREEN, {"s": intake})
            if made["outcome"]["status"] != "APPLIED":
                raise RuntimeError(f"screening {n}: {made['outcome']}")
            survivor, screened = made["subjectId"], screened + 1
            shelter = directive(
                {"orgId": "harbour-shelter"}, ["IDENTITY", "CASE_STATUS"], ["SERVICE_DELIVERY"], child=child
            )
            await call(GRANT, {"s": survivor, "d": shelter, "k": f"demo-shelter-{survivor}"})
            if rng.random() < 0.9:  # most survivors agree to be counted, without their names
                counted = directive({"orgType": "OVERSIGHT_BODY"}, ["STATISTICS"], ["STATISTICS"], child=child)
                await call(GRANT, {"s": survivor, "d": counted, "k": f"demo-statistics-{survivor}"})
                consenting += 1
            print(f"\rseeding survivors: {n + 1}/{count}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return screened, consenting
