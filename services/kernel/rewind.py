"""Rewind a service: apply again, from the start of the topics it reads, the event types its newer handlers need.

A measure added to a running service (a new table filled from an event type it already reads, or a new handler)
starts empty: the service's consumer group is past the older events. To fill it from history, stop the service,
run ``bin/haven rewind SERVICE --types needs.assessed …``, and start it again:

1. the service's inbox forgets the named event types (every type it handles, if none is named);
2. its consumer group starts again at the beginning of each topic the service reads;
3. on the way through, every other event finds its inbox row and is passed over as a duplicate, so only the named
   types take effect again, in their order on each partition.

The named types' handlers must be idempotent over the whole history: each keeps a latest state or inserts once
(the statistics service's are). A service that keeps nothing about an erased survivor must pass over events about
them (``ServiceSpec.pass_over_erased``): a replayed event may come after the erasure it once preceded.

The group must have no member while it is rewound (Kafka takes a group's offsets only from its members, or
from anyone while it is empty); a static member that stopped is still counted until its session times out, so
this waits for the group to empty, and says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from services.kernel import kafka
from services.kernel.db import Pool
from services.kernel.service import ServiceSpec
from services.kernel.settings import Settings

Progress = Callable[[str], None]


class NotRewound(RuntimeError):
    """The consumer group still has members (the service is running), or Kafka would not describe it."""


@dataclass(frozen=True)
class Rewound:
    forgotten: int
    """Inbox rows forgotten: events that will take effect again."""
    partitions: int
    """Partitions the group starts again at the beginning of."""


async def rewind(
    settings: Settings, spec: ServiceSpec, group: str, pool: Pool, types: Sequence[str] = (), *,
    wait: float = 60.0, progress: Progress = lambda _: None,
) -> Rewound:  # fmt: skip
    """Rewind ``spec``'s service (reading as consumer group ``group``) for ``types`` (all it handles if empty)."""
    unknown = sorted(set(types) - set(spec.handlers))
    if unknown:
        raise ValueError(f"{spec.name} handles no {', '.join(unknown)}; it handles {', '.join(sorted(spec.handlers))}")
    await until_empty(settings, group, wait, progress)
    done = await pool.execute(
        f'DELETE FROM "{spec.name}".inbox WHERE consumer = $1'
        " AND (cardinality($2::text[]) = 0 OR event_type = ANY($2))",
        spec.name, list(types),
    )  # fmt: skip
    partitions = await restart_at_beginning(settings, group, spec.topics)
    return Rewound(forgotten=int(done.split()[-1]), partitions=partitions)


async def until_empty(settings: Settings, group: str, wait: float, progress: Progress) -> None:
    """Return once ``group`` has no member; ``NotRewound`` after ``wait`` seconds."""
    admin = kafka.admin(settings)
    await admin.start()
    try:
        deadline = time.monotonic() + wait
        while True:
            (described,) = await admin.describe_consumer_groups([group])
            error, _group, state, _protocol_type, _protocol, members, *_ = described.groups[0]
            if error:
                raise NotRewound(f"consumer group {group} could not be described (Kafka error {error})")
            if not members:
                return
            if time.monotonic() > deadline:
                raise NotRewound(f"consumer group {group} still has {len(members)} member(s) ({state}): stop it first")
            progress(f"waiting for consumer group {group} to empty: {len(members)} member(s), {state}")
            await asyncio.sleep(1.0)
    finally:
        await admin.close()


async def restart_at_beginning(settings: Settings, group: str, topics: Sequence[str]) -> int:
    """Commit, as ``group`` (empty), the first offset still kept of every partition of ``topics``."""
    admin = kafka.admin(settings)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    partitions = [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]
    consumer = AIOKafkaConsumer(**kafka.auth(settings), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        first = await consumer.beginning_offsets(partitions)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in first.items()})
        return len(partitions)
    finally:
        await consumer.stop()
