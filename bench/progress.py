"""A one-line progress bar for long benchmark stages (stderr, so results stay clean on stdout)."""

from __future__ import annotations

import sys


def progress(done: float, total: float, label: str) -> None:
    width = 30
    filled = int(width * min(done, total) // total) if total else width
    end = "\n" if done >= total else ""
    print(
        f"\r{label:<30} [{'#' * filled}{'.' * (width - filled)}] {done:,.0f}/{total:,.0f}",
        end=end,
        file=sys.stderr,
        flush=True,
    )
