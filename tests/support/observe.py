"""Watching the real broker and database from tests: read topics, wait for events, poll until true."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from events.envelope import Envelope, from_kafka
from infra.stack import kafka_data_dir, pg_tool
from services.kernel import kafka
from services.kernel.settings import Settings


async def read_until(settings: Settings, topic: str, done: Callable[[list[Any]], bool], *, timeout: float) -> list[Any]:
    """Messages on ``topic`` from the beginning until ``done(messages)`` holds or the timeout passes.

    Reads 300 ms more after that, so that an unexpected extra message (a duplicate) shows too.
    """
    reader = AIOKafkaConsumer(topic, **kafka.auth(settings), auto_offset_reset="earliest", group_id=None)
    await reader.start()
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(messages) and time.monotonic() < deadline:
            for batch in (await reader.getmany(timeout_ms=200)).values():
                messages.extend(batch)
        for batch in (await reader.getmany(timeout_ms=300)).values():
            messages.extend(batch)
    finally:
        await reader.stop()
    return messages


async def read_to_end(settings: Settings, topic: str, *, timeout: float = 30.0) -> list[Any]:
    """Every message on every partition of ``topic``, up to the end offsets taken when it starts.

    For tests of absence: it fails unless it reached each partition's end, so an empty answer means
    the topic held nothing, not that the reader gave up early.
    """
    reader = AIOKafkaConsumer(topic, **kafka.auth(settings), group_id=None,
                              enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
    await reader.start()
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while not reader.assignment():  # without a group, every partition is assigned once metadata arrives
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: no partitions assigned within {timeout}s; does it exist?")
            await asyncio.sleep(0.05)
        partitions = sorted(reader.assignment(), key=lambda tp: tp.partition)
        ends = await reader.end_offsets(partitions)

        async def behind() -> dict[int, tuple[int, int]]:
            """Partitions not yet read to their end offset: partition → (position, end)."""
            positions = {tp: await reader.position(tp) for tp in partitions}
            return {tp.partition: (positions[tp], end) for tp, end in ends.items() if positions[tp] < end}

        while short := await behind():
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: did not reach the end offsets within {timeout}s: {short}")
            for tp, batch in (await reader.getmany(*partitions, timeout_ms=200)).items():
                messages.extend(m for m in batch if m.offset < ends[tp])
    finally:
        await reader.stop()
    return messages


async def read_topic(settings: Settings, topic: str, *, expect: int, timeout: float = 60.0) -> list[Any]:
    """Every message on ``topic``, once ``expect`` have arrived (or the timeout)."""
    return await read_until(settings, topic, lambda messages: len(messages) >= expect, timeout=timeout)


async def eventually(check: Any, *, timeout: float = 30.0) -> None:
    """Poll ``check()`` (async, truthy when done) until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check.__doc__ or check}")
        await asyncio.sleep(0.1)


async def wait_for_events(
    settings: Settings, topic: str, *, subject: str, types: list[str], timeout: float = 30.0
) -> list[Envelope]:
    """The events about ``subject`` on ``topic``, once every type in ``types`` (with repeats) has appeared."""
    key = subject.encode()

    def about_subject(messages: list[Any]) -> list[Envelope]:
        return [from_kafka(m.value, m.headers) for m in messages if m.key == key]

    def complete(messages: list[Any]) -> bool:
        return not Counter(types) - Counter(e.type for e in about_subject(messages))

    messages = await read_until(settings, topic, complete, timeout=timeout)
    found = about_subject(messages)
    if not complete(messages):
        raise AssertionError(f"on {topic} for {subject}: wanted {types}, saw {[e.type for e in found]}")
    return found


def pg_dump(settings: Settings) -> bytes:
    """The whole database as pg_dump writes it."""
    command = [str(pg_tool("pg_dump")), "-h", "127.0.0.1", "-p", str(settings.pg_port), "-U", settings.pg_user]
    return subprocess.run([*command, settings.pg_database], capture_output=True, check=True).stdout


def broker_log_files(settings: Settings) -> dict[Path, bytes]:
    """Every log segment the broker has written, byte for byte."""
    return {p: p.read_bytes() for p in kafka_data_dir(settings).rglob("*.log") if p.is_file()}
