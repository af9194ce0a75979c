"""What an operator sees, on the real stack: one trace from a partner's mutation through the outbox and Kafka to
each consumer's handler (received by an OTLP endpoint, as a collector would), Prometheus metrics per process, and
readiness on each process's own probe port."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gateway.auth import Role

from events.consent import OrgType
from services.kernel.db import Pool
from services.kernel.settings import Settings
from tests.support.gateway import partner, screened
from tests.support.observe import eventually
from tests.support.otlp import Receiver
from tests.support.partners import organisation
from tests.support.processes import ServiceProcess, running

NAMES = ("identification", "consent", "gateway")
PROBES = {name: 18120 + i for i, name in enumerate(NAMES)}
SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP span kinds


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("observed-logs")
    each = {name: {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
                   "HAVEN_HEALTH_PORT": str(port), "HAVEN_LOG_FORMAT": "json"}
            for name, port in PROBES.items()}  # fmt: skip
    yield from running(logs, NAMES, each=each)


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (Prometheus text format)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_one_trace_runs_from_the_mutation_to_each_consumers_handler(
    services: dict[str, ServiceProcess], receiver: Receiver, settings: Settings, db: Pool
) -> None:
    key = await partner(db, organisation(OrgType.HOTLINE), Role.INTAKE)
    survivor = await screened(settings, db, key)
    mutation: list[Any] = []

    async def whole() -> bool:
        """The mutation's trace, once the gateway, identification and consent have each exported their part."""
        mutation[:] = [s for s in receiver.spans if s.kind == SERVER and s.name == "GraphQL mutation"]
        if not mutation:
            return False
        spans = receiver.trace(mutation[-1].trace_id)
        processed = {(s.service, s.name) for s in spans if s.kind == CONSUMER}
        return {("haven-identification", "process haven.identification.commands"),
                ("haven-consent", "process haven.identification"),
                ("haven-gateway", "process haven.identification")} <= processed  # fmt: skip

    await eventually(whole, timeout=20)
    spans = receiver.trace(mutation[-1].trace_id)
    by = {(s.service, s.name, s.kind): s for s in spans}
    create = by[("haven-gateway", "create haven.identification.commands", PRODUCER)]
    send = by[("haven-gateway", "send haven.identification.commands", PRODUCER)]
    handled = by[("haven-identification", "process haven.identification.commands", CONSUMER)]
    assert create.parent_id == mutation[-1].span_id, "the command is created inside the mutation"
    assert send.parent_id == create.span_id, "the relay's send has its own span, under the create"
    assert handled.parent_id == create.span_id, "the service's handler continues the command's trace"
    # The service's handler emits survivor.identified (and what else it emits) inside its process span; the
    # consent service's handler of it continues the same trace.
    identified = {s.span_id: s for s in spans if (s.service, s.name) == ("haven-identification",
                                                                           "create haven.identification")}  # fmt: skip
    assert identified
    assert {s.parent_id for s in identified.values()} == {handled.span_id}
    consent = [s for s in spans if (s.service, s.name) == ("haven-consent", "process haven.identification")]
    assert consent
    assert all(s.parent_id in identified for s in consent)
    # The messaging conventions: operation name and type, the destination, Kafka's key, partition and offset.
    assert handled.attributes["messaging.operation.type"] == "process"
    assert handled.attributes["messaging.destination.name"] == "haven.identification.commands"
    assert handled.attributes["messaging.consumer.group.name"] == "identification"
    assert {"messaging.destination.partition.id", "messaging.kafka.offset"} <= set(handled.attributes)
    assert send.attributes["messaging.operation.name"] == "send"
    assert send.attributes["messaging.kafka.message.key"] == str(survivor)
    assert "messaging.destination.partition.id" in send.attributes


async def test_each_process_counts_what_it_did_for_prometheus(
    services: dict[str, ServiceProcess], settings: Settings, db: Pool
) -> None:
    key = await partner(db, organisation(OrgType.HOTLINE), Role.INTAKE)
    await screened(settings, db, key)
    _, identification = await get(f"http://127.0.0.1:{PROBES['identification']}/metrics")
    _, gateway = await get(f"http://127.0.0.1:{PROBES['gateway']}/metrics")
    handled = metric(identification, "haven_events_total", messaging_consumer_group_name="identification",
                     outcome="applied")  # fmt: skip
    assert handled >= 1
    assert metric(gateway, "http_server_request_duration_seconds_count", http_route="/graphql") >= 1
    assert metric(gateway, "haven_graphql_operation_duration_seconds_count", graphql_operation_type="mutation") >= 1
    assert "haven_outbox_depth" in identification
    assert "haven_outbox_oldest_age_seconds" in identification
    # The gateway reports its lag on every partition it reads, caught up or not.
    assert metric(gateway, "haven_consumer_lag", messaging_consumer_group_name="gateway") >= 0
    assert 'messaging_destination_name="haven.identification"' in gateway


async def test_every_process_answers_its_probes_on_its_own_port(services: dict[str, ServiceProcess]) -> None:
    for name, port in PROBES.items():
        status, body = await get(f"http://127.0.0.1:{port}/readyz")
        assert status == 200, (name, body)
        assert '"ready": true' in body
        status, _ = await get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200


def test_logs_are_json_lines_that_never_carry_personal_data(services: dict[str, ServiceProcess]) -> None:
    """Every process logged JSON lines naming itself; the screenings above (Maria Santos, her passport, her phone)
    appear in no log at all."""
    for name, process in services.items():
        text = Path(process.log).read_text()
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert lines, f"{name} logged JSON lines"
        assert all({"time", "level", "service", "logger", "message"} <= set(line) for line in lines)
        assert {line["service"] for line in lines} == {name}
        for personal in ("Maria", "Santos", "P1234567", "917 555", "nanny"):
            assert personal not in text, f"{name}'s log holds {personal!r}"
