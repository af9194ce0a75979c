"""Identification: the screening intake, its commands and events, and their coded vocabularies.

Vocabularies and their sources:

- ``Act``, ``Means``, ``ExploitationPurpose``: the three elements of trafficking in the UN Palermo
  Protocol (Protocol to Prevent, Suppress and Punish Trafficking in Persons, 2000, art. 3(a)); the
  means add the forms practitioners record separately (debt bondage, document confiscation). For a
  child (art. 3(c)) the means are not required.
- ``Indicator``: abridged from the ILO/EC "Operational indicators of trafficking in human beings"
  (2009), in the wording of the CTDC data standard (Counter Trafficking Data Collaborative).
- ``Sector``: the CTDC / ILO forced-labour sector typology, abridged.
- ``AgeBand``, ``Gender``: the CTDC statistics bands; nationality is ISO 3166-1 alpha-2.

Personal data travels only sealed (``events.types.Sealed``): identity, contact and the narrative
(the Palermo elements, indicators, sector, places and the story) are each sealed with the
survivor's own key before they leave the intake, and so do the statistics (age band, gender,
nationality, disability: together they can point at one person), under a category of their own.
The outcome, who decided and whether the survivor is a child travel in clear, as codes.
"""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from events.base import REGISTRY, EventData, JsonObject
from events.catalog import IDENTIFICATION, IDENTIFICATION_COMMANDS
from events.consent import Category
from events.needs import ReferralType, Urgency
from events.types import CountryCode, OrgId, Sealed, ShortText, SurvivorId


class ScreenerType(StrEnum):
    HEALTH_WORKER = "health_worker"
    LABOUR_INSPECTOR = "labour_inspector"
    HOTLINE = "hotline"
    NGO = "ngo"
    BORDER_OFFICIAL = "border_official"
    POLICE = "police"


class Act(StrEnum):
    RECRUITMENT = "recruitment"
    TRANSPORT = "transport"
    TRANSFER = "transfer"
    HARBOURING = "harbouring"
    RECEIPT = "receipt"


class Means(StrEnum):
    FORCE = "force"
    THREAT = "threat"
    ABDUCTION = "abduction"
    FRAUD = "fraud"
    DECEPTION = "deception"
    COERCION = "coercion"
    DEBT_BONDAGE = "debt_bondage"
    DOCUMENT_CONFISCATION = "document_confiscation"
    ABUSE_OF_POWER = "abuse_of_power"
    ABUSE_OF_VULNERABILITY = "abuse_of_vulnerability"
    PAYMENTS_TO_CONTROLLER = "payments_to_controller"
    OTHER = "other"


class ExploitationPurpose(StrEnum):
    SEXUAL_EXPLOITATION = "sexual_exploitation"
    FORCED_LABOUR = "forced_labour"
    DOMESTIC_SERVITUDE = "domestic_servitude"
    FORCED_CRIMINALITY = "forced_criminality"
    FORCED_MARRIAGE = "forced_marriage"
    ORGAN_REMOVAL = "organ_removal"
    OTHER = "other"


class Indicator(StrEnum):
    DECEPTIVE_RECRUITMENT = "deceptive_recruitment"
    EXCESSIVE_WORKING_HOURS = "excessive_working_hours"
    WITHHELD_WAGES = "withheld_wages"
    DEBT_BONDAGE = "debt_bondage"
    CONFISCATED_DOCUMENTS = "confiscated_documents"
    RESTRICTED_MOVEMENT = "restricted_movement"
    ISOLATION = "isolation"
    THREATS_AGAINST_FAMILY = "threats_against_family"
    PHYSICAL_VIOLENCE = "physical_violence"
    SEXUAL_VIOLENCE = "sexual_violence"
    DEGRADING_LIVING_CONDITIONS = "degrading_living_conditions"
    UNDER_SURVEILLANCE = "under_surveillance"
    FORCED_TO_LIE_TO_AUTHORITIES = "forced_to_lie_to_authorities"
    SUBSTANCE_COERCION = "substance_coercion"
    INJURIES = "injuries"
    NO_SAFE_ACCOMMODATION = "no_safe_accommodation"
    IRREGULAR_IMMIGRATION_STATUS = "irregular_immigration_status"


class Sector(StrEnum):
    AGRICULTURE = "agriculture"
    FISHING = "fishing"
    CONSTRUCTION = "construction"
    MANUFACTURING = "manufacturing"
    MINING = "mining"
    DOMESTIC_WORK = "domestic_work"
    CARE_WORK = "care_work"
    HOSPITALITY = "hospitality"
    SEX_INDUSTRY = "sex_industry"
    BEGGING = "begging"
    ONLINE_SCAM = "online_scam"
    TRANSPORT = "transport"
    RETAIL = "retail"
    OTHER = "other"


class ScreeningOutcome(StrEnum):
    POSSIBLE_VICTIM = "possible_victim"
    PROBABLE_VICTIM = "probable_victim"
    CONFIRMED_VICTIM = "confirmed_victim"
    NOT_A_VICTIM = "not_a_victim"


