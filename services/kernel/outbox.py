"""The transactional outbox: events are written in the caller's transaction and published after commit."""

from __future__ import annotations

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
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.write needs an open transaction: the event must commit with its change")
    rows = []
    for event in events:
        with telemetry.producing(event) as traceparent:
            record = to_kafka(event, traceparent=traceparent)
        rows.append(
            (
                event.id,
                event.type,
                record.topic,
                record.key,
                [[k, v.decode()] for k, v in record.headers],
                record.value,
            )
        )
    await conn.executemany(
        "INSERT INTO outbox (event_id, event_type, topic, key, headers, payload) VALUES ($1, $2, $3, $4, $5, $6)",
        rows,
    )
