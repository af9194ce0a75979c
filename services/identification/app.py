"""Identification's bootstrap: the one place its parts are wired. ``python -m services.identification.app``."""

from __future__ import annotations

import functools
from pathlib import Path

from events.catalog import IDENTIFICATION_COMMANDS
from events.identification import EraseSurvivor, RecordScreening
from services.identification import handlers
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.service import ServiceSpec, main, on
from services.kernel.settings import Settings


def build(settings: Settings) -> ServiceSpec:
    keyring = Keyring(decode_master_key(settings.master_key_text()))
    return ServiceSpec(
        name="identification",
        migrations=Path(__file__).with_name("migrations"),
        topics=[IDENTIFICATION_COMMANDS.name],
        handlers=dict(
            [
                on(RecordScreening, functools.partial(handlers.record_screening, keyring=keyring)),
                on(EraseSurvivor, functools.partial(handlers.erase_survivor, keyring=keyring)),
            ]
        ),
    )


if __name__ == "__main__":
    main(build)
