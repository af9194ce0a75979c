"""Provisioning the catalog's topics on any cluster: ``bin/haven topics apply``, ``make infra-up``, a chart's Job.

Idempotent: a second run changes nothing. Partitions, replication, ``min.insync.replicas`` and retention come from
settings (``HAVEN_TOPIC_*``), so a production cluster gets replication factor 3 and two in-sync replicas while the
local single broker gets 1 and 1. A partition count is raised, never lowered (Kafka cannot, and a key would move to
another partition and lose its order); an existing topic's replication factor is reported, not changed (that is a
partition reassignment, planned with the cluster's own tools).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.admin import CreateAclsRequest

from events.catalog import TopicSpec, all_topics, dlq_name
from services.kernel import kafka
from services.kernel.settings import Settings

# Kafka's codes for ACLs (the CreateAcls request): resource types, pattern types, operations, permission.
TOPIC, GROUP = 2, 3
LITERAL, PREFIXED = 3, 4
ALL, READ, WRITE = 2, 3, 4
ALLOW = 3


@dataclass(frozen=True)
class Acl:
    """One permission: ``user`` may do ``operation`` on the topic or group ``name`` (or every name with that
    prefix)."""

    user: str
    resource: int
    name: str
    operation: int
    pattern: int = LITERAL


def acls(processes: dict[str, dict[str, Any]]) -> list[Acl]:
    """Least privilege on Kafka: each process's user reads the topics it consumes with its own group, and writes
    only what it publishes (its ``writes``) and the dead-letter topics of what it reads. It may also read what it
    publishes, without a group: a relay taking over looks there for what its predecessor sent before it died."""
    found = []
    for process in processes.values():
        user, group = process["user"], process["group"]
        found += [Acl(user, TOPIC, topic, READ) for topic in process["topics"]]
        found.append(Acl(user, GROUP, group, READ))
        found += [Acl(user, TOPIC, topic, WRITE) for topic in [*process["writes"], *map(dlq_name, process["topics"])]]
        found += [Acl(user, TOPIC, topic, READ) for topic in process["writes"] if topic not in process["topics"]]
        if process["kind"] == "worker":  # faust's own changelog and assignor topics, which it creates
            found += [Acl(user, TOPIC, group, ALL, PREFIXED), Acl(user, GROUP, group, ALL, PREFIXED)]
    return found


def host_acls(processes: dict[str, dict[str, Any]], user: str, group: str) -> list[Acl]:
    """What one process running every service (``haven serve --services all``) needs for its one consumer: reading
    what any service or the gateway consumes, with ``group``, and writing the dead letters of it. What each service
    publishes goes out as that service's own user (``acls``)."""
    read = sorted({t for p in processes.values() if p["kind"] != "worker" for t in p["topics"]})
    return [*(Acl(user, TOPIC, t, READ) for t in read), Acl(user, GROUP, group, READ),
            *(Acl(user, TOPIC, dlq_name(t), WRITE) for t in read)]  # fmt: skip


async def grant(settings: Settings, wanted: list[Acl]) -> int:
    """Create ``wanted`` on the cluster (as an admin; creating an ACL that exists changes nothing); how many."""
    admin = kafka.admin(settings)
    await admin.start()
    try:
        for acl in wanted:
            request = CreateAclsRequest(acl.resource, acl.name, acl.pattern, f"User:{acl.user}", "*", acl.operation,
                                        ALLOW)  # fmt: skip
            response = await admin._send_request(request)  # aiokafka's admin client has no ACL call of its own
            errors = [e for e in response.creation_responses if e[0] != 0]
            if errors:
                raise RuntimeError(f"could not grant {acl}: {errors}")
    finally:
        await admin.close()
    return len(wanted)


class TopicRefused(ValueError):
    """A change the cluster cannot make safely; the message says which topic and why."""


@dataclass(frozen=True)
class Wanted:
    """One topic as this cluster should have it."""

    name: str
    partitions: int
    replication: int
    configs: dict[str, str]


def wanted(settings: Settings, specs: list[TopicSpec] | None = None) -> list[Wanted]:
    """The catalog's topics (and dead-letter topics) with this deployment's durability settings applied."""
    found = []
    for spec in specs if specs is not None else all_topics():
        configs = {**spec.kafka_configs(), "min.insync.replicas": str(settings.topic_min_insync_replicas),
                   "unclean.leader.election.enable": "false"}  # fmt: skip
        partitions = spec.partitions
        if not spec.name.endswith(".dlq"):  # dead letters keep their own small shape
            if settings.topic_retention_ms is not None and spec.cleanup_policy == "delete":
                configs["retention.ms"] = str(settings.topic_retention_ms)
            partitions = settings.topic_partitions or partitions
        found.append(Wanted(spec.name, partitions, settings.topic_replication_factor, configs))
    return found


async def apply(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create what is missing and bring what exists to its settings; what was done, one line each.

    Raises :class:`TopicRefused`, before changing anything, when a topic would lose partitions."""
    admin = kafka.admin(settings)
    await admin.start()
    try:
        targets = wanted(settings, specs)
        existing = {t["topic"]: t for t in await admin.describe_topics([t.name for t in targets])
                    if t["error_code"] == 0}  # fmt: skip
        count = {name: len(t["partitions"]) for name, t in existing.items()}
        lower = [f"{t.name}: has {count[t.name]} partitions, wanted {t.partitions}"
                 for t in targets if t.name in count and count[t.name] > t.partitions]  # fmt: skip
        if lower:
            raise TopicRefused(
                "refusing to lower a partition count (Kafka cannot shrink a topic, and each key would move to "
                "another partition and lose its order): " + "; ".join(lower)
            )
        done = []
        missing = [t for t in targets if t.name not in existing]
        if missing:
            await admin.create_topics([NewTopic(t.name, t.partitions, t.replication, topic_configs=t.configs)
                                       for t in missing])  # fmt: skip
            done += [f"created {t.name} ({t.partitions} partitions, replication {t.replication})" for t in missing]
        present = [t for t in targets if t.name in existing]
        grow = {t.name: NewPartitions(t.partitions) for t in present if count[t.name] < t.partitions}
        if grow:
            await admin.create_partitions(grow)
            done += [f"raised {name} to {p.total_count} partitions" for name, p in grow.items()]
        current = await _configs(admin, [t.name for t in present])
        stale = [t for t in present if any(current.get(t.name, {}).get(k) != v for k, v in t.configs.items())]
        if stale:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t.name, t.configs) for t in stale])
            for t in stale:
                changed = sorted(k for k, v in t.configs.items() if current[t.name].get(k) != v)
                done.append(f"updated {t.name}: {', '.join(changed)}")
        for t in present:
            replicas = len(existing[t.name]["partitions"][0]["replicas"]) if existing[t.name]["partitions"] else 0
            if replicas != t.replication:
                done.append(f"note {t.name}: replication {replicas}, wanted {t.replication} (reassign its partitions)")
        return done
    finally:
        await admin.close()


async def _configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """The current configuration of each topic."""
    if not names:
        return {}
    found: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names]):
        for resource in response.to_object()["resources"]:
            entries: list[dict[str, Any]] = resource["config_entries"]
            found[resource["resource_name"]] = {e["config_names"]: e["config_value"] for e in entries}
    return found
