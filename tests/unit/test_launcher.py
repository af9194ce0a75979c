"""The local launcher keeps every service running: a child that exits is started again, after a pause that grows
while it keeps failing, and stop ends every child by its pid."""

from __future__ import annotations

import sys
import time

from services.kernel.launcher import HOST, Supervisor, discover_apps, plan
from services.kernel.settings import Settings


def tend_until(supervisor: Supervisor, done: float) -> list[str]:
    said = []
    while time.monotonic() < done:
        said += supervisor.tend()
        time.sleep(0.02)
    return said


def test_a_crashing_child_is_restarted_with_growing_pauses_and_the_others_run_on() -> None:
    crashing = [sys.executable, "-c", "import sys; sys.exit(3)"]
    steady = [sys.executable, "-c", "import time; time.sleep(60)"]
    supervisor = Supervisor({"crashing": (crashing, {}), "steady": (steady, {})}, first_pause=0.1, ceiling=0.4)
    supervisor.start_all()
    steady_pid = supervisor.children["steady"].pid
    try:
        said = tend_until(supervisor, time.monotonic() + 2.0)
    finally:
        stopped = supervisor.stop(timeout=5)

    exits = [line for line in said if line.startswith("crashing exited with 3")]
    pauses = [float(line.rsplit("in ", 1)[1].removesuffix("s")) for line in exits]
    assert supervisor.restarts["crashing"] >= 3, said
    assert pauses[:3] == [0.1, 0.2, 0.4], "each quick exit doubles the pause"
    assert set(pauses[3:]) <= {0.4}, "up to the ceiling"
    assert supervisor.restarts["steady"] == 0
    assert supervisor.children["steady"].pid == steady_pid, "the others run on untouched"
    assert stopped == [], "every child stopped on SIGTERM"
    assert all(child.poll() is not None for child in supervisor.children.values())


def test_by_default_every_service_and_the_gateway_share_one_process_beside_the_deadline_worker() -> None:
    apps = [*discover_apps(), "gateway.app"]
    one = plan(Settings(health_base_port=28100), apps, 1, 28000)
    assert sorted(app for app, _ in one.values()) == [HOST, "services.referrals.deadline_worker"]
    host = one[HOST][1]
    assert host["HAVEN_KAFKA_USERNAME"] == "haven_all", "its consumer signs in as a user of its own"
    assert host["HAVEN_GATEWAY_PORT"] == "28000"
    two = plan(Settings(health_base_port=28100), apps, 2, 28000)
    assert sorted(env.get("HAVEN_GATEWAY_PORT", "") for app, env in two.values() if app == HOST) == ["28000", "28001"]


def test_split_replicas_run_two_of_every_process_each_with_its_own_probe_port_and_gateways_side_by_side() -> None:
    apps = [*discover_apps(), "gateway.app"]
    one = plan(Settings(health_base_port=28100), apps, 1, 28000, split=True)
    two = plan(Settings(health_base_port=28100), apps, 2, 28000, split=True)
    assert set(one) == set(apps)
    assert len(two) == 2 * len(apps)
    assert sorted(app for app, _ in two.values()) == sorted(apps * 2)
    ports = [env["HAVEN_HEALTH_PORT"] for _, env in two.values()]
    assert len(set(ports)) == len(ports), "no two processes share a probe port"
    names = [env["HAVEN_KAFKA_INSTANCE_ID"] for _, env in two.values()]
    assert len(set(names)) == len(names), "each is a static member of its group under a name of its own"
    assert plan(Settings(health_base_port=28100), apps, 2, 28000, split=True) == two, "the same names when restarted"
    assert sorted(env["HAVEN_GATEWAY_PORT"] for app, env in two.values() if app == "gateway.app") == ["28000", "28001"]
