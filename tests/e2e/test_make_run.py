"""`make run` brings the stack up, `make infra-down` stops it, and a second `make run` downloads nothing.

Runs a third stack (its own ports and run directory) beside the test stack.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    # tmp_path is private to root: PostgreSQL's data directory must then live where postgres can reach it.
    env = {
        **os.environ,
        "HAVEN_RUN_DIR": str(tmp_path / "run"),
        "HAVEN_KAFKA_PORT": "22092",
        "HAVEN_KAFKA_CONTROLLER_PORT": "22093",
        "HAVEN_PG_PORT": "22432",
        "HAVEN_GATEWAY_PORT": "22000",
        "HAVEN_HEALTH_BASE_PORT": "22100",
    }
    yield env
    subprocess.run(["make", "--no-print-directory", "clean-stack"], cwd=ROOT, env=env, capture_output=True)


def make_run_until_ready(env: dict[str, str], timeout: float = 240) -> str:
    """Start `make run`, wait for its ready line, stop it with Ctrl-C; return what it printed."""
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            lines.append(line)
            if "services running" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
        else:
            pytest.fail("make run ended before it was ready:\n" + "".join(lines))
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        out, _ = proc.communicate(timeout=60)
        lines.append(out)
    return "".join(lines)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def stack_pids(env: dict[str, str]) -> list[int]:
    run = Path(env["HAVEN_RUN_DIR"])
    pgdata = Path((run / "pgdata.path").read_text().strip())
    return [int((run / "kafka.pid").read_text()), int((pgdata / "postmaster.pid").read_text().split()[0])]


def test_make_run_then_infra_down_then_a_second_run_downloads_nothing(env: dict[str, str]) -> None:
    first = make_run_until_ready(env)
    assert "Kafka up on 127.0.0.1:22092" in first
    assert "PostgreSQL up on 127.0.0.1:22432" in first
    # It ends with what a newcomer needs, after every process said it is ready: the URLs, each probe port, the keys.
    ending = first[first.index(" ready in ") : first.index("services running")]
    assert re.search(r"haven ▸ (\d+) of \1 ready in", first), first[-3000:]
    assert "console  http://127.0.0.1:22000/console" in ending
    assert "probes (/healthz /readyz /metrics)" in ending
    assert re.search(r"probes \(/healthz /readyz /metrics\): haven :\d+ · deadline_worker :\d+\n", ending), (
        "one process for every service, and the deadline worker"
    )
    assert "make run SPLIT=1 runs one per service" in first, "it says how to split them"
    assert re.search(r"city-hotline\s+intake\s+\S{20,}", ending), "a demo key, after the ready line"
    for chatter in ("ƒaµS", "Updating subscribed topics", "Joined group", "Discovered coordinator"):
        assert chatter not in first, f"library chatter in make run's output: {chatter!r}"
    pids = stack_pids(env)
    assert all(alive(p) for p in pids), "Ctrl-C stops the services, not Kafka and PostgreSQL"

    subprocess.run(["make", "--no-print-directory", "infra-down"], cwd=ROOT, env=env, check=True, capture_output=True)
    assert not any(alive(p) for p in pids), "infra-down stops both"

    second = make_run_until_ready(env)
    assert "nothing to download" in second
    assert "fetching" not in second
    assert "pip install" not in second
    assert re.search(r"topics: \d+ in the catalog, 0 changed", second), "the data of the first run is kept"
