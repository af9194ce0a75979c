"""Running a service's components until SIGTERM or SIGINT, then stopping them gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

Component = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def run_until_stopped(*components: Component, stop: asyncio.Event | None = None) -> None:
    """Run each ``component(stop)`` until a signal sets ``stop`` or one of them fails.

    Each component finishes the work in hand when ``stop`` is set (a relay drains what has
    committed, a consumer commits its batch). If one fails, the others are stopped and the
    failure is raised.

    A service passes its relay's and consumer's ``run``; any coroutine function taking ``stop`` will do:

    >>> async def worker(stop: asyncio.Event) -> None:
    ...     await stop.wait()  # a real component finishes the work in hand here
    ...     print("drained")
    >>> async def failing(stop: asyncio.Event) -> None:
    ...     raise RuntimeError("broker gone")
    >>> asyncio.run(run_until_stopped(worker, failing))
    Traceback (most recent call last):
    ...
    RuntimeError: broker gone
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(component(stop)) for component in components]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def wait_any(*events: asyncio.Event, timeout: float) -> None:
    """Return when any of ``events`` is set or ``timeout`` seconds have passed, whichever is first."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)


def reconnecting(what: str, component: Component, *, ceiling: float = 5.0) -> Component:
    """``component``, started again whenever the database goes away under it (stopped, restarted, cut off), after a
    pause that doubles up to ``ceiling`` seconds, instead of failing and stopping its whole process."""
    from services.kernel.db import CONNECTION_LOST  # the kernel's floors: db imports settings

    async def run(stop: asyncio.Event) -> None:
        pause = 0.25
        while not stop.is_set():
            try:
                await component(stop)
                return
            except CONNECTION_LOST as exc:
                log.warning("%s: the database is unreachable (%s); retrying in %.1fs", what, exc, pause)
                await wait_any(stop, timeout=pause)
                pause = min(pause * 2, ceiling)

    return run
