"""``make chart``: the Helm chart checked the way a cluster would check it, with no cluster.

1. ``helm/haven/files/processes.json`` is what the code says: every process, its module, its consumer group, the
   topics it reads and whether it needs the keyring (the chart renders a Deployment per entry from it).
2. ``helm`` (built once with ``go install`` from the Go module proxy and cached like the Kafka runtime) lints the
   chart and renders it with the default values and with each file in ``helm/haven/ci/``.
3. Every rendered object is validated against the Kubernetes schemas (``kubernetes-validate``, strict: an unknown
   field fails). KEDA's ScaledObject has no schema there; it is checked against the fields KEDA documents.

``python -m infra.chart --write`` regenerates processes.json; without it a stale file fails the check.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from pydantic import SecretStr

from services.kernel.launcher import discover_apps
from services.kernel.migrations import role_of
from services.kernel.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "haven"
PROCESSES = CHART / "files" / "processes.json"
HELM_VERSION = "v3.19.5"
KUBERNETES_VERSION = "1.33.0"


def _needs_keyring(build: Any) -> bool:
    """Whether building the service asks for the master key (it seals or opens survivor data)."""
    try:
        build(Settings(master_key=None, master_key_file=Path("/nonexistent/master.key")))
    except RuntimeError as exc:
        if "no master key" in str(exc):
            return True
        raise
    return False


def writes() -> dict[str, list[str]]:
    """What each process publishes, by its Kubernetes name: its own events and command outcomes; a provider also its
    automatic referral answers and capacity; the gateway every command; the deadline worker expiries. Kafka's ACLs
    allow each process these and the dead letters of what it reads, nothing more (``kernel.topics.acls``)."""
    from events.catalog import AUDIT, DIRECTORY, OUTCOMES, REFERRALS, REFERRALS_COMMANDS, TOPICS

    own = {t.name.removeprefix("haven.") for t in TOPICS}
    commands = [t.name for t in TOPICS if t.name.endswith(".commands")]
    found = {"gateway": [*commands, AUDIT.name], "deadline-worker": [REFERRALS_COMMANDS.name],
             "referrals": [REFERRALS.name, DIRECTORY.name, OUTCOMES.name]}  # fmt: skip
    for service in ("identification", "consent", "statistics"):
        found[service] = [f"haven.{service}", OUTCOMES.name]
    for provider in ("shelter", "legal_aid", "health", "employment"):
        assert provider in own
        found[provider.replace("_", "-")] = [f"haven.{provider}", DIRECTORY.name, REFERRALS_COMMANDS.name,
                                             OUTCOMES.name]  # fmt: skip
    return found


def processes() -> dict[str, dict[str, Any]]:
    """Every process Haven runs, by its Kubernetes name, as the code defines it."""
    from events.catalog import TOPICS  # only the generator needs the catalog
    from services.referrals import deadline_worker

    key = SecretStr(base64.urlsafe_b64encode(bytes(32)).decode())
    found: dict[str, dict[str, Any]] = {}
    for module in discover_apps():
        if module.endswith(".app"):
            build = importlib.import_module(module).build
            spec = build(Settings(master_key=key))
            found[spec.name.replace("_", "-")] = {
                "module": module, "kind": "service", "group": spec.name, "topics": list(spec.topics),
                "keyring": _needs_keyring(build), "user": role_of(spec.name),
            }  # fmt: skip
        else:
            assert module == deadline_worker.__name__, f"{module}: a worker the chart does not know yet"
            found["deadline-worker"] = {"module": module, "kind": "worker", "group": deadline_worker.APP_ID,
                                        "topics": list(deadline_worker.FOLLOWS), "keyring": False,
                                        "user": role_of("deadlines")}  # fmt: skip
    found["gateway"] = {
        "module": "gateway.app", "kind": "gateway", "group": "gateway",
        "topics": [t.name for t in TOPICS if not t.name.endswith(".commands")], "keyring": True,
        "user": role_of("gateway"),
    }  # fmt: skip
    for name, published in writes().items():
        found[name]["writes"] = published
    return found


def helm(cache: Path) -> Path:
    """The cached helm binary; built with ``go install`` the first time (a few minutes, said as it goes)."""
    home = cache / f"helm-{HELM_VERSION}"
    binary = home / "helm"
    if binary.exists():
        return binary
    go = shutil.which("go") or "/usr/local/go/bin/go"
    print(f"chart ▸ building helm {HELM_VERSION} with go install (once; cached in {home}) …", flush=True)
    subprocess.run([go, "install", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"], check=True,
                   env={**os.environ, "GOBIN": str(home), "GOFLAGS": "-trimpath"})  # fmt: skip
    return binary


SCALED_OBJECT_SPEC = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount",
                      "triggers", "advanced", "fallback", "idleReplicaCount", "initialCooldownPeriod"}  # fmt: skip


def validate(documents: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the rendered objects, one line each; empty when all are valid."""
    problems = []
    for doc in documents:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("kind") == "TriggerAuthentication":
            refs = doc.get("spec", {}).get("secretTargetRef", [])
            if set(doc.get("spec", {})) != {"secretTargetRef"} or {r.get("parameter") for r in refs} != {
                    "username", "password"}:  # fmt: skip
                problems.append(f"{where}: wants exactly a secretTargetRef for username and password")
            continue
        if doc.get("apiVersion") == "keda.sh/v1alpha1":
            unknown = set(doc.get("spec", {})) - SCALED_OBJECT_SPEC
            triggers = doc.get("spec", {}).get("triggers", [])
            if unknown or not triggers or any(t.get("type") != "kafka" for t in triggers):
                problems.append(f"{where}: unknown fields {sorted(unknown)} or no kafka trigger")
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{where}: {exc.message} at {'.'.join(map(str, exc.path))}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{where}: no Kubernetes {KUBERNETES_VERSION} schema for {doc.get('apiVersion')}")
    return problems


