"""The transactional outbox: events are written in the caller's transaction and published after commit."""

from __future__ import annotations

import json
from typing import Any

from events.envelope import Envelope, to_kafka
from services.kernel import telemetry
from services.kernel.db import Connection


async def write(conn: Connection, *events: Envelope) -> None:
    """Add ``events`` to the outbox of the schema on ``conn``'s search path, inside its open transaction.

    Nothing is published unless that transaction commits.

    As every handler does (it needs PostgreSQL, so it is shown, not run)::

        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE referrals SET status = 'accepted' WHERE referral_id = $1", referral_id)
            await outbox.write(conn, Envelope.new(accepted, source="haven/referrals"))
    """
    await write_rows(conn, rows(*events))


async def write_rows(conn: Connection, found: list[tuple[Any, ...]]) -> None:
    """Insert outbox ``rows`` (see ``rows``) in the open transaction on ``conn``, in order."""
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.write needs an open transaction: the event must commit with its change")
    await conn.executemany(
        "INSERT INTO outbox (event_id, event_type, topic, key, headers, payload) VALUES ($1, $2, $3, $4, $5, $6)",
        found,
    )


def rows(*events: Envelope) -> list[tuple[Any, ...]]:
    """``events`` as outbox rows (event id, type, topic, key, headers, payload), each with its ``create`` span."""
    found = []
    for event in events:
        with telemetry.producing(event) as traceparent:
            record = to_kafka(event, traceparent=traceparent)
        found.append((event.id, event.type, record.topic, record.key, [[k, v.decode()] for k, v in record.headers],
                      record.value))  # fmt: skip
    return found


INSERT_ARRAYS = """
    INSERT INTO outbox (event_id, event_type, topic, key, headers, payload)
    SELECT i, t, tp, k, h::jsonb, p FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[],
                                                $6::bytea[]) AS x(i, t, tp, k, h, p)
"""
"""Outbox rows given as six arrays (``arrays``), for a statement that writes them beside something else."""


def arrays(found: list[tuple[Any, ...]]) -> list[list[Any]]:
    """``rows`` as the six arrays of ``INSERT_ARRAYS`` (headers as JSON text)."""
    return [[r[0] for r in found], [r[1] for r in found], [r[2] for r in found], [r[3] for r in found],
            [json.dumps(r[4]) for r in found], [r[5] for r in found]]  # fmt: skip
