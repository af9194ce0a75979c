"""The ceiling for the pathway query: a bare Starlette endpoint running the raw asyncpg queries.

``python -m bench.bare PORT`` serves the same data as the gateway's pathway query, fetched with the
same queries and returned as JSON: no GraphQL, no consent, no audit. Run by ``bench.gateway``.
"""

from __future__ import annotations

import sys
from uuid import UUID

import uvicorn
import uvloop
from gateway.api.pathway import REFERRALS, SURVIVOR
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.kernel.db import Pool, create_pool
from services.kernel.settings import Settings


def app(pool: Pool) -> Starlette:
    """The same data, fetched with the gateway's own two queries; no GraphQL, consent, decryption or audit."""

    async def pathway(request: Request) -> JSONResponse:
        survivor = UUID(request.query_params["id"])
        row = await pool.fetchrow(SURVIVOR, survivor)
        referrals = await pool.fetch(f"{REFERRALS} WHERE r.survivor_id = $1 ORDER BY r.created_at", survivor)
        assert row is not None
        return JSONResponse(
            {
                "outcome": row["outcome"],
                "profile": row["profile"],
                "referrals": [
                    {
                        "status": r["status"],
                        "recipient": r["recipient_org"],
                        "transitions": [{"status": m[0], "actor": m[1], "at": m[3].isoformat()} for m in r["moves"]],
                    }
                    for r in referrals
                ],
            }
        )

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/pathway", pathway), Route("/healthz", health)])


async def serve(port: int) -> None:
    pool = await create_pool(Settings())
    try:
        await uvicorn.Server(uvicorn.Config(app(pool), host="127.0.0.1", port=port, log_level="warning")).serve()
    finally:
        await pool.close()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
