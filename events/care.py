"""Care teams: who may write about a survivor. Part of the contract, like ``decide()``.

A survivor's care team is the organisation that screened them, plus every organisation that is
party (referrer or recipient) to one of their referrals that is open, or that was accepted and
closed less than ``grace`` ago. Only a member records consent (as itself), records a revocation,
refers the survivor, or reads the survivor's access ledger. The consent service, the referrals
service and the gateway each project the links from events and ask ``in_care_team`` — no other rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from events.errors import DomainError
from events.referrals import OPEN

CARE_GRACE = timedelta(days=90)
"""How long an accepted referral keeps its parties in the care team after it closes, by default."""

NOT_IN_CARE_TEAM = "not_in_care_team"
"""The refusal code for anyone else; it says nothing about whether the survivor exists."""


@dataclass(frozen=True)
class CareLink:
    """One referral as the care-team rule sees it."""

    referrer_org: str
    recipient_org: str
    open: bool
    accepted: bool
    closed_at: datetime | None = None

    @classmethod
    def of_referral(
        cls, referrer_org: str, recipient_org: str, status: str, accepted: bool, last_moved: datetime
    ) -> CareLink:
        """A referral's link from its current state: one that is no longer open closed at its last move."""
        is_open = status in OPEN
        return cls(referrer_org, recipient_org, is_open, accepted, None if is_open else last_moved)

    def holds(self, at: datetime, grace: timedelta) -> bool:
        """Whether this referral still makes its parties members at ``at``."""
        if self.open:
            return True
        return self.accepted and self.closed_at is not None and at < self.closed_at + grace


def care_team(
    screener_org: str | None, links: Iterable[CareLink], at: datetime, grace: timedelta = CARE_GRACE
) -> set[str]:
    """Every organisation in the survivor's care team at ``at``.

    >>> from datetime import UTC
    >>> now = datetime.now(UTC)
    >>> sorted(care_team("city-hotline", [CareLink("city-hotline", "harbour-shelter", open=True, accepted=False)], now))
    ['city-hotline', 'harbour-shelter']
    """
    team = {screener_org} if screener_org else set()
    for link in links:
        if link.holds(at, grace):
            team |= {link.referrer_org, link.recipient_org}
    return team


def in_care_team(
    org_id: str, screener_org: str | None, links: Iterable[CareLink], at: datetime, grace: timedelta = CARE_GRACE
) -> bool:
    """May ``org_id`` write about the survivor (consent, revocation, referral) or read their ledger?

    >>> from datetime import UTC
    >>> in_care_team("stranger-shelter", "city-hotline", [], datetime.now(UTC))
    False
    """
    return org_id in care_team(screener_org, links, at, grace)


def require_member(
    org_id: str, screener_org: str | None, links: Iterable[CareLink], at: datetime, grace: timedelta = CARE_GRACE,
    *, field: str,
) -> None:  # fmt: skip
    """Refuse with ``not_in_care_team`` unless ``org_id`` is in the survivor's care team at ``at``."""
    if not in_care_team(org_id, screener_org, links, at, grace):
        raise DomainError(
            NOT_IN_CARE_TEAM,
            f"{org_id} is not in this survivor's care team: only the screening organisation and the parties to "
            "their open (or recently accepted) referrals may do this",
            field=field,
        )
