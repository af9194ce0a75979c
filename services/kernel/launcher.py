"""``make run``: start Haven's processes as children, restart one that crashes (with backoff), and stop them all on
Ctrl-C or SIGTERM.

By default every service and the gateway run in one process (``services.kernel.host``, ``haven serve --services
all``) beside the deadline worker; ``make run SPLIT=1`` (``HAVEN_SPLIT=1``) starts one process per service instead,
as the Helm chart deploys them. A service is a folder ``services/<name>/`` with an ``app.py``, started alone as
``python -m services.<name>.app``; a service may also have workers (``*_worker.py``), started the same way.
Nothing here imports a service: services meet through events.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from services.kernel.migrations import role_of
from services.kernel.settings import Settings

SERVICES_ROOT = Path(__file__).parent.parent
HOST = "services.kernel.host"
"""Every service and the gateway in one process (``make run``'s default)."""
DEMO_BANNER = "demo.txt"
"""In the run directory: the URLs and demo keys ``haven seed-demo`` made, printed once every process is ready."""


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


def ready(urls: dict[str, str], timeout: float, stopping: Callable[[], bool]) -> list[str]:
    """Wait until every ``/readyz`` answers 200, ``timeout`` passes or ``stopping()``; what is still not ready."""
    waiting, deadline = dict(urls), time.monotonic() + timeout
    while waiting and time.monotonic() < deadline and not stopping():
        for name, url in list(waiting.items()):
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:  # our own loopback probe
                    if answer.status == 200:
                        del waiting[name]
            except OSError:
                pass
        time.sleep(0.3)
    return list(waiting)


def parse_replicas(text: str) -> int | dict[str, int]:
    """``HAVEN_REPLICAS``: one count for every process, or counts by service (the others run once).

    >>> parse_replicas("2"), parse_replicas("shelter=2, health=3"), parse_replicas("")
    (2, {'shelter': 2, 'health': 3}, 1)
    """
    if "=" not in text:
        return int(text or 1)
    return {name.strip(): int(n) for name, n in (part.split("=", 1) for part in text.split(",") if part.strip())}


def plan(
    settings: Settings, apps: list[str], replicas: int | Mapping[str, int], gateway_port: int, *, split: bool = False
) -> dict[str, tuple[str, dict[str, str]]]:
    """Each process to start, by name: its module and its own environment. Unless ``split``, the services and the
    gateway among ``apps`` are one process (``HOST``). With ``replicas`` above 1, each process runs that many times in
    its consumer group (Kafka splits the partitions), each gateway on the next port (they share the rate limit and
    the read model through PostgreSQL); given by service (``{"shelter": 2}``), only those run more than once. Every
    process answers its probes on a port of its own, counted up from
    ``health_base_port``."""
    if not split:
        apps = [HOST, *(app for app in apps if not app.endswith(".app"))]
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for app in apps:
        count = replicas if isinstance(replicas, int) else replicas.get(_short(app), 1)
        for n in range(count):
            name = app if count == 1 else f"{app}#{n + 1}"
            # Its name is its static membership in its consumer group: restarted, it takes its partitions back.
            env = {"HAVEN_HEALTH_PORT": str(settings.health_base_port + len(found)), "HAVEN_KAFKA_INSTANCE_ID": name}
            if app == HOST:  # each service inside signs in as its own role and user; its one consumer as haven_all
                env["HAVEN_KAFKA_USERNAME"] = role_of("all")
            elif app.endswith(".app"):  # each connects as its own role, owning its schema only, and Kafka user
                env["HAVEN_PG_USER"] = env["HAVEN_KAFKA_USERNAME"] = role_of(
                    app.removesuffix(".app").rsplit(".", 1)[-1]
                )
            else:
                env["HAVEN_KAFKA_USERNAME"] = role_of("deadlines")
            if app in ("gateway.app", HOST):
                env["HAVEN_GATEWAY_PORT"] = str(gateway_port + n)
            found[name] = (app, env)
    return found


def main() -> int:
    settings = Settings()
    replicas = parse_replicas(os.environ.get("HAVEN_REPLICAS", ""))
    split = os.environ.get("HAVEN_SPLIT", "").lower() in ("1", "true", "yes")
    apps = [*discover_apps(), "gateway.app"]  # the gateway is installed from graphql/gateway/ as `gateway`
    processes = plan(settings, apps, replicas, int(os.environ.get("HAVEN_GATEWAY_PORT", "28000")), split=split)
    supervisor = Supervisor({name: ([sys.executable, "-m", app], env) for name, (app, env) in processes.items()})
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    supervisor.start_all()
    print(f"haven ▸ Kafka {settings.kafka_bootstrap_servers} · PostgreSQL {settings.dsn}", flush=True)
    each = f"{replicas} of each" if isinstance(replicas, int) else ", ".join(f"{n} {s}" for s, n in replicas.items())
    print(f"haven ▸ starting {len(processes)} processes ({each}); waiting until each is ready …", flush=True)
    probes = {name: env["HAVEN_HEALTH_PORT"] for name, (_, env) in processes.items()}
    urls = {name: f"http://{settings.health_host}:{port}/readyz" for name, port in probes.items()}
    late = ready(urls, timeout=120, stopping=lambda: stopping)
    print(f"haven ▸ {len(processes) - len(late)} of {len(processes)} ready in {time.monotonic() - started:.1f}s"
          + (f"; not yet: {', '.join(late)}" if late else ""))  # fmt: skip
    print("haven ▸ probes (/healthz /readyz /metrics): "
          + " · ".join(f"{_short(name)} :{port}" for name, port in probes.items()))  # fmt: skip
    if replicas != 1:
        gateways = [
            env["HAVEN_GATEWAY_PORT"] for env in (e for _, e in processes.values()) if "HAVEN_GATEWAY_PORT" in env
        ]
        print(f"haven ▸ {replicas} gateways, on ports {', '.join(gateways)}")
    banner = settings.run_dir / DEMO_BANNER
    if banner.exists():
        print(banner.read_text(), end="")
    how = "one process per service" if split else "every service in one process; make run SPLIT=1 runs one per service"
    more = "" if replicas != 1 else "; make run REPLICAS=2 runs two of each"
    print(f"haven ▸ services running, {how} — Ctrl-C stops them (HAVEN_LOG_LEVEL=DEBUG says more{more})",
          flush=True)  # fmt: skip
    while not stopping:
        for line in supervisor.tend():
            print(f"haven ▸ {line}", flush=True)
        time.sleep(0.2)
    for line in supervisor.stop():
        print(f"haven ▸ {line}", flush=True)
    print("haven ▸ services stopped; `make infra-down` stops Kafka and PostgreSQL", flush=True)
    return 0


def _short(name: str) -> str:
    """``services.legal_aid.app#2`` → ``legal_aid#2``; ``services.referrals.deadline_worker`` → ``deadline_worker``;
    ``services.kernel.host`` → ``haven``."""
    module, _, n = name.partition("#")
    module = "haven" if module == HOST else module
    short = module.removesuffix(".app").removeprefix("services.").removeprefix("referrals.")
    return f"{short}#{n}" if n else short


if __name__ == "__main__":
    sys.exit(main())
