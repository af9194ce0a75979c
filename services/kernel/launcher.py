"""``make run``: start every service's processes as children, restart one that crashes (with backoff), and stop
them all on Ctrl-C or SIGTERM.

A service is a folder ``services/<name>/`` with an ``app.py``, started as ``python -m services.<name>.app``;
a service may also have workers (``*_worker.py``), started the same way. Nothing here imports a
service: services meet through events.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.kernel.settings import Settings

SERVICES_ROOT = Path(__file__).parent.parent


def discover_apps(root: Path = SERVICES_ROOT) -> list[str]:
    """Module names of every service app and worker, in a stable order."""
    return [
        f"services.{d.name}.{module.stem}"
        for d in sorted(root.iterdir())
        if (d / "app.py").is_file()
        for module in sorted([d / "app.py", *d.glob("*_worker.py")])
    ]


class Supervisor:
    """Child processes kept running: one that exits is started again after a pause that doubles with each quick
    exit (up to ``ceiling`` seconds) and resets once it has run for a minute; ``stop`` ends them all by their pid."""

    def __init__(self, commands: dict[str, tuple[list[str], dict[str, str]]], first_pause: float = 1.0,
                 ceiling: float = 30.0, steady: float = 60.0) -> None:  # fmt: skip
        self.commands, self.first_pause, self.ceiling, self.steady = commands, first_pause, ceiling, steady
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[str, float] = {}
        self.pauses: dict[str, float] = {}
        self.due: dict[str, float] = {}
        self.restarts: dict[str, int] = dict.fromkeys(commands, 0)

    def start(self, name: str) -> None:
        argv, env = self.commands[name]
        self.children[name] = subprocess.Popen(argv, env={**os.environ, **env})
        self.started[name] = time.monotonic()

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    def tend(self) -> list[str]:
        """Restart what is due, schedule what exited; what was said, one line each."""
        said, now = [], time.monotonic()
        for name, child in self.children.items():
            if name in self.due:
                if now >= self.due[name]:
                    del self.due[name]
                    self.restarts[name] += 1
                    self.start(name)
                    said.append(f"{name} restarted")
                continue
            if child.poll() is None:
                continue
            ran = now - self.started[name]
            pause = self.first_pause if ran >= self.steady else min(self.pauses.get(name, 0) * 2 or self.first_pause,
                                                                    self.ceiling)  # fmt: skip
            self.pauses[name], self.due[name] = pause, now + pause
            said.append(f"{name} exited with {child.returncode} after {ran:.0f}s; restarting in {pause:.1f}s")
        return said

    def stop(self, timeout: float = 30.0) -> list[str]:
        """SIGTERM to every child still running, then wait; kill what does not stop in time."""
        said = []
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for name, child in self.children.items():
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                said.append(f"{name} did not stop in {timeout:.0f}s; killing it")
                child.kill()
                child.wait()
        return said


def main() -> int:
    settings = Settings()
    apps = discover_apps()
    apps.append("gateway.app")  # installed from graphql/gateway/ as the package `gateway`
    # Each service answers /healthz and /readyz on a port of its own, counted up from health_base_port.
    probes = {app: settings.health_base_port + i for i, app in enumerate(a for a in apps if a.endswith(".app")
                                                                       and a != "gateway.app")}  # fmt: skip
    supervisor = Supervisor({app: ([sys.executable, "-m", app],
                                   {"HAVEN_HEALTH_PORT": str(probes[app])} if app in probes else {})
                             for app in apps})  # fmt: skip
    supervisor.start_all()
    print(f"haven ▸ Kafka {settings.kafka_bootstrap_servers} · PostgreSQL {settings.dsn}", flush=True)
    for app, port in probes.items():
        print(f"haven ▸ {app.removeprefix('services.').removesuffix('.app'):<15} "
              f"http://{settings.health_host}:{port}/readyz")  # fmt: skip
    print(f"haven ▸ {len(apps)} services running: {', '.join(apps)} — Ctrl-C stops them", flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        for line in supervisor.tend():
            print(f"haven ▸ {line}", flush=True)
        time.sleep(0.2)
    for line in supervisor.stop():
        print(f"haven ▸ {line}", flush=True)
    print("haven ▸ services stopped; `make infra-down` stops Kafka and PostgreSQL", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
