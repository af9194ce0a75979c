"""Consent's bootstrap: the one place its parts are wired. ``python -m services.consent.app``."""

from __future__ import annotations

from pathlib import Path

from events.catalog import CONSENT_COMMANDS, IDENTIFICATION
from events.consent import GrantConsent, RevokeConsent
from events.identification import SurvivorErased, SurvivorIdentified
from services.consent import handlers
from services.kernel.service import ServiceSpec, main, on
from services.kernel.settings import Settings


def build(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="consent",
        migrations=Path(__file__).with_name("migrations"),
        topics=[CONSENT_COMMANDS.name, IDENTIFICATION.name],
        handlers=dict(
            [
                on(GrantConsent, handlers.grant_consent),
                on(RevokeConsent, handlers.revoke_consent),
                on(SurvivorIdentified, handlers.note_survivor),
                on(SurvivorErased, handlers.purge_survivor),
            ]
        ),
        background=[handlers.expire_directives],
    )


if __name__ == "__main__":
    main(build)
