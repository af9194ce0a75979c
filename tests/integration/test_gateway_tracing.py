"""One trace from a GraphQL mutation into the outbox: the relay and consumers continue it (test_tracing.py)."""

from __future__ import annotations

from gateway.auth import Principal, Role
from gateway.consent import ConsentScope
from gateway.schema import build_schema
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from events.consent import OrgType
from events.envelope import header_map
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.db import create_pool
from services.kernel.settings import Settings
from tests.support.gateway import screening


async def test_a_mutation_and_the_event_it_writes_share_one_trace(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    db = await create_pool(settings, schema="gateway")  # as the gateway's own pool: its outbox
    who = Principal("city-hotline", OrgType.HOTLINE, Role.INTAKE)
    context = {"principal": who, "pool": db, "consent": ConsentScope(db, who),
               "keyring": Keyring(decode_master_key(settings.master_key_text()))}  # fmt: skip
    result = await build_schema().execute(
        "mutation($s: ScreeningInput!) { recordScreening(screening: $s) { commandId } }",
        variable_values={"s": screening()},
        context_value=context,
    )

    assert result.errors is None, result.errors
    command_id = result.data["recordScreening"]["commandId"] if result.data else None
    row = await db.fetchrow("DELETE FROM gateway.outbox WHERE event_id = $1 RETURNING headers", command_id)
    assert row is not None, "the command went to the gateway's outbox"
    traceparent = header_map([(k, v.encode()) for k, v in row["headers"]])["traceparent"]
    operation = next(s for s in spans.get_finished_spans() if s.name.startswith("GraphQL"))
    await db.close()
    assert traceparent.split("-")[1] == f"{operation.context.trace_id:032x}"