def render(binary: Path, values: Path | None) -> list[dict[str, Any]]:
    args = [str(binary), "template", "haven", str(CHART), "--namespace", "haven"]
    if values is not None:
        args += ["--values", str(values)]
    args += ["--kube-version", KUBERNETES_VERSION]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def check(cache: Path) -> int:
    wanted = json.dumps(processes(), indent=2, sort_keys=True) + "\n"
    if PROCESSES.read_text() != wanted:
        print(f"chart ▸ {PROCESSES.relative_to(ROOT)} is stale: run `python -m infra.chart --write`")
        return 1
    binary = helm(cache)
    lint = [str(binary), "lint", "--strict", "--kube-version", KUBERNETES_VERSION, str(CHART)]
    subprocess.run(lint, check=True, stdout=subprocess.DEVNULL)
    print(f"chart ▸ helm lint --strict: clean ({binary})")
    failed = 0
    for values in [None, *sorted((CHART / "ci").glob("*.yaml"))]:
        documents = render(binary, values)
        problems = validate(documents)
        kinds = Counter(d["kind"] for d in documents)
        name = values.name if values else "default values"
        verdict = f"{len(problems)} INVALID" if problems else f"valid against Kubernetes {KUBERNETES_VERSION}"
        counts = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        print(f"chart ▸ {name}: {len(documents)} objects, {counts}; {verdict}")
        for problem in problems:
            print(f"  {problem}")
        failed += bool(problems)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="regenerate helm/haven/files/processes.json")
    args = parser.parse_args()
    if args.write:
        PROCESSES.write_text(json.dumps(processes(), indent=2, sort_keys=True) + "\n")
        print(f"wrote {PROCESSES.relative_to(ROOT)}")
        return 0
    return check(Settings().cache_dir)


if __name__ == "__main__":
    sys.exit(main())
