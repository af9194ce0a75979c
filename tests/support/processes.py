"""Services run as real processes, the way `make run` runs them, stopped by their pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from services.kernel.migrations import role_of

ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    """``python -m services.<name>.app`` (or ``services.<name>`` for ``referrals.deadline_worker``),
    started and stopped on demand; its output goes to a log file."""

    def __init__(self, name: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.module = (
            "gateway.app" if name == "gateway" else f"services.{name}" if "." in name else f"services.{name}.app"
        )
        self.log = log_dir / f"{name}.log"
        # Each connects as its own database role, as make run and the chart run it: least privilege under test.
        # Kafka too: each as its own user (the deadline worker has no database).
        own_role = ({"HAVEN_KAFKA_USERNAME": role_of("deadlines")} if "." in name else
                    {"HAVEN_PG_USER": role_of(name), "HAVEN_KAFKA_USERNAME": role_of(name)})  # fmt: skip
        self.env = {**own_role, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )  # fmt: skip
        # The gateway says so once its HTTP server listens; a service, as its consumer and relay start.
        self._wait_for("serving http://" if self.name in ("gateway", "kernel.host") else "serving", timeout=60)
        return self

    def _wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> int:
        """SIGTERM, as a deployment would; return the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code


def running(
    log_dir: Path,
    names: Iterable[str],
    gateway: dict[str, str] | None = None,
    each: Mapping[str, dict[str, str]] | None = None,
) -> Iterator[dict[str, ServiceProcess]]:
    """For a module fixture: ``names`` started in order (the gateway with the ``gateway`` environment, any of them
    with its own from ``each``), then, when the module is done, each still running stopped by SIGTERM and required
    to exit cleanly."""
    own = {n: {**(each or {}).get(n, {}), **(gateway or {} if n == "gateway" else {})} for n in names}
    processes = start_all({n: ServiceProcess(n, log_dir, env=own[n]) for n in names})
    yield processes
    for process in processes.values():
        if process.proc is not None:  # a test may have stopped one itself
            assert process.stop() == 0, f"{process.name} stops cleanly on SIGTERM"


def start_all(processes: dict[str, ServiceProcess]) -> dict[str, ServiceProcess]:
    """Start each in order; if one cannot start, stop those already started (no orphans) and re-raise."""
    started: list[ServiceProcess] = []
    try:
        for process in processes.values():
            started.append(process.start())
    except BaseException:
        for process in started:
            process.stop()
        raise
    return processes
