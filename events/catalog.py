"""The topic catalog: every topic Haven uses, how it is keyed and how long it keeps data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FOREVER = -1
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One Kafka topic and its configuration."""

    name: str
    description: str
    key: str
    partitions: int = 6
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int = FOREVER

    @property
    def dead_letter(self) -> TopicSpec:
        """The topic where undecodable or invalid messages of this one go, with the reason in headers."""
        return TopicSpec(
            name=dlq_name(self.name),
            description=f"Dead letters of {self.name}: the original bytes, with the reason in headers.",
            key=self.key,
            partitions=1,
            retention_ms=30 * DAY_MS,
        )

    def kafka_configs(self) -> dict[str, str]:
        """Topic-level configs for the admin client."""
        configs = {"cleanup.policy": self.cleanup_policy, "min.insync.replicas": "1"}
        if self.cleanup_policy == "delete":
            configs["retention.ms"] = str(self.retention_ms)
        return configs


def dlq_name(topic: str) -> str:
    """The dead-letter topic of ``topic``.

    >>> dlq_name("haven.referrals")
    'haven.referrals.dlq'
    """
    return f"{topic}.dlq"


SURVIVOR_KEY = "the pseudonymous survivor id, so that one survivor's events stay in order"

IDENTIFICATION = TopicSpec(
    "haven.identification",
    "Screenings, needs assessments and erasures. Personal fields are sealed with the survivor's key.",
    SURVIVOR_KEY,
)
CONSENT = TopicSpec(
    "haven.consent", "Consent directives granted, revoked and expired; the history is kept.", SURVIVOR_KEY
)
REFERRALS = TopicSpec("haven.referrals", "Every referral and every transition of its lifecycle.", SURVIVOR_KEY)
SHELTER = TopicSpec("haven.shelter", "Shelter placements: reserved, check-in, check-out, released.", SURVIVOR_KEY)
SHELTER_COMMANDS = TopicSpec(
    "haven.shelter.commands",
    "Commands to shelters: configure beds (keyed by organisation), accept a placement, check in, check out.",
    SURVIVOR_KEY,
    retention_ms=7 * DAY_MS,
)
LEGAL_AID = TopicSpec("haven.legal_aid", "Legal matters, their milestones and outcomes.", SURVIVOR_KEY)
HEALTH = TopicSpec("haven.health", "Engagement in care; clinical detail only sealed.", SURVIVOR_KEY)
EMPLOYMENT = TopicSpec("haven.employment", "Enrolments in reintegration programs and their outcomes.", SURVIVOR_KEY)


def _commands(domain: str, what: str) -> TopicSpec:
    return TopicSpec(f"haven.{domain}.commands", f"Commands to {what}.", SURVIVOR_KEY, retention_ms=7 * DAY_MS)


LEGAL_AID_COMMANDS = _commands("legal_aid", "legal aid: configure a clinic, open a matter, milestones, close")
HEALTH_COMMANDS = _commands("health", "health providers: record engagement in care, discharge")
EMPLOYMENT_COMMANDS = _commands("employment", "employment programs: enrol, record outcomes")
IDENTIFICATION_COMMANDS = TopicSpec(
    "haven.identification.commands",
    "Commands to identification: record a screening (personal parts sealed), erase a survivor.",
    SURVIVOR_KEY,
    retention_ms=7 * DAY_MS,
)
CONSENT_COMMANDS = TopicSpec(
    "haven.consent.commands",
    "Commands to consent: grant or revoke a directive.",
    SURVIVOR_KEY,
    retention_ms=7 * DAY_MS,
)
REFERRALS_COMMANDS = TopicSpec(
    "haven.referrals.commands",
    "Commands to referrals: request, the lifecycle actions, expiry from the deadline worker, and the "
    "directory's registrations (keyed by organisation id).",
    SURVIVOR_KEY,
    retention_ms=7 * DAY_MS,
)
DIRECTORY = TopicSpec(
    "haven.directory",
    "Partner organisations and their live capacity. No survivor data; the latest value per key is kept.",
    "the organisation id, or organisation id/service/unit type for capacity",
    partitions=3,
    cleanup_policy="compact",
)

STATISTICS = TopicSpec(
    "haven.statistics",
    "De-identified statistics releases for oversight bodies: coded figures of 11 survivors or more, never an id.",
    "the release id",
    partitions=1,
)
STATISTICS_COMMANDS = TopicSpec(
    "haven.statistics.commands",
    "Commands to statistics: release a table (from an oversight body).",
    "the requesting organisation",
    partitions=1,
    retention_ms=7 * DAY_MS,
)

AUDIT = TopicSpec(
    "haven.audit",
    "Signed checkpoints of the access audit's hash chain (its head, at an interval and at each statistics release), "
    "for an oversight body to keep apart from the operator's database. No survivor data.",
    "haven-audit",
    partitions=1,
)

OUTCOMES = TopicSpec(
    "haven.outcomes",
    "What became of each command: applied, or refused with a code, the field and a message. Ids and codes only.",
    "the organisation that sent the command, so that its outcomes stay in order",
)

TOPICS: tuple[TopicSpec, ...] = (
    IDENTIFICATION,
    IDENTIFICATION_COMMANDS,
    CONSENT,
    CONSENT_COMMANDS,
    REFERRALS,
    REFERRALS_COMMANDS,
    SHELTER,
    SHELTER_COMMANDS,
    LEGAL_AID,
    LEGAL_AID_COMMANDS,
    HEALTH,
    HEALTH_COMMANDS,
    EMPLOYMENT,
    EMPLOYMENT_COMMANDS,
    DIRECTORY,
    STATISTICS,
    STATISTICS_COMMANDS,
    AUDIT,
    OUTCOMES,
)


def all_topics() -> list[TopicSpec]:
    """Every topic and its dead-letter topic."""
    return [spec for topic in TOPICS for spec in (topic, topic.dead_letter)]
