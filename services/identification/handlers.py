"""Identification's command handlers: ``async def name(command, uow, *, keyring)``."""

from __future__ import annotations

import logging
from typing import Any

from events.consent import Category
from events.envelope import Envelope
from events.errors import DomainError
from events.identification import (
    EraseSurvivor,
    Narrative,
    NeedsAssessed,
    RecordScreening,
    SurvivorErased,
    SurvivorIdentified,
)
from services.identification import domain, repository
from services.kernel import erasure
from services.kernel.consumer import UnitOfWork
from services.kernel.crypto import Keyring, SealBroken, SurvivorKeyMissing

SOURCE = "haven/identification"
log = logging.getLogger(__name__)


async def record_screening(command: RecordScreening, uow: UnitOfWork, *, keyring: Keyring) -> None:
    """Record a screening once per idempotency key; publish ``survivor.identified`` and ``needs.assessed``."""
    earlier = await repository.screening_by_key(uow.conn, command.screener_org, command.idempotency_key)
    if earlier is not None:
        await _acknowledge_retry(command, earlier, uow, keyring)
        return
    try:
        key = await keyring.get(uow.conn, command.survivor_id)
        narrative = key.open_model(Category.NARRATIVE, command.profile.narrative, Narrative)
        for category, sealed in (
            (Category.IDENTITY, command.profile.identity),
            (Category.CONTACT, command.profile.contact),
            (Category.STATISTICS, command.profile.statistics),
        ):
            if sealed is not None:
                key.open(category, sealed)  # proves each part is sealed for this survivor and field
    except SurvivorKeyMissing as exc:
        if exc.erased:
            raise DomainError("survivor_erased", "this survivor's data was erased", field="survivor_id") from None
        raise DomainError("survivor_key_missing", "no data key was made for this survivor id",
                          field="survivor_id") from None  # fmt: skip
    except SealBroken as exc:
        raise DomainError("seal_broken", str(exc), field="profile") from None
    needs = domain.assess_needs(narrative, is_minor=command.is_minor)
    await repository.record(uow.conn, command, needs)
    await uow.emit(
        Envelope.new(SurvivorIdentified(**command.model_dump(exclude={"idempotency_key"})), source=SOURCE),
        Envelope.new(
            NeedsAssessed(
                survivor_id=command.survivor_id,
                screening_id=command.screening_id,
                assessed_by=command.screener_org,
                needs=needs,
            ),
            source=SOURCE,
        ),
    )


async def _acknowledge_retry(command: RecordScreening, row: Any, uow: UnitOfWork, keyring: Keyring) -> None:
    if not domain.same_screening(row["command"], repository.clear_parts(command)):
        raise DomainError(
            "idempotency_key_reused",
            "this idempotency key was used for a different screening",
            field="idempotency_key",
        )
    if row["survivor_id"] != command.survivor_id and not await repository.survivor_known(uow.conn, command.survivor_id):
        # The retry came with a fresh survivor id and key: shred that key, the first survivor stands.
        await keyring.destroy(uow.conn, command.survivor_id)
    log.info("screening %s retried with the same key: nothing new recorded", row["screening_id"])


async def erase_survivor(command: EraseSurvivor, uow: UnitOfWork, *, keyring: Keyring) -> None:
    """Destroy the survivor's key, purge our rows, and tell every projection to purge theirs."""
    await keyring.destroy(uow.conn, command.survivor_id)
    await repository.purge(uow.conn, command.survivor_id)
    await erasure.remember(uow.conn, command.survivor_id)
    await uow.emit(
        Envelope.new(
            SurvivorErased(survivor_id=command.survivor_id, requested_by=command.requested_by, reason=command.reason),
            source=SOURCE,
        )
    )
