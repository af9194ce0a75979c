"""Every command gets an answer: what the owning service decided, published to the organisation that sent it.

A service that refuses a command publishes ``command.refused`` (the command's id, a stable code, the
field at fault and a message for people); one that carries it out publishes ``command.applied``. The
gateway projects both, so a partner reads the outcome of its own commands. Dead-letter topics are
for what cannot be decoded, never for a domain's refusal.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, StringConstraints

from events.base import EventData
from events.catalog import OUTCOMES
from events.types import Code, OrgId

SYSTEM = "haven"
"""The requester of commands Haven sends itself (the deadline worker's expiries, providers' own moves)."""

_REQUESTER_FIELDS = ("actor_org", "referrer_org", "revoked_by", "requested_by", "screener_org", "org_id")


def requester(command: EventData) -> str:
    """The organisation a command was sent for: its actor field (every command names one).

    >>> from events.consent import RevokeConsent
    >>> from uuid import uuid4
    >>> requester(RevokeConsent(survivor_id=uuid4(), directive_id=uuid4(), revoked_by="city-hotline"))
    'city-hotline'
    """
    for name in _REQUESTER_FIELDS:
        value = getattr(command, name, None)
        if isinstance(value, str):
            return value
    directive: Any = getattr(command, "directive", None)
    if directive is not None:
        return str(directive.recorded_by)
    organisation: Any = getattr(command, "organisation", None)
    return str(organisation.org_id) if organisation is not None else SYSTEM


class CommandOutcome(EventData):
    """Fields every outcome carries: which command, of what type, sent for whom."""

    topic = OUTCOMES.name

    command_id: UUID
    command_type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]{0,99}$")]
    requested_by: OrgId
    decided_at: AwareDatetime

    def subject(self) -> str:
        return self.requested_by


class CommandApplied(CommandOutcome):
    event_type = "command.applied"


class CommandRefused(CommandOutcome):
    """The owning service's refusal: the code is stable, the message names no survivor data."""

    event_type = "command.refused"

    code: Code
    field: Annotated[str, StringConstraints(max_length=200)] | None = None
    message: Annotated[str, StringConstraints(max_length=1000)]
