"""The Helm chart as a cluster operator meets it: what it refuses, what it renders, and that the checker can fail.

``make chart`` renders every values file and validates each object; these tests pin down what the rendered objects
must say (durability, secrets by reference, the locked-down pods) and that a mistake in values is refused.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import chart
from services.kernel.settings import Settings


@pytest.fixture(scope="module")
def helm() -> Path:
    return chart.helm(Settings().cache_dir)


def template(helm: Path, sets: tuple[str, ...]) -> list[str]:
    """``helm template`` of the chart with each ``key=value`` of ``sets``."""
    return [str(helm), "template", "haven", str(chart.CHART), "--kube-version", chart.KUBERNETES_VERSION,
            *(arg for s in sets for arg in ("--set", s))]  # fmt: skip


def rendered(helm: Path, *sets: str) -> list[dict[str, Any]]:
    out = subprocess.run(template(helm, sets), check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def refused(helm: Path, *sets: str) -> str:
    done = subprocess.run(template(helm, sets), capture_output=True, text=True)
    assert done.returncode != 0, f"helm rendered {sets} instead of refusing"
    return done.stderr


def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def pods(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Pod specs of every Deployment and Job, by object name."""
    kinds = {"Deployment", "Job"}
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in documents if d["kind"] in kinds}


def test_every_process_the_code_defines_is_one_deployment(helm: Path) -> None:
    documents = rendered(helm)
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    processes = json.loads(chart.PROCESSES.read_text())
    assert processes == chart.processes(), "helm/haven/files/processes.json is stale: python -m infra.chart --write"
    assert set(deployments) == {f"haven-{name}" for name in processes}
    for name, process in processes.items():
        container = deployments[f"haven-{name}"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == [process["module"]]
        assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(container)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_production_defaults_are_durable_and_closed(helm: Path) -> None:
    documents = rendered(helm)
    topics_job = pods(documents)["haven-topics"]["containers"][0]
    assert topics_job["args"] == ["gateway.cli", "topics", "apply"]
    assert env(topics_job)["HAVEN_TOPIC_REPLICATION_FACTOR"]["value"] == "3"
    assert env(topics_job)["HAVEN_TOPIC_MIN_INSYNC_REPLICAS"]["value"] == "2"
    gateway = pods(documents)["haven-gateway"]["containers"][0]
    assert env(gateway)["HAVEN_PRODUCTION"]["value"] == "true"
    jobs = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Job"}
    # Topics, then migrations, both before any process rolls, on install and on upgrade.
    hooks = {n: (j["metadata"]["annotations"]["helm.sh/hook"], int(j["metadata"]["annotations"]["helm.sh/hook-weight"]))
             for n, j in jobs.items()}  # fmt: skip
    before = "pre-install,pre-upgrade"
    assert hooks == {"haven-topics": (before, -10), "haven-migrations": (before, -5)}
    assert {d["kind"] for d in documents} >= {"NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler"}


def test_every_pod_is_locked_down_and_reads_secrets_only_by_reference(helm: Path) -> None:
    processes = json.loads(chart.PROCESSES.read_text())
    for name, pod in pods(rendered(helm)).items():
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}, name
            variables = env(container)
            assert "value" not in variables["HAVEN_DATABASE_URL"], name
            assert variables["HAVEN_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "haven-database"
            # The master key only where survivor data is sealed or opened.
            process = processes.get(name.removeprefix("haven-"), {})
            # Kafka: each process signs in as its own user, its password named by reference; the Jobs as the admin.
            assert variables["HAVEN_KAFKA_USERNAME"]["value"] == process.get("user", "haven")
            kafka_secret = variables["HAVEN_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert kafka_secret == {"name": "haven-kafka", "key": name.removeprefix("haven-") if process else "admin"}
            needs_key = process.get("keyring", False)
            assert ("HAVEN_MASTER_KEY" in variables) == needs_key, name
            if needs_key:
                assert "value" not in variables["HAVEN_MASTER_KEY"]


def test_values_that_would_be_ignored_or_unsafe_are_refused(helm: Path) -> None:
    assert "additional properties 'replica' not allowed" in refused(helm, "processes.shelter.replica=3")
    assert "additional properties 'kitchen' not allowed" in refused(helm, "processes.kitchen.replicas=1")
    assert "want null or integer" in refused(helm, "kafka.topics.partitions=many")
    assert "cannot exceed" in refused(helm, "kafka.topics.replicationFactor=1")  # min.insync.replicas stays 2
    assert "logFormat" in refused(helm, "telemetry.logFormat=xml")


def test_keda_scales_each_consumer_on_its_own_group(helm: Path) -> None:
    documents = rendered(helm, "keda.enabled=true")
    scaled = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ScaledObject"}
    processes = json.loads(chart.PROCESSES.read_text())
    assert set(scaled) == {f"haven-{n}" for n in processes if n != "gateway"}
    assert scaled["haven-legal-aid"]["spec"]["triggers"][0]["metadata"]["consumerGroup"] == "legal_aid"
    # KEDA owns the replica count: the Deployment leaves it unset.
    assert all("replicas" not in d["spec"] for d in documents if d["kind"] == "Deployment")
    assert chart.validate(documents) == []


def test_the_validator_reports_what_a_cluster_would_refuse(helm: Path) -> None:
    documents = rendered(helm)
    deployment = copy.deepcopy(next(d for d in documents if d["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # a typo
    service = copy.deepcopy(next(d for d in documents if d["kind"] == "Service"))
    service["spec"]["ports"][0]["port"] = "eighty"
    problems = chart.validate([deployment, service])
    assert len(problems) == 2, problems
    assert "readinesProbe" in problems[0]
    assert "Service/haven-gateway" in problems[1]


def test_the_keyring_roles_are_the_processes_that_need_the_master_key() -> None:
    from services.kernel.migrations import KEYRING_USERS

    needs = {p["group"] for p in chart.processes().values() if p["keyring"]}
    assert needs == set(KEYRING_USERS)
