"""The Containerfile cannot be built here (no container runtime), so what can be checked is checked: every process
it names exists and every process Haven runs is named; what it copies exists; it installs the project from the same
pyproject.toml as the Makefile, without the dev extra, and runs as an unprivileged user."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from services.kernel.launcher import discover_apps

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = (ROOT / "Containerfile").read_text()


def test_every_process_it_names_exists_and_every_process_haven_runs_is_named() -> None:
    named = set(re.findall(r"python -m ((?:services|gateway)\.[a-z_.]+)", CONTAINERFILE))
    assert {m for m in named if importlib.util.find_spec(m) is None} == set()
    assert {*discover_apps(), "gateway.app"} <= named


def test_what_it_copies_exists_and_it_installs_the_pinned_project() -> None:
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", CONTAINERFILE, flags=re.M)
    sources = [s for line in copied for s in line.split()]
    assert sources
    assert [s for s in sources if not (ROOT / s).exists()] == []
    assert "pip install ." in CONTAINERFILE, "the same pyproject.toml (and its pins) as `make install`"
    assert "[dev]" not in CONTAINERFILE, "no test tooling in the image"
    assert re.search(r"^USER 10001", CONTAINERFILE, flags=re.M), "never root"
    assert CONTAINERFILE.count("FROM ") == 2, "built in one stage, run from another"
