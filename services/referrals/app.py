"""Referrals' bootstrap: the one place its parts are wired. ``python -m services.referrals.app``.

The deadline worker runs beside it as its own process: ``python -m services.referrals.deadline_worker``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from events.catalog import CONSENT, DIRECTORY, IDENTIFICATION, REFERRALS_COMMANDS
from events.consent import ConsentExpired, ConsentGranted, ConsentRevoked
from events.directory import CapacityChanged, OrganisationRegistered, RegisterOrganisation
from events.identification import SurvivorErased, SurvivorIdentified
from events.referrals import EVENT_FOR, RequestReferral
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.service import ServiceSpec, main, on
from services.kernel.settings import Settings
from services.referrals import handlers


def build(settings: Settings) -> ServiceSpec:
    keyring = Keyring(decode_master_key(settings.master_key_text()))
    actions = [on(command, handlers.act) for command in EVENT_FOR]
    return ServiceSpec(
        name="referrals",
        migrations=Path(__file__).with_name("migrations"),
        topics=[REFERRALS_COMMANDS.name, CONSENT.name, DIRECTORY.name, IDENTIFICATION.name],
        handlers=dict(
            [
                on(RequestReferral, functools.partial(handlers.request_referral, grace=settings.care_grace)),
                *actions,
                on(RegisterOrganisation, handlers.register_organisation),
                on(OrganisationRegistered, handlers.note_organisation),
                on(CapacityChanged, handlers.note_capacity),
                on(ConsentGranted, handlers.note_consent_granted),
                on(ConsentRevoked, handlers.withdraw_on_revocation),
                on(ConsentExpired, handlers.withdraw_on_expiry),
                on(SurvivorIdentified, functools.partial(handlers.note_survivor, keyring=keyring)),
                on(SurvivorErased, handlers.purge_survivor),
            ]
        ),
    )


if __name__ == "__main__":
    main(build)
