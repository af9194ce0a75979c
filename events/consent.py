"""Consent: the vocabulary of directives, their commands and events, and ``decide()``.

Default deny. A directive permits or denies one grantee (an organisation, or every organisation
of a type) some categories of data for some purposes during a mandatory period; deny wins. A
child's directive rests on a guardian or best-interest basis with a written justification and
two distinct approvers, or it permits nothing. Every part of Haven asks ``decide()`` and no other.

Categories follow DESIGN.md; purposes too. Law enforcement is never implied: it is permitted
only by a directive that names the ``law_enforcement`` purpose.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from events.base import REGISTRY, EventData, JsonObject
from events.catalog import CONSENT, CONSENT_COMMANDS
from events.types import CountryCode, OrgId, Sealed, SurvivorId


class Category(StrEnum):
    """Categories of survivor data, each consented to separately."""

    IDENTITY = "identity"
    CONTACT = "contact"
    LOCATION = "location"
    NARRATIVE = "narrative"
    HEALTH = "health"
    IMMIGRATION = "immigration"
    LEGAL = "legal"
    EMPLOYMENT = "employment"
    CASE_STATUS = "case_status"
    STATISTICS = "statistics"


FREE_TEXT = Category.CASE_STATUS
"""Free text about a case (a referral's note, a child directive's justification) travels sealed under this."""


class Purpose(StrEnum):
    SERVICE_DELIVERY = "service_delivery"
    LEGAL_PROCEEDINGS = "legal_proceedings"
    LAW_ENFORCEMENT = "law_enforcement"
    STATISTICS = "statistics"


class OrgType(StrEnum):
    HOTLINE = "hotline"
    NGO = "ngo"
    SHELTER = "shelter"
    LEGAL_CLINIC = "legal_clinic"
    HEALTH_PROVIDER = "health_provider"
    EMPLOYMENT_PROGRAM = "employment_program"
    LABOUR_INSPECTORATE = "labour_inspectorate"
    BORDER_AGENCY = "border_agency"
    LAW_ENFORCEMENT = "law_enforcement"
    OVERSIGHT_BODY = "oversight_body"


class Effect(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


class Basis(StrEnum):
    CONSENT = "consent"
    GUARDIAN = "guardian"
    BEST_INTEREST = "best_interest"


class Grantee(BaseModel):
    """Exactly one organisation, or every organisation of one type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    org_id: OrgId | None = None
    org_type: OrgType | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Grantee:
        if (self.org_id is None) == (self.org_type is None):
            raise ValueError("a grantee is either org_id or org_type, not both and not neither")
        return self


Approver = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
"""A staff member's identifier within their organisation (``cw-0147``), never a name: it travels in clear."""
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
"""A BCP 47 language tag, e.g. ``es``, ``tl``, ``pt-BR``."""


class ConsentMethod(StrEnum):
    WRITTEN = "written"
    VERBAL_WITNESSED = "verbal_witnessed"
    ELECTRONIC = "electronic"


