"""``haven serve --services all``: every service (and the gateway) in one process, or any of them alone.

Like Grafana Loki's ``-target=all``, the same code runs a small network on one machine or one service per
process (``--services shelter``, as the Helm chart does). In one process, one Kafka consumer reads each topic
once and hands every event to each service that handles its type; each service keeps its own database role,
schema, inbox rows, outbox relay and Kafka user for what it publishes, so splitting them apart later moves no
data (a service alone reads with a consumer group of its own, and its inbox drops what the shared group had
already handled).

Nothing here imports a service: each is found by its module name (``services.<name>.app``, ``gateway.app``)
and asked for its ``build(settings)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import uvloop

from services.kernel import telemetry
from services.kernel.launcher import discover_apps
from services.kernel.migrations import role_of
from services.kernel.service import ServiceSpec, serve_all
from services.kernel.settings import Settings

ALL = "all"
GROUP = "haven-all"
"""The consumer group (and, as ``haven_all``, the Kafka user) of a process that runs every service."""


def known() -> dict[str, str]:
    """Service name → the module that builds it, every one (the deadline worker, a faust app, runs on its own)."""
    found = {app.removesuffix(".app").rsplit(".", 1)[-1]: app for app in discover_apps() if app.endswith(".app")}
    return {**found, "gateway": "gateway.app"}


def chosen(services: str) -> list[str]:
    """``all``, or one service's name; anything else is refused, saying what is known.

    A subset would read with a consumer group (and need ACLs) of its own, which no deployment grants: every service
    runs in one process, or each in its own.

    >>> chosen("shelter")
    ['shelter']
    >>> len(chosen("all"))
    9
    >>> chosen("shelter,referrals")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --services takes all, or one of: consent, employment, gateway, health, ...
    """
    names = known()
    if services == ALL:
        return sorted(names)
    if services not in names:
        raise ValueError(f"--services takes all, or one of: {', '.join(sorted(names))}")
    return [services]


def group_of(names: Sequence[str]) -> str:
    """The consumer group of a process running ``names``: a service alone keeps its own name (as before)."""
    return names[0] if len(names) == 1 else GROUP


def build(names: Sequence[str], settings: Settings) -> list[tuple[ServiceSpec, Settings]]:
    """Each service's spec, with settings of its own: its database role and Kafka user (``haven_<name>``)."""
    modules = known()
    built = []
    for name in names:
        own = settings if len(names) == 1 else settings.model_copy(
            update={"pg_user": role_of(name), "kafka_username": role_of(name), "kafka_password": None}
        )  # fmt: skip
        built.append((importlib.import_module(modules[name]).build(own), own))
    return built


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="haven serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", default=ALL, help="all (the default), or one service's name")
    args = parser.parse_args(argv)
    try:
        names = chosen(args.services)
    except ValueError as exc:
        parser.error(str(exc))
    settings = Settings()
    group = group_of(names)
    telemetry.configure(group if len(names) == 1 else "haven")
    uvloop.run(serve_all(build(names, settings), settings, group=group))
    return 0


if __name__ == "__main__":
    sys.exit(main())
