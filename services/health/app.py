"""Health's bootstrap: the one place its parts are wired. ``python -m services.health.app``."""

from __future__ import annotations

import functools
from pathlib import Path

from events.catalog import HEALTH_COMMANDS, IDENTIFICATION, REFERRALS
from events.health import DischargeFromCare, RecordEngagement
from services.health import handlers
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.service import ServiceSpec, main, on
from services.kernel.settings import Settings


def build(settings: Settings) -> ServiceSpec:
    keyring = Keyring(decode_master_key(settings.master_key_text()))
    return ServiceSpec(
        name="health",
        migrations=Path(__file__).with_name("migrations"),
        only=handlers.FOLLOWER.only(),
        topics=[HEALTH_COMMANDS.name, REFERRALS.name, IDENTIFICATION.name],
        handlers=dict(
            [
                on(RecordEngagement, functools.partial(handlers.record_engagement, keyring=keyring)),
                on(DischargeFromCare, handlers.discharge),
                *handlers.FOLLOWER.handlers(on_erased=handlers.purge_survivor, keyring=keyring),
            ]
        ),
    )


if __name__ == "__main__":
    main(build)
