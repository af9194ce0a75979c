"""The CloudEvents Kafka binding: round trips, interoperability with the SDK, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event, to_binary_event
from cloudevents.core.v1.event import CloudEvent

from events.base import EventData, EventRegistry
from events.consent import Category, Purpose
from events.envelope import Envelope, UndecodableEvent, from_kafka, to_kafka
from events.needs import Urgency
from events.referrals import ReferralRequested


def requested() -> Envelope:
    return Envelope.new(
        ReferralRequested(
            referral_id=uuid4(),
            survivor_id=uuid4(),
            actor_org="city-hotline",
            referrer_org="city-hotline",
            recipient_org="harbour-shelter",
            referral_type="emergency_shelter",
            urgency=Urgency.EMERGENCY,
            purpose=Purpose.SERVICE_DELIVERY,
            categories=frozenset({Category.CONTACT, Category.CASE_STATUS}),
            deadline=datetime.now(UTC) + timedelta(hours=4),
        ),
        source="haven/referrals",
    )


def test_an_event_survives_the_round_trip_through_kafka_form() -> None:
    event = requested()
    record = to_kafka(event, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")

    assert from_kafka(record.value, record.headers) == event
    assert record.topic == "haven.referrals"
    assert isinstance(event.data, ReferralRequested)
    assert record.key == str(event.data.survivor_id).encode(), "keyed by survivor: their events stay in order"
    assert dict(record.headers)["traceparent"].startswith(b"00-")


def test_what_we_encode_the_cloudevents_sdk_decodes() -> None:
    event = requested()
    record = to_kafka(event)

    decoded = from_binary_event(KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value))

    assert decoded.get_id() == str(event.id)
    assert decoded.get_type() == "referral.requested"
    assert decoded.get_source() == "haven/referrals"
    assert decoded.get_subject() == event.subject
    assert decoded.get_specversion() == "1.0"
    assert decoded.get_time() == event.time
    assert decoded.get_extension("schemaversion") == str(ReferralRequested.version)
    data = decoded.get_data()
    assert isinstance(data, dict)
    assert data["recipient_org"] == "harbour-shelter"


def test_what_the_cloudevents_sdk_encodes_we_decode() -> None:
    survivor = uuid4()
    data = {
        "referral_id": str(uuid4()),
        "survivor_id": str(survivor),
        "actor_org": "harbour-shelter",
        "referrer_org": "city-hotline",
        "recipient_org": "harbour-shelter",
    }
    sdk_event = CloudEvent(
        {
            "id": str(uuid4()),
            "source": "partner/case-system",
            "type": "referral.received",
            "subject": str(survivor),
            "datacontenttype": "application/json",
            "time": datetime(2026, 11, 22, 10, tzinfo=UTC),
        },
        data,
    )
    message = to_binary_event(sdk_event)

    event = from_kafka(message.value, list(message.headers.items()))

    assert event.type == "referral.received"
    assert str(event.id) == sdk_event.get_id()
    assert event.data.model_dump(mode="json")["referral_id"] == data["referral_id"]
    assert event.time == datetime(2026, 11, 22, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h, v: (h, b"{not json"), "bad_json"),
        (lambda h, v: (h, b"[1, 2]"), "schema_invalid"),
        (lambda h, v: ({**h, "ce_type": b"referral.teleported"}, v), "unknown_type"),
        (lambda h, v: ({**h, "ce_specversion": b"0.3"}, v), "unsupported_specversion"),
        (lambda h, v: ({**h, "content-type": b"application/xml"}, v), "unsupported_content_type"),
        (lambda h, v: ({k: x for k, x in h.items() if k != "ce_id"}, v), "missing_header"),
        (lambda h, v: ({**h, "ce_schemaversion": b"9"}, v), "unsupported_version"),
        (lambda h, v: (h, v.replace(b'"emergency"', b'"whenever"')), "schema_invalid"),
    ],
)
def test_a_malformed_message_is_refused_with_a_stable_code(mutate, code) -> None:  # type: ignore[no-untyped-def]
    record = to_kafka(requested())
    headers, value = mutate(dict(record.headers), record.value)

    with pytest.raises(UndecodableEvent) as refused:
        from_kafka(value, list(headers.items()))

    assert refused.value.code == code
    assert refused.value.detail


def test_a_schema_error_names_the_field() -> None:
    record = to_kafka(requested())

    with pytest.raises(UndecodableEvent, match="urgency"):
        from_kafka(record.value.replace(b'"emergency"', b'"whenever"'), record.headers)


def test_an_old_version_is_upcast_to_the_current_model() -> None:
    registry = EventRegistry()

    class Renamed(EventData):
        event_type = "test.renamed"
        topic = "test"
        version = 2
        shelter_org: str

    registry.add(Renamed)

    @registry.upcaster("test.renamed", 1)
    def _v1_to_v2(data: dict[str, object]) -> dict[str, object]:
        return {"shelter_org": data["org"]}

    assert registry.upcast("test.renamed", 1, {"org": "harbour"}) == {"shelter_org": "harbour"}
    with pytest.raises(LookupError, match="newer than this code"):
        registry.upcast("test.renamed", 3, {})
