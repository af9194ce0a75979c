"""The topic catalog and the committed AsyncAPI document agree with the code."""

from __future__ import annotations

import events
from events import asyncapi
from events.catalog import TOPICS, all_topics


def test_every_event_type_is_published_on_a_catalog_topic() -> None:
    topics = {t.name for t in TOPICS}
    stray = {name: m.topic for name, m in events.REGISTRY.contract_types().items() if m.topic not in topics}
    assert not stray


def test_every_topic_has_a_dead_letter_topic() -> None:
    names = {t.name for t in all_topics()}
    assert all(f"{t.name}.dlq" in names for t in TOPICS)


def test_survivor_topics_keep_history_and_the_directory_is_compacted() -> None:
    by_name = {t.name: t for t in TOPICS}
    assert by_name["haven.directory"].kafka_configs()["cleanup.policy"] == "compact"
    assert by_name["haven.consent"].kafka_configs()["retention.ms"] == "-1", "consent history must be replayable"


def test_the_committed_asyncapi_document_is_up_to_date() -> None:
    assert asyncapi.DOCUMENT.read_text() == asyncapi.render(), "stale: run `make asyncapi` and commit it"


def test_the_asyncapi_document_describes_every_event_and_channel() -> None:
    doc = asyncapi.build()
    assert doc["asyncapi"].startswith("3.")
    assert {c["address"] for c in doc["channels"].values()} == {t.name for t in all_topics()}
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert set(events.REGISTRY.contract_types()) == names - {"dead-letter"}
