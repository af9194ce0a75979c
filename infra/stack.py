"""Bring the local stack up and down: ``python -m infra.stack up|down|clean|status``.

``up`` is idempotent: it installs what is missing (apt), fetches the pinned Kafka runtime into a
cache once, starts a single-node KRaft broker and a project-local PostgreSQL cluster on
127.0.0.1, creates the catalog's topics and applies every service's migrations. Ports and the
run directory come from ``HAVEN_*`` settings, so a test stack can run beside ``make run``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from events.catalog import all_topics
from services.kernel import kafka, topics
from services.kernel.crypto import new_master_key
from services.kernel.db import create_pool
from services.kernel.migrations import assign_owners, discover_services, migrate_all, role_of
from services.kernel.settings import Settings

HERE = Path(__file__).parent
KAFKA_POM = HERE / "kafka" / "pom.xml"
KAFKA_LOG4J = HERE / "kafka" / "log4j2.properties"
IS_ROOT = os.geteuid() == 0


def say(message: str) -> None:
    print(f"haven ▸ {message}", flush=True)


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    started = time.monotonic()
    say(f"{name} …")
    yield
    say(f"{name}: done in {time.monotonic() - started:.1f}s")


# ---------------------------------------------------------------- packages


def _initdb() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1] if found else None


def pg_tool(name: str) -> Path:
    """A PostgreSQL server tool (pg_dump, pg_ctl …) of the newest installed version."""
    initdb = _initdb()
    if initdb is None:
        raise FileNotFoundError("no PostgreSQL server installed: run `make infra-up`")
    return initdb.with_name(name)


def kafka_data_dir(settings: Settings) -> Path:
    """The broker's log directory: every byte Kafka holds for this stack."""
    return settings.run_dir.resolve() / "kafka" / "data"


def _java_major() -> int:
    java = shutil.which("java")
    if not java:
        return 0
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else 0


def ensure_packages() -> None:
    """Install a PostgreSQL server, a Java 17+ runtime, Maven and Chromium (browser tests) through apt, if missing."""
    wanted = []
    if _initdb() is None:
        wanted.append("postgresql")
    if _java_major() < 17:
        wanted.append("openjdk-17-jre-headless")
    if not shutil.which("mvn"):
        wanted.append("maven")
    if not shutil.which("chromium"):
        wanted.append("chromium")  # the console's browser tests drive it (playwright's own downloads are unreachable)
    if not wanted:
        return
    if not IS_ROOT:
        sys.exit(f"missing packages {wanted}: install them (apt-get install {' '.join(wanted)}) or run as root")
    with step(f"installing {', '.join(wanted)} (apt)"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *wanted], check=True, env=env)


# ---------------------------------------------------------------- kafka


