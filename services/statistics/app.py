"""Statistics' bootstrap: the one place its parts are wired. ``python -m services.statistics.app``."""

from __future__ import annotations

import functools
from pathlib import Path

from events.catalog import CONSENT, DIRECTORY, EMPLOYMENT, IDENTIFICATION, REFERRALS, SHELTER, STATISTICS_COMMANDS
from events.consent import ConsentGranted, ConsentRevoked
from events.directory import OrganisationRegistered
from events.employment import EmploymentOutcomeRecorded, Enrolled
from events.identification import NeedsAssessed, SurvivorErased, SurvivorIdentified
from events.referrals import EVENT_STATUS, ReferralEscalated
from events.shelter import PlacementCheckedIn
from events.statistics import ReleaseStatistics
from services.kernel.crypto import Keyring, decode_master_key
from services.kernel.service import ServiceSpec, main, on
from services.kernel.settings import Settings
from services.statistics import handlers


def build(settings: Settings) -> ServiceSpec:
    keyring = Keyring(decode_master_key(settings.master_key_text()))
    return ServiceSpec(
        name="statistics",
        pass_over_erased=True,  # nothing is kept about an erased survivor, whatever arrives after the erasure
        migrations=Path(__file__).with_name("migrations"),
        topics=[
            STATISTICS_COMMANDS.name,
            IDENTIFICATION.name,
            CONSENT.name,
            DIRECTORY.name,
            REFERRALS.name,
            EMPLOYMENT.name,
            SHELTER.name,
        ],
        handlers=dict(
            [
                on(ReleaseStatistics, functools.partial(handlers.release, keyring=keyring)),
                (SurvivorIdentified.event_type, handlers.note_identified),
                on(SurvivorErased, handlers.purge_survivor),
                on(ConsentGranted, handlers.note_consent),
                on(ConsentRevoked, handlers.note_revocation),
                on(OrganisationRegistered, handlers.note_organisation),
                *((event.event_type, handlers.note_referral) for event in EVENT_STATUS),
                on(NeedsAssessed, handlers.note_needs),
                on(ReferralEscalated, handlers.note_escalation),
                (PlacementCheckedIn.event_type, handlers.note_placement),
                on(Enrolled, handlers.note_employment),
                on(EmploymentOutcomeRecorded, handlers.note_employment),
            ]
        ),
    )


if __name__ == "__main__":
    main(build)
