"""Legal aid's bootstrap: the one place its parts are wired. ``python -m services.legal_aid.app``."""

from __future__ import annotations

from pathlib import Path

from events.catalog import IDENTIFICATION, LEGAL_AID_COMMANDS, REFERRALS
from events.legal_aid import CloseMatter, ConfigureClinic, OpenMatter, RecordMilestone
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.service import ServiceSpec, main, on
from services.kernel.settings import Settings
from services.legal_aid import handlers


def build(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="legal_aid",
        migrations=Path(__file__).with_name("migrations"),
        only=handlers.FOLLOWER.only(),
        topics=[LEGAL_AID_COMMANDS.name, REFERRALS.name, IDENTIFICATION.name],
        handlers=dict(
            [
                on(ConfigureClinic, handlers.configure_clinic),
                on(OpenMatter, handlers.open_matter),
                on(RecordMilestone, handlers.record_milestone),
                on(CloseMatter, handlers.close_matter),
                *handlers.FOLLOWER.handlers(
                    on_requested=handlers.receive_referral,
                    on_erased=handlers.purge_survivor,
                    keyring=Keyring(decode_master_key(settings.master_key_text())),
                ),
            ]
        ),
    )


if __name__ == "__main__":
    main(build)