def kafka_runtime(settings: Settings) -> Path:
    """The directory of Kafka runtime jars, fetched from Maven Central once per pom version."""
    pom = KAFKA_POM.read_bytes()
    version = re.search(rb"<kafka.version>([^<]+)<", pom)
    tag = f"kafka-{version.group(1).decode() if version else 'x'}-{hashlib.sha256(pom).hexdigest()[:10]}"
    libs = settings.cache_dir / tag / "libs"
    marker = libs.parent / ".complete"
    if marker.exists():
        say(f"Kafka runtime: cached at {libs} (nothing to download)")
        return libs
    with step(f"fetching the Kafka runtime ({tag}) from Maven Central"):
        shutil.rmtree(libs, ignore_errors=True)
        libs.mkdir(parents=True)
        subprocess.run(
            [
                "mvn", "-B", "-q", "-Dstyle.color=never", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
            ],
            check=True,
        )  # fmt: skip
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    return libs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _read_pid(path: Path) -> int | None:
    """The live pid on the first line of ``path`` (our pid files, or PostgreSQL's postmaster.pid)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(path.read_text().splitlines()[0].strip())
        return pid if _alive(pid) else None
    return None


def _refuse_busy_port(port: int, what: str, variable: str) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(
                f"port {port} for {what} is taken by a process this run directory did not start: "
                f"stop it, or choose another port with {variable}"
            )


KAFKA_ADMIN = "haven"


def kafka_user_names() -> list[str]:
    """The admin, one user per process of the chart, and ``haven_all`` (``haven serve --services all``'s consumer)."""
    return [KAFKA_ADMIN, *(role_of(name) for name, _ in discover_services()), role_of("gateway"), role_of("deadlines"),
            role_of("all")]  # fmt: skip


def kafka_users(settings: Settings) -> dict[str, str]:
    """Every Kafka user of the local stack and its password: the admin, and one per process (its database role's
    name). Made once with the storage, kept in the run directory (readable by its owner only)."""
    path = settings.run_dir / "kafka" / "users.json"
    if path.exists():
        users: dict[str, str] = json.loads(path.read_text())
        return users
    users = {name: secrets.token_urlsafe(24) for name in kafka_user_names()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(users, indent=2) + "\n")
    return users


def _server_properties(settings: Settings, data: Path) -> str:
    k, c = settings.kafka_port, settings.kafka_controller_port
    admin = kafka_users(settings)[KAFKA_ADMIN]
    # Clients, and the broker itself, reach the client port only by SCRAM: an anonymous client is refused there.
    # The controller listener is loopback-only; the broker reaches its controller there as ANONYMOUS.
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{c}
listeners=SASL_PLAINTEXT://127.0.0.1:{k},CONTROLLER://127.0.0.1:{c}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{k}
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
required username="{KAFKA_ADMIN}" password="{admin}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:{KAFKA_ADMIN};User:ANONYMOUS
allow.everyone.if.no.acl.found=false
log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=10000
"""


def start_kafka(settings: Settings, libs: Path) -> None:
    """Format KRaft storage once, start the broker, and wait until it answers metadata requests."""
    run = settings.run_dir.resolve()
    pid_file = run / "kafka.pid"
    if (pid := _read_pid(pid_file)) is not None:
        say(f"Kafka already running (pid {pid}) on 127.0.0.1:{settings.kafka_port}")
        asyncio.run(_wait_for_kafka(settings, timeout=60))
        return
    _refuse_busy_port(settings.kafka_port, "Kafka", "HAVEN_KAFKA_PORT")
    _refuse_busy_port(settings.kafka_controller_port, "the Kafka controller", "HAVEN_KAFKA_CONTROLLER_PORT")
    data = kafka_data_dir(settings)
    if (data / "meta.properties").exists() and not (run / "kafka" / "users.json").exists():
        sys.exit(f"this Kafka stack was made before clients authenticated: `make clean` (its data: {data}), then again")
    if (data / "meta.properties").exists() and set(kafka_user_names()) - set(kafka_users(settings)):
        sys.exit(f"this Kafka stack was made before haven serve had a user of its own: `make clean` (its data: {data}),"
                 " then again")  # fmt: skip
    data.mkdir(parents=True, exist_ok=True)
    props = run / "kafka" / "server.properties"
    props.write_text(_server_properties(settings, data))
    classpath = f"{libs}/*"
    java = ["java", "-Xms256m", "-Xmx768m", f"-Dlog4j2.configurationFile={KAFKA_LOG4J}", "-cp", classpath]
    if not (data / "meta.properties").exists():
        # KRaft cluster ids are 16 bytes in url-safe base64; derive one from the run directory.
        uuid = base64.urlsafe_b64encode(hashlib.sha256(str(run).encode()).digest()[:16]).decode().rstrip("=")
        scram = [arg for name, password in kafka_users(settings).items()
                 for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")]  # fmt: skip
        subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", uuid, "-c", str(props), *scram],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    started = time.monotonic()
    with (run / "kafka.log").open("ab") as log:
        proc = subprocess.Popen(
            [*java, "kafka.Kafka", str(props)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    pid_file.write_text(f"{proc.pid}\n")
    try:
        asyncio.run(_wait_for_kafka(settings, timeout=90, proc=proc))
    except TimeoutError:
        sys.exit(f"Kafka did not answer in 90s; see {run / 'kafka.log'}")
    elapsed = time.monotonic() - started
    (run / "kafka.start_seconds").write_text(f"{elapsed:.2f}\n")
    say(f"Kafka up on 127.0.0.1:{settings.kafka_port} (pid {proc.pid}), answering metadata in {elapsed:.1f}s")


async def _wait_for_kafka(settings: Settings, *, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    # Until the port opens, every attempt would log a connection error: the port first, then metadata.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    while True:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"Kafka exited with {proc.returncode}; see {settings.run_dir / 'kafka.log'}")
        admin = kafka.admin(settings, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.describe_cluster()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError from None
            await asyncio.sleep(0.25)
        finally:
            await admin.close()


async def create_topics(settings: Settings) -> list[str]:
    """Create or update every catalog topic (and its dead-letter topic): what was done."""
    return await topics.apply(settings)


def stop_pid(pid_file: Path, what: str, timeout: float = 30) -> None:
    pid = _read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        say(f"{what} (pid {pid}) ignored SIGTERM for {timeout:.0f}s; killing it")
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    say(f"{what} stopped (pid {pid})")


# ---------------------------------------------------------------- postgres


def _as_postgres(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    # PostgreSQL refuses to run as root: run its tools as the postgres OS user.
    full = ["runuser", "-u", "postgres", "--", *cmd] if IS_ROOT else cmd
    # From "/": the caller's directory may be one the postgres user cannot enter.
    return subprocess.run(full, cwd="/", **kwargs)  # type: ignore[call-overload,no-any-return]


def _postgres_can_reach(path: Path) -> bool:
    if not IS_ROOT:
        return True
    probe = path
    while not probe.exists():
        probe = probe.parent
    return _as_postgres(["test", "-x", str(probe)], capture_output=True).returncode == 0


def pg_data_dir(settings: Settings) -> Path:
    """The cluster's data directory: in the run directory, unless the postgres user cannot reach it."""
    run = settings.run_dir.resolve()
    recorded = run / "pgdata.path"
    if recorded.exists():
        return Path(recorded.read_text().strip())
    data = run / "postgres"
    if not _postgres_can_reach(run):
        digest = hashlib.sha256(str(run).encode()).hexdigest()[:12]
        data = Path("/var/tmp") / f"haven-pg-{digest}"
    run.mkdir(parents=True, exist_ok=True)
    recorded.write_text(f"{data}\n")
    return data


def pg_log(data: Path) -> Path:
    """The server log, beside the data directory, where the postgres user can write it."""
    return data.with_name(f"{data.name}.log")


def start_postgres(settings: Settings) -> None:
    """Create the project-local cluster once, start it on 127.0.0.1, and create the database."""
    initdb = _initdb()
    assert initdb is not None
    bindir = initdb.parent
    data = pg_data_dir(settings)
    log = pg_log(data)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if IS_ROOT:
            shutil.chown(data, "postgres", "postgres")
        data.chmod(0o700)
        _as_postgres(
            [str(initdb), "-D", str(data), "-U", settings.pg_user, "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    status = _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "status"], capture_output=True)
    if status.returncode == 0:
        say(f"PostgreSQL already running on 127.0.0.1:{settings.pg_port}")
    else:
        _refuse_busy_port(settings.pg_port, "PostgreSQL", "HAVEN_PG_PORT")
        log.touch()
        if IS_ROOT:
            shutil.chown(log, "postgres", "postgres")
        opts = (
            f"-c port={settings.pg_port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data} "
            "-c fsync=on -c max_connections=200 -c shared_buffers=256MB"
        )
        pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60"]
        _as_postgres([*pg_ctl, "start"], check=True, stdout=subprocess.DEVNULL)
        say(f"PostgreSQL up on 127.0.0.1:{settings.pg_port} (data {data})")
    asyncio.run(_ensure_database(settings))


async def _ensure_database(settings: Settings) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=settings.pg_port, user=settings.pg_user, database="postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", settings.pg_database):
            await conn.execute(f'CREATE DATABASE "{settings.pg_database}"')
    finally:
        await conn.close()


def stop_postgres(settings: Settings) -> None:
    initdb = _initdb()
    data = pg_data_dir(settings)
    if initdb is None or not (data / "postmaster.pid").exists():
        return
    _as_postgres([str(initdb.parent / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                 stdout=subprocess.DEVNULL)  # fmt: skip
    say("PostgreSQL stopped")


PROCESSES = HERE.parent / "helm" / "haven" / "files" / "processes.json"
GATEWAY_MIGRATIONS = HERE.parent / "graphql" / "gateway" / "migrations"


async def _migrate(settings: Settings) -> dict[str, list[str]]:
    pool = await create_pool(settings)
    try:
        schemas = [*discover_services(), ("gateway", GATEWAY_MIGRATIONS)]
        applied = await migrate_all(pool, schemas)
        # Each process connects as its own role, owning its schema only (make run and the tests start them so).
        await assign_owners(pool, [name for name, _ in schemas], create_roles=True)
        return applied
    finally:
        await pool.close()


def ensure_master_key(settings: Settings) -> None:
    """A local master key for this stack, made once, readable by its owner only."""
    if settings.master_key is not None or settings.master_key_file is not None:
        return
    path = settings.run_dir / "master.key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(new_master_key() + "\n")
        say(f"master key: created {path} (local stacks only; production sets HAVEN_MASTER_KEY)")


# ---------------------------------------------------------------- commands


def up(settings: Settings) -> None:
    started = time.monotonic()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    ensure_master_key(settings)
    ensure_packages()
    libs = kafka_runtime(settings)
    with step("PostgreSQL"):
        start_postgres(settings)
    with step("Kafka"):
        start_kafka(settings, libs)
    done = asyncio.run(create_topics(settings))
    news = [d for d in done if not d.startswith("created ")]  # what was created is said by the count
    say(f"topics: {len(all_topics())} in the catalog, {len(done)} changed" + "".join(f"\n  {d}" for d in news))
    # Each process's Kafka user reads what it consumes and writes what it publishes, nothing else (the same list
    # the chart renders from: helm/haven/files/processes.json, generated from the code).
    processes = json.loads(PROCESSES.read_text())
    permissions = topics.acls(processes) + topics.host_acls(processes, role_of("all"), "haven-all")
    asyncio.run(topics.grant(settings, permissions))
    say(f"kafka: {len(permissions)} permissions for {len(processes)} users; anyone else is refused")
    applied = asyncio.run(_migrate(settings))
    say(f"migrations: {sum(map(len, applied.values()))} applied across {len(applied)} service schemas")
    say(f"stack ready in {time.monotonic() - started:.1f}s — Kafka {settings.kafka_bootstrap_servers}, "
        f"PostgreSQL {settings.dsn}")  # fmt: skip


def down(settings: Settings) -> None:
    stop_pid(settings.run_dir.resolve() / "kafka.pid", "Kafka")
    stop_postgres(settings)


def clean(settings: Settings) -> None:
    down(settings)
    run = settings.run_dir.resolve()
    data = pg_data_dir(settings) if run.exists() else None
    if data and not data.is_relative_to(run):
        shutil.rmtree(data, ignore_errors=True)
        pg_log(data).unlink(missing_ok=True)
    shutil.rmtree(run, ignore_errors=True)
    say(f"removed {run}")


def status(settings: Settings) -> int:
    run = settings.run_dir.resolve()
    kafka = _read_pid(run / "kafka.pid")
    say(f"Kafka: {'running, pid ' + str(kafka) if kafka else 'stopped'}")
    pg_pid = _read_pid(pg_data_dir(settings) / "postmaster.pid") if run.exists() else None
    say(f"PostgreSQL: {'running, pid ' + str(pg_pid) if pg_pid else 'stopped'}")
    return 0 if kafka and pg_pid else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "clean", "status"])
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "status":
        return status(settings)
    {"up": up, "down": down, "clean": clean}[args.command](settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
