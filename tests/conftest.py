"""Shared test setup: the test stack's settings, and markers by folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# `pytest` alone targets the test stack (`make test` sets the same), never a `make run` stack.
for _name, _value in {
    "HAVEN_RUN_DIR": ".run/test",
    "HAVEN_KAFKA_PORT": "19092",
    "HAVEN_KAFKA_CONTROLLER_PORT": "19093",
    "HAVEN_PG_PORT": "15432",
    "HAVEN_GATEWAY_PORT": "18000",
}.items():
    os.environ.setdefault(_name, _value)

TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if path.is_relative_to(TESTS) and (kind := path.relative_to(TESTS).parts[0]) in ("integration", "e2e"):
            item.add_marker(getattr(pytest.mark, kind))
