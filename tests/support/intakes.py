"""Realistic screening intakes for tests, and the submitting side: seal, then send the command."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from aiokafka import AIOKafkaProducer

from events.envelope import Envelope, to_kafka
from events.identification import (
    DeciderRole,
    RecordScreening,
    ScreenerType,
    ScreeningIntake,
    ScreeningOutcome,
    SealedProfile,
    SurvivorIdentified,
)
from events.types import Sealed
from services.kernel.crypto import Keyring
from services.kernel.db import Pool


def intake_data(**overrides: Any) -> dict[str, Any]:
    """An adult's screening by a hotline, as the JSON a partner system would send."""
    data: dict[str, Any] = {
        "idempotency_key": f"hotline-{uuid4().hex}",
        "screener_org": "city-hotline",
        "screener_type": "hotline",
        "outcome": "probable_victim",
        "decided_by": "city-hotline",
        "decided_by_role": "screener",
        "statistics": {"age_band": "age_24_26", "gender": "female", "nationality": "PH", "disability": False},
        "identity": {
            "given_name": "Maria",
            "family_name": "Santos",
            "date_of_birth": "1994-03-02",
            "documents": [{"kind": "passport", "number": "P1234567", "issuing_country": "PH"}],
        },
        "contact": {"phone": "+63 917 555 0101", "safe_contact_instructions": "text only, after 8pm"},
        "narrative": {
            "acts": ["recruitment", "transport"],
            "means": ["deception", "document_confiscation", "debt_bondage"],
            "purposes": ["domestic_servitude"],
            "indicators": ["confiscated_documents", "withheld_wages", "no_safe_accommodation"],
            "sector": "domestic_work",
            "places": {"recruitment": "PH", "transit": ["AE"], "exploitation": "GB"},
            "story": "Recruited as a nanny; passport taken on arrival; not paid for 14 months.",
        },
    }
    for key, value in overrides.items():
        target, *path = key.split("__")
        node = data
        for part in [target, *path][:-1]:
            node = node[part]
        node[[target, *path][-1]] = value
    return data


async def seal_intake(
    pool: Pool, keyring: Keyring, intake: ScreeningIntake, survivor_id: UUID | None = None
) -> RecordScreening:
    """What the intake side does: create the survivor's key, seal the personal parts, build the command."""
    survivor_id = survivor_id or uuid4()
    async with pool.acquire() as conn:
        key = await keyring.create(conn, survivor_id)
    sealed = SealedProfile.model_validate(key.seal_parts(intake.personal_parts()))
    return intake.to_command(survivor_id, uuid4(), sealed)


async def send(producer: AIOKafkaProducer, *commands: Any, source: str = "haven/tests") -> list[Envelope]:
    """Publish commands (or events) as their CloudEvents; return the envelopes sent."""
    sent = []
    for command in commands:
        envelope = Envelope.new(command, source=source)
        record = to_kafka(envelope)
        await producer.send_and_wait(record.topic, value=record.value, key=record.key, headers=record.headers)
        sent.append(envelope)
    return sent


def _sealed_stand_in() -> Sealed:
    """Ciphertext nobody opens: services that only route on a survivor never look inside."""
    return Sealed(kid="test", nonce="AAAAAAAAAAAAAAAA", ciphertext="AAAA")


async def identified(
    producer: AIOKafkaProducer, survivor_id: UUID, screener_org: str, *, is_minor: bool = False
) -> None:
    """Announce ``survivor_id`` as identification would, screened by ``screener_org`` (its first care team).

    Its sealed parts are stand-ins that open for nobody: services treat the statistics as unknown."""
    profile = SealedProfile(identity=_sealed_stand_in(), narrative=_sealed_stand_in())
    await send(
        producer,
        SurvivorIdentified(
            survivor_id=survivor_id, screening_id=uuid4(), screener_org=screener_org,
            screener_type=ScreenerType.HOTLINE, outcome=ScreeningOutcome.PROBABLE_VICTIM, decided_by=screener_org,
            decided_by_role=DeciderRole.SCREENER, is_minor=is_minor, profile=profile,
        ),
        source="haven/identification",
    )  # fmt: skip
