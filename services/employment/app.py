"""Employment's bootstrap: the one place its parts are wired. ``python -m services.employment.app``."""

from __future__ import annotations

from pathlib import Path

from events.catalog import EMPLOYMENT_COMMANDS, IDENTIFICATION, REFERRALS
from events.employment import Enrol, RecordEmploymentOutcome
from services.employment import handlers
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.service import ServiceSpec, main, on
from services.kernel.settings import Settings


def build(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="employment",
        migrations=Path(__file__).with_name("migrations"),
        only=handlers.FOLLOWER.only(),
        topics=[EMPLOYMENT_COMMANDS.name, REFERRALS.name, IDENTIFICATION.name],
        handlers=dict(
            [
                on(Enrol, handlers.enrol),
                on(RecordEmploymentOutcome, handlers.record_outcome),
                *handlers.FOLLOWER.handlers(
                    on_erased=handlers.purge_survivor,
                    keyring=Keyring(decode_master_key(settings.master_key_text())),
                ),
            ]
        ),
    )


if __name__ == "__main__":
    main(build)
