"""The event contract: envelope, payload models, topic catalog. Depends on nothing of ours.

Importing this package registers every event type of every domain.
"""

from __future__ import annotations

from events import (
    audit,
    consent,
    directory,
    employment,
    health,
    identification,
    legal_aid,
    needs,
    outcomes,
    referrals,
    shelter,
    statistics,
)
from events.base import REGISTRY, EventData
from events.envelope import Envelope, KafkaRecord, UndecodableEvent, from_kafka, to_kafka

__all__ = [
    "REGISTRY",
    "Envelope",
    "EventData",
    "KafkaRecord",
    "UndecodableEvent",
    "audit",
    "consent",
    "directory",
    "employment",
    "from_kafka",
    "health",
    "identification",
    "legal_aid",
    "needs",
    "outcomes",
    "referrals",
    "shelter",
    "statistics",
    "to_kafka",
]
