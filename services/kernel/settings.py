"""Typed settings, read once at start from ``HAVEN_*`` environment variables."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where Haven finds Kafka and PostgreSQL, and where a local stack keeps its state.

    Local ports default to the ``make run`` stack; ``make test`` sets other ports and
    another run directory so that both can run side by side.

    >>> Settings(kafka_port=19092).kafka_bootstrap_servers
    '127.0.0.1:19092'
    """

    model_config = SettingsConfigDict(env_prefix="HAVEN_", frozen=True, extra="ignore")

    run_dir: Path = Field(default=Path(".run/dev"), description="State, logs and pids of the local stack.")
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "haven", description="Downloads kept across runs (Kafka jars)."
    )
    kafka_port: int = Field(default=29092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=29093, ge=1, le=65535)
    pg_port: int = Field(default=25432, ge=1, le=65535)
    pg_user: str = "haven"
    pg_database: str = "haven"
    kafka_servers: str = Field(default="", description="Overrides the local broker, e.g. 'k1:9092,k2:9092'.")
    database_url: str = Field(default="", description="Overrides the local PostgreSQL DSN.")
    pg_pool_max: int = Field(default=10, ge=1)
    care_grace_days: float = Field(
        default=90,
        ge=0,
        description="How long the parties to an accepted referral stay in the care team after it closes.",
    )
    health_host: str = Field(default="127.0.0.1", description="Where /healthz and /readyz answer.")
    health_port: int = Field(default=0, ge=0, le=65535, description="The probe port; 0: no probe server.")
    health_base_port: int = Field(
        default=28100, ge=1, le=65000, description="make run: each service's probe port counts up from here."
    )
    topic_replication_factor: int = Field(
        default=1, ge=1, description="Replicas of each new topic: 1 on the local broker, 3 on a production cluster."
    )
    topic_min_insync_replicas: int = Field(
        default=1, ge=1, description="Replicas that must have a write before it counts (acks=all): 2 in production."
    )
    topic_partitions: int | None = Field(
        default=None, ge=1, description="Partitions of every event and command topic, instead of the catalog's."
    )
    topic_retention_ms: int | None = Field(
        default=None, ge=-1, description="Retention of every event and command topic (-1: forever, which replay needs)."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="SASL_PLAINTEXT", description="How clients reach Kafka: every client authenticates (SCRAM-SHA-512)."
    )
    kafka_username: str = Field(default="haven", description="This process's Kafka user; its ACLs say what it may do.")
    kafka_password: SecretStr | None = Field(
        default=None, description="Its password; unset on a local stack: read from the run directory."
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=500,
        ge=0,
        le=10_000,
        description="How long the broker may hold a fetch that has less than the minimum below. With a minimum of one "
        "byte a fetch is answered as soon as anything arrives, and batches grow under load by themselves (what came in "
        "while the last batch was handled); a higher minimum with a short wait cost more CPU in make bench, not less.",
    )
    kafka_fetch_min_bytes: int = Field(default=1, ge=1, description="What a fetch waits for before it is answered.")
    kafka_instance_id: str | None = Field(
        default=None,
        description="A static member name for this process in its consumer group (KIP-345): a process restarted "
        "under the same name takes its partitions back at once, with no rebalance and no wait for the session "
        "timeout. make run's launcher names each process; leave it unset where a restart comes back under a new name "
        "(a Deployment's rolling update), or the old name's partitions wait out the session timeout.",
    )
    kafka_commit_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How often consumers commit their offsets to Kafka (the inbox already makes "
        "effects exactly-once; a crash redelivers at most this much, and the inbox drops it).",
    )
    master_key: SecretStr | None = Field(
        default=None, description="Wraps every survivor's data key (base64url, 32 bytes)."
    )
    master_key_file: Path | None = Field(
        default=None, description="Where to read the master key if HAVEN_MASTER_KEY is unset."
    )

    @model_validator(mode="after")
    def _durable(self) -> Settings:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError("topic_min_insync_replicas cannot exceed topic_replication_factor: no write would count")
        return self

    def master_key_text(self) -> str:
        """The master key as configured; names the settings to set when there is none."""
        if self.master_key is not None:
            return self.master_key.get_secret_value()
        path = self.master_key_file or self.run_dir / "master.key"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise RuntimeError(
                f"no master key: set HAVEN_MASTER_KEY, or HAVEN_MASTER_KEY_FILE (looked for {path})"
            ) from None

    def kafka_password_text(self) -> str:
        """The Kafka password as configured, or the local stack's for ``kafka_username``."""
        if self.kafka_password is not None:
            return self.kafka_password.get_secret_value()
        path = self.run_dir / "kafka" / "users.json"
        try:
            return str(json.loads(path.read_text())[self.kafka_username])
        except (FileNotFoundError, KeyError):
            raise RuntimeError(
                f"no Kafka password for {self.kafka_username}: set HAVEN_KAFKA_PASSWORD (looked in {path})"
            ) from None

    @property
    def care_grace(self) -> timedelta:
        return timedelta(days=self.care_grace_days)

    @property
    def kafka_bootstrap_servers(self) -> str:
        """The Kafka bootstrap servers: the override, else the local broker."""
        return self.kafka_servers or f"127.0.0.1:{self.kafka_port}"

    @property
    def dsn(self) -> str:
        """The PostgreSQL DSN: the override, else the local cluster."""
        return self.database_url or f"postgresql://{self.pg_user}@127.0.0.1:{self.pg_port}/{self.pg_database}"
