"""Topic provisioning on the real broker: created with the deployment's settings, idempotent, partitions raised
but never lowered (refused, saying why, with nothing changed), configuration brought to the settings."""

from __future__ import annotations

import subprocess
from uuid import uuid4

import pytest

from events.catalog import TopicSpec
from services.kernel import kafka, topics
from services.kernel.settings import Settings
from tests.support.processes import ROOT


async def partitions(settings: Settings, name: str) -> int:
    admin = kafka.admin(settings)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
        return len(described["partitions"])
    finally:
        await admin.close()


async def test_topics_are_created_once_raised_never_lowered_and_kept_to_their_settings(settings: Settings) -> None:
    spec = TopicSpec(name=f"haven.test-{uuid4().hex[:8]}", description="a test topic", key="id", partitions=2)

    first = await topics.apply(settings, [spec])
    again = await topics.apply(settings, [spec])
    raised = await topics.apply(settings.model_copy(update={"topic_partitions": 4}), [spec])
    with pytest.raises(topics.TopicRefused, match=r"refusing to lower a partition count .* has 4 partitions, wanted 2"):
        await topics.apply(settings, [spec])
    kept = await partitions(settings, spec.name)
    day = {"topic_partitions": 4, "topic_retention_ms": 86_400_000}
    retention = await topics.apply(settings.model_copy(update=day), [spec])
    wider = await topics.apply(settings.model_copy(update={**day, "topic_replication_factor": 3}), [spec])

    assert first == [f"created {spec.name} (2 partitions, replication 1)"]
    assert again == [], "a second run changes nothing"
    assert raised == [f"raised {spec.name} to 4 partitions"]
    assert kept == 4, "the refused run changed nothing"
    assert retention == [f"updated {spec.name}: retention.ms"]
    assert wider == [f"note {spec.name}: replication 1, wanted 3 (reassign its partitions)"], "reported, not changed"


def test_durability_settings_that_cannot_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        Settings(topic_replication_factor=1, topic_min_insync_replicas=2)
    production = topics.wanted(Settings(topic_replication_factor=3, topic_min_insync_replicas=2))
    assert {(t.replication, t.configs["min.insync.replicas"], t.configs["unclean.leader.election.enable"])
            for t in production} == {(3, "2", "false")}  # fmt: skip


def test_the_command_line_applies_the_catalog_and_says_what_it_did() -> None:
    ran = subprocess.run([str(ROOT / "bin" / "haven"), "topics", "apply"], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    assert "0 changed (replication 1, min.insync.replicas 1)" in ran.stdout, "the catalog is already in place"
