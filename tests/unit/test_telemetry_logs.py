"""Log lines as an operator's log pipeline reads them: JSON with the event being handled and its trace."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from services.kernel import telemetry
from tests.support.ledger import entry


def test_a_line_logged_while_handling_an_event_names_the_event_and_its_trace() -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # as a process with telemetry configured
        trace.set_tracer_provider(TracerProvider())
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(telemetry.JsonLines("shelter"))
    log = logging.getLogger("test.telemetry")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    event = entry("haven.test", "survivor-t", 1)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    try:
        log.info("before")
        with telemetry.consuming(event, parent, "shelter"):
            log.warning("handling")
    finally:
        log.removeHandler(handler)
    before, during = (json.loads(line) for line in out.getvalue().splitlines())
    assert before["service"] == "shelter"
    assert "event_type" not in before
    assert during["level"] == "WARNING"
    assert during["event_type"] == event.type
    assert during["event_id"] == str(event.id)
    assert during["trace_id"] == "0af7651916cd43dd8448eb211c80319c", "the trace the event came with"
