"""``make run``: start every service's processes as children and stop them all on Ctrl-C or SIGTERM.

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


def main() -> int:
    settings = Settings()
    apps = discover_apps()
    apps.append("gateway.app")  # installed from graphql/gateway/ as the package `gateway`
    # Each service answers /healthz and /readyz on a port of its own, counted up from health_base_port.
    probes = {app: settings.health_base_port + i for i, app in enumerate(a for a in apps if a.endswith(".app")
                                                                       and a != "gateway.app")}  # fmt: skip
    children = {app: subprocess.Popen([sys.executable, "-m", app],
                                      env={**os.environ, **({"HAVEN_HEALTH_PORT": str(probes[app])}
                                                            if app in probes else {})})
                for app in apps}  # fmt: skip
    print(f"haven ▸ Kafka {settings.kafka_bootstrap_servers} · PostgreSQL {settings.dsn}", flush=True)
    for app, port in probes.items():
        print(f"haven ▸ {app.removeprefix('services.').removesuffix('.app'):<15} "
              f"http://{settings.health_host}:{port}/readyz")  # fmt: skip
    print(f"haven ▸ {len(children)} services running: {', '.join(apps) or '(none yet)'} — Ctrl-C stops them")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        for app, child in children.items():
            if child.poll() is not None:
                print(f"haven ▸ {app} exited with {child.returncode}; stopping the others", flush=True)
                stopping = True
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for app, child in children.items():
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print(f"haven ▸ {app} did not stop in 30s; killing it", flush=True)
            child.kill()
    print("haven ▸ services stopped; `make infra-down` stops Kafka and PostgreSQL", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