class DeciderRole(StrEnum):
    SCREENER = "screener"
    CASE_MANAGER = "case_manager"
    COMPETENT_AUTHORITY = "competent_authority"


class AgeBand(StrEnum):
    """Age at identification in the bands of the CTDC global dataset's ``ageBroad`` (0-8, 9-17, 18-20, 21-23,
    24-26, 27-29, 30-38, 39-47, 48+), so that Haven's releases line up with it."""

    AGE_0_8 = "age_0_8"
    AGE_9_17 = "age_9_17"
    AGE_18_20 = "age_18_20"
    AGE_21_23 = "age_21_23"
    AGE_24_26 = "age_24_26"
    AGE_27_29 = "age_27_29"
    AGE_30_38 = "age_30_38"
    AGE_39_47 = "age_39_47"
    AGE_48_PLUS = "age_48_plus"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> AgeBand | None:
        """Bands recorded before the CTDC ones: where one lies inside a CTDC band, that band; otherwise unknown
        (an age of 18 to 24 does not say which of three bands)."""
        if value in LEGACY_AGE_BANDS:
            return cls(LEGACY_AGE_BANDS[str(value)])
        return None


LEGACY_AGE_BANDS = {"age_0_11": "unknown", "age_12_17": "age_9_17", "age_18_24": "unknown", "age_25_34": "unknown",
                    "age_35_44": "unknown", "age_45_54": "unknown", "age_55_plus": "age_48_plus"}  # fmt: skip


MINOR_AGE_BANDS = frozenset({AgeBand.AGE_0_8, AgeBand.AGE_9_17})


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    NON_BINARY = "non_binary"
    UNDISCLOSED = "undisclosed"


class ErasureReason(StrEnum):
    SURVIVOR_REQUEST = "survivor_request"
    RETENTION_EXPIRED = "retention_expired"
    ENTERED_IN_ERROR = "entered_in_error"


def check_decision(outcome: ScreeningOutcome, role: DeciderRole) -> None:
    """Only a competent authority confirms a victim; a screener or case manager flags possible/probable."""
    if outcome is ScreeningOutcome.CONFIRMED_VICTIM and role is not DeciderRole.COMPETENT_AUTHORITY:
        raise ValueError("decided_by_role: only a competent_authority may record confirmed_victim")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Statistics(_Frozen):
    """Coded fields for statistics, kept apart from identity; sealed under ``statistics``."""

    age_band: AgeBand = AgeBand.UNKNOWN
    gender: Gender = Gender.UNDISCLOSED
    nationality: CountryCode | None = None
    disability: bool | None = None
    purposes: frozenset[ExploitationPurpose] = Field(
        default=frozenset(), description="Copied from the narrative at intake (coded only), for statistics."
    )
    sector: Sector | None = Field(default=None, description="Copied from the narrative at intake, for statistics.")


class IdentityDocument(_Frozen):
    kind: Annotated[str, StringConstraints(pattern=r"^(passport|national_id|residence_permit|other)$")]
    number: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    issuing_country: CountryCode | None = None


class Identity(_Frozen):
    """Category ``identity``."""

    given_name: Name
    family_name: Name | None = None
    other_names: tuple[Name, ...] = Field(default=(), max_length=10)
    date_of_birth: date | None = None
    documents: tuple[IdentityDocument, ...] = Field(default=(), max_length=10)


class Contact(_Frozen):
    """Category ``contact``."""

    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{5,25}$")] | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$")] | None = None
    address: ShortText | None = None
    safe_contact_instructions: ShortText | None = None


class Places(_Frozen):
    recruitment: CountryCode | None = None
    transit: tuple[CountryCode, ...] = Field(default=(), max_length=20)
    exploitation: CountryCode | None = None


class Narrative(_Frozen):
    """Category ``narrative``: the Palermo elements, indicators, sector, places and the story."""

    acts: frozenset[Act] = Field(min_length=1)
    means: frozenset[Means] = frozenset()
    purposes: frozenset[ExploitationPurpose] = Field(min_length=1)
    indicators: frozenset[Indicator] = frozenset()
    sector: Sector
    places: Places = Places()
    story: Annotated[str, StringConstraints(max_length=20_000)] | None = None