class HowObtained(BaseModel):
    """How the survivor's consent was obtained: the method, the language it was explained in,
    whether an interpreter helped, and where the signed form is kept (if there is one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: ConsentMethod
    language: LanguageTag
    interpreter: bool = False
    form_reference: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")] | None = Field(
        default=None, description="Where the signed form is filed (an identifier such as CF-2026-0113, not text)."
    )


class Directive(BaseModel):
    """One version of a consent directive. A later version of the same ``directive_id`` replaces it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    directive_id: UUID
    version: int = Field(ge=1)
    grantee: Grantee
    categories: frozenset[Category] = Field(min_length=1)
    purposes: frozenset[Purpose] = Field(min_length=1)
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    effect: Effect = Effect.PERMIT
    basis: Basis = Basis.CONSENT
    justification: Sealed | None = Field(
        default=None, description="Why a child's directive rests on its basis: free text, sealed (FREE_TEXT)."
    )
    recorded_by: OrgId
    approvers: tuple[Approver, ...] = Field(default=(), max_length=5)
    subject_is_minor: bool = Field(
        default=False, description="Set by the consent service from the survivor's recorded age, never by a request."
    )
    obtained: HowObtained | None = Field(
        default=None, description="Required for every new directive; absent only in directives recorded before it was."
    )
    cross_border: frozenset[CountryCode] = Field(
        default=frozenset(),
        max_length=50,
        description="Jurisdictions beyond the survivor's own where a grantee may be (ISO 3166-1 alpha-2). A permit "
        "reaches an organisation outside the survivor's jurisdiction only if it names one of the organisation's.",
    )
    any_jurisdiction: bool = Field(
        default=False, description="The permit reaches the grantee in any jurisdiction (cross-border everywhere)."
    )

    @model_validator(mode="after")
    def _period(self) -> Directive:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    def basis_is_complete(self) -> bool:
        """A child's directive needs a guardian or best-interest basis, a justification, two approvers."""
        if not self.subject_is_minor and self.basis is Basis.CONSENT:
            return True
        return (
            self.basis in (Basis.GUARDIAN, Basis.BEST_INTEREST)
            and bool(self.justification)
            and len(set(self.approvers)) >= 2
        )

    def covers(self, party: Party, category: Category, purpose: Purpose) -> bool:
        grantee = self.grantee
        names_party = grantee.org_id == party.org_id if grantee.org_id else grantee.org_type == party.org_type
        return names_party and category in self.categories and purpose in self.purposes

    def in_force(self, at: datetime) -> bool:
        return self.valid_from <= at < self.valid_until

    def reaches(self, party: Party, home: frozenset[str]) -> bool:
        """Does a permit reach ``party`` from the survivor's ``home`` jurisdictions? Always within a shared
        jurisdiction (or where either is unknown); across a border only where ``cross_border`` names one of the
        party's jurisdictions, or ``any_jurisdiction``."""
        if not crosses_border(home, party.jurisdictions):
            return True
        return self.any_jurisdiction or bool(self.cross_border & party.jurisdictions)


def crosses_border(home: frozenset[str], there: frozenset[str]) -> bool:
    """Between the survivor's jurisdictions and an organisation's, a border: both known and none shared.

    >>> crosses_border(frozenset({"GB"}), frozenset({"FR"})), crosses_border(frozenset({"GB"}), frozenset({"GB", "IE"}))
    (True, False)
    """
    return bool(home and there and not home & there)


@dataclass(frozen=True)
class Party:
    """Who asks: an organisation, its type and the jurisdictions it works in (empty: not known)."""

    org_id: str
    org_type: OrgType
    jurisdictions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ConsentRecord:
    """A directive as the consent service holds it: the version, and when it was revoked, if it was."""

    directive: Directive
    revoked_at: datetime | None = None

    def active(self, at: datetime) -> bool:
        return self.directive.in_force(at) and (self.revoked_at is None or at < self.revoked_at)


class DecisionReason(StrEnum):
    NO_DIRECTIVE = "no_directive"
    PERMITTED = "permitted_by_directive"
    DENIED = "denied_by_directive"
    OUTSIDE_PERIOD = "outside_period"
    REVOKED = "revoked"
    CHILD_BASIS_INCOMPLETE = "child_basis_incomplete"
    ACROSS_BORDER = "across_border_not_permitted"


@dataclass(frozen=True)
class Decision:
    """The answer and why: which directive decided it, if one did."""

    permitted: bool
    reason: DecisionReason
    directive_id: UUID | None = None


def latest_versions(records: Iterable[ConsentRecord]) -> list[ConsentRecord]:
    """The newest version of each directive; a revocation of any version revokes the directive."""
    newest: dict[UUID, ConsentRecord] = {}
    revoked: dict[UUID, datetime] = {}
    for record in records:
        key = record.directive.directive_id
        if record.revoked_at is not None:
            revoked[key] = min(record.revoked_at, revoked.get(key, record.revoked_at))
        if key not in newest or record.directive.version > newest[key].directive.version:
            newest[key] = record
    return [ConsentRecord(r.directive, revoked.get(k)) for k, r in newest.items()]


