"""Shelter's bootstrap: the one place its parts are wired. ``python -m services.shelter.app``."""

from __future__ import annotations

import functools
from pathlib import Path

from events.catalog import IDENTIFICATION, REFERRALS, SHELTER_COMMANDS
from events.shelter import AcceptPlacement, CheckIn, CheckOut, ConfigureShelter
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.service import ServiceSpec, main, on
from services.kernel.settings import Settings
from services.shelter import handlers


def build(settings: Settings) -> ServiceSpec:
    keyring = Keyring(decode_master_key(settings.master_key_text()))
    follow = handlers.FOLLOWER.handlers(
        on_requested=handlers.receive_referral,
        on_closed=handlers.release_bed,
        on_erased=handlers.purge_survivor,
        keyring=keyring,
    )
    return ServiceSpec(
        name="shelter",
        migrations=Path(__file__).with_name("migrations"),
        only=handlers.FOLLOWER.only(),
        topics=[SHELTER_COMMANDS.name, REFERRALS.name, IDENTIFICATION.name],
        handlers=dict(
            [
                on(ConfigureShelter, handlers.configure_shelter),
                on(AcceptPlacement, functools.partial(handlers.accept_placement, keyring=keyring)),
                on(CheckIn, handlers.check_in),
                on(CheckOut, handlers.check_out),
                *follow,
            ]
        ),
    )


if __name__ == "__main__":
    main(build)