class ScreeningIntake(_Frozen):
    """What a frontline screener records, in plaintext, before anything is sealed or stored."""

    idempotency_key: Annotated[str, StringConstraints(min_length=8, max_length=100)]
    screener_org: OrgId
    screener_type: ScreenerType
    outcome: ScreeningOutcome
    decided_by: OrgId
    decided_by_role: DeciderRole
    presumed_minor: bool = Field(default=False, description="Age uncertain but believed under 18.")
    statistics: Statistics = Statistics()
    identity: Identity
    contact: Contact | None = None
    narrative: Narrative

    @property
    def is_minor(self) -> bool:
        """A child under 18, by age band or presumption (the benefit of the doubt goes to minority)."""
        return self.presumed_minor or self.statistics.age_band in MINOR_AGE_BANDS

    @model_validator(mode="after")
    def _coherent(self) -> ScreeningIntake:
        if not self.is_minor and not self.narrative.means:
            raise ValueError("narrative.means is required for an adult; only a child's screening may omit it")
        check_decision(self.outcome, self.decided_by_role)
        return self

    def personal_parts(self) -> dict[str, BaseModel]:
        """The parts to seal, each under the name of its consent category."""
        parts: dict[str, BaseModel] = {
            Category.IDENTITY: self.identity,
            Category.NARRATIVE: self.narrative,
            # The coded facts statistics count, apart from the story, so that they open under statistics consent.
            Category.STATISTICS: self.statistics.model_copy(
                update={"purposes": self.narrative.purposes, "sector": self.narrative.sector}
            ),
        }
        if self.contact is not None:
            parts[Category.CONTACT] = self.contact
        return parts

    def to_command(self, survivor_id: SurvivorId, screening_id: UUID, sealed: SealedProfile) -> RecordScreening:
        """The command that carries this intake, its personal parts sealed and its idempotency key hashed."""
        return RecordScreening(
            survivor_id=survivor_id,
            screening_id=screening_id,
            idempotency_key=hash_idempotency_key(self.screener_org, self.idempotency_key),
            screener_org=self.screener_org,
            screener_type=self.screener_type,
            outcome=self.outcome,
            decided_by=self.decided_by,
            decided_by_role=self.decided_by_role,
            is_minor=self.is_minor,
            profile=sealed,
        )


def hash_idempotency_key(screener_org: str, key: str) -> str:
    """What travels for a screener's idempotency key: a hash (the key is free text a screener chose).

    >>> len(hash_idempotency_key("city-hotline", "intake-2026-0001"))
    64
    """
    return hashlib.sha256(f"{screener_org}\n{key}".encode()).hexdigest()


class SealedProfile(_Frozen):
    """The personal parts of a screening, each sealed with the survivor's data key."""

    identity: Sealed
    contact: Sealed | None = None
    narrative: Sealed
    statistics: Sealed | None = None


class Need(_Frozen):
    referral_type: ReferralType
    urgency: Urgency
    reason: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


# ---------------------------------------------------------------- commands


class RecordScreening(EventData):
    """Command: record a screening (personal parts sealed), issuing or reusing a survivor id.

    Version 2 seals the statistics in the profile (version 1 carried them in clear)."""

    event_type = "identification.record_screening"
    version = 2
    topic = IDENTIFICATION_COMMANDS.name

    survivor_id: SurvivorId
    screening_id: UUID
    idempotency_key: Annotated[str, StringConstraints(min_length=8, max_length=100)]
    screener_org: OrgId
    screener_type: ScreenerType
    outcome: ScreeningOutcome
    decided_by: OrgId
    decided_by_role: DeciderRole
    is_minor: bool
    profile: SealedProfile

    @model_validator(mode="after")
    def _coherent(self) -> RecordScreening:
        check_decision(self.outcome, self.decided_by_role)
        return self


class EraseSurvivor(EventData):
    """Command: destroy the survivor's key and have every projection purge the survivor."""

    event_type = "identification.erase_survivor"
    topic = IDENTIFICATION_COMMANDS.name

    survivor_id: SurvivorId
    requested_by: OrgId
    reason: ErasureReason


# ---------------------------------------------------------------- events


class SurvivorIdentified(EventData):
    """Version 2 seals the statistics in the profile (version 1 carried them in clear)."""

    event_type = "survivor.identified"
    version = 2
    topic = IDENTIFICATION.name

    survivor_id: SurvivorId
    screening_id: UUID
    screener_org: OrgId
    screener_type: ScreenerType
    outcome: ScreeningOutcome
    decided_by: OrgId
    decided_by_role: DeciderRole
    is_minor: bool
    profile: SealedProfile


class NeedsAssessed(EventData):
    event_type = "needs.assessed"
    topic = IDENTIFICATION.name

    survivor_id: SurvivorId
    screening_id: UUID
    assessed_by: OrgId
    needs: tuple[Need, ...] = Field(max_length=50)


class SurvivorErased(EventData):
    """The survivor's key is destroyed; every projection purges the survivor's rows."""

    event_type = "survivor.erased"
    topic = IDENTIFICATION.name

    survivor_id: SurvivorId
    requested_by: OrgId
    reason: ErasureReason


def _statistics_no_longer_in_clear(data: JsonObject) -> JsonObject:
    """v1 → v2: clear statistics are not carried forward (there is no key here to seal them with):
    services that match on them treat the survivor's age band and gender as unknown."""
    return {k: v for k, v in data.items() if k != "statistics"}


for _model in (RecordScreening, SurvivorIdentified):
    REGISTRY.upcaster(_model.event_type, 1)(_statistics_no_longer_in_clear)
