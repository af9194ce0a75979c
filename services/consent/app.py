"""Consent's bootstrap: the one place its parts are wired. ``python -m services.consent.app``."""

from __future__ import annotations

import functools
from pathlib import Path

from events.catalog import CONSENT_COMMANDS, IDENTIFICATION, REFERRALS
from events.consent import GrantConsent, RevokeConsent
from events.identification import SurvivorErased, SurvivorIdentified
from events.referrals import EVENT_STATUS
from services.consent import handlers
from services.kernel.service import ServiceSpec, main, on
from services.kernel.settings import Settings


def build(settings: Settings) -> ServiceSpec:
    expiry = handlers.DirectiveExpiry()
    return ServiceSpec(
        name="consent",
        migrations=Path(__file__).with_name("migrations"),
        topics=[CONSENT_COMMANDS.name, IDENTIFICATION.name, REFERRALS.name],
        handlers=dict(
            [
                on(GrantConsent, functools.partial(handlers.grant_consent, grace=settings.care_grace)),
                on(RevokeConsent, functools.partial(handlers.revoke_consent, grace=settings.care_grace)),
                *(on(event, handlers.follow_referral) for event in EVENT_STATUS),
                on(SurvivorIdentified, handlers.note_survivor),
                on(SurvivorErased, handlers.purge_survivor),
            ]
        ),
        background=[expiry.run],
        listening=[(handlers.GRANTS_CHANNEL, expiry.wake)],
    )


if __name__ == "__main__":
    main(build)