def decide(
    records: Iterable[ConsentRecord],
    party: Party,
    category: Category,
    purpose: Purpose,
    at: datetime,
    home: frozenset[str] = frozenset(),
) -> Decision:
    """May ``party`` see ``category`` for ``purpose`` at ``at``? Default deny; deny wins. ``home``: the survivor's
    jurisdictions; a permit reaches a party across a border only if it says so (``Directive.reaches``), while a
    deny applies wherever the party is.

    >>> from datetime import UTC
    >>> decide([], Party("harbour-shelter", OrgType.SHELTER), Category.CONTACT,
    ...        Purpose.SERVICE_DELIVERY, datetime.now(UTC)).reason
    <DecisionReason.NO_DIRECTIVE: 'no_directive'>
    """
    relevant = [r for r in latest_versions(records) if r.directive.covers(party, category, purpose)]
    active = [r for r in relevant if r.active(at)]
    for record in active:
        if record.directive.effect is Effect.DENY:
            return Decision(False, DecisionReason.DENIED, record.directive.directive_id)
    reaching = [r for r in active if r.directive.reaches(party, home)]
    for record in reaching:
        if record.directive.basis_is_complete():
            return Decision(True, DecisionReason.PERMITTED, record.directive.directive_id)
    if reaching:
        return Decision(False, DecisionReason.CHILD_BASIS_INCOMPLETE, reaching[0].directive.directive_id)
    if active:
        return Decision(False, DecisionReason.ACROSS_BORDER, active[0].directive.directive_id)
    for record in relevant:
        if record.revoked_at is not None and record.revoked_at <= at and record.directive.in_force(at):
            return Decision(False, DecisionReason.REVOKED, record.directive.directive_id)
    if relevant:
        return Decision(False, DecisionReason.OUTSIDE_PERIOD, relevant[0].directive.directive_id)
    return Decision(False, DecisionReason.NO_DIRECTIVE)


# ---------------------------------------------------------------- commands


class GrantConsent(EventData):
    """Command: record a directive (a new one, or a new version of one). Version 2: see ``Directive``."""

    event_type = "consent.grant"
    version = 2
    topic = CONSENT_COMMANDS.name

    survivor_id: SurvivorId
    directive: Directive


class RevokeConsent(EventData):
    """Command: revoke a directive from now on."""

    event_type = "consent.revoke"
    topic = CONSENT_COMMANDS.name

    survivor_id: SurvivorId
    directive_id: UUID
    revoked_by: OrgId


# ---------------------------------------------------------------- events


class ConsentGranted(EventData):
    """Version 2: the justification is sealed, approvers are staff ids, how consent was obtained is kept."""

    event_type = "consent.granted"
    version = 2
    topic = CONSENT.name

    survivor_id: SurvivorId
    directive: Directive


class ConsentRevoked(EventData):
    event_type = "consent.revoked"
    topic = CONSENT.name

    survivor_id: SurvivorId
    directive_id: UUID
    grantee: Grantee
    revoked_by: OrgId
    revoked_at: AwareDatetime


class ConsentExpired(EventData):
    event_type = "consent.expired"
    topic = CONSENT.name

    survivor_id: SurvivorId
    directive_id: UUID
    grantee: Grantee
    expired_at: AwareDatetime


LEGACY_JUSTIFICATION = {"alg": "A256GCM", "kid": "legacy-unsealed", "nonce": "AAAAAAAAAAAAAAAA", "ciphertext": ""}
"""What a v1 directive's clear justification becomes: it was given (the child rule still holds), its text is not
carried forward (there is no key here to seal it with)."""


def _directive_v1_to_v2(data: JsonObject) -> JsonObject:
    directive = dict(data["directive"])
    if isinstance(directive.get("justification"), str):
        directive["justification"] = LEGACY_JUSTIFICATION
    directive["approvers"] = [
        a if re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", a) else f"legacy-{hashlib.sha256(a.encode()).hexdigest()[:16]}"
        for a in directive.get("approvers", [])
    ]  # distinct names stay distinct ids: the second-approver rule reads the same
    return {**data, "directive": directive}


for _model in (GrantConsent, ConsentGranted):
    REGISTRY.upcaster(_model.event_type, 1)(_directive_v1_to_v2)
