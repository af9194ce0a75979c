"""The access audit's checkpoints: the head of its hash chain, signed, for an oversight body to keep.

Whoever holds a checkpoint can show that the audit up to it is unchanged (``haven audit verify --against FILE``):
rewriting a read before it changes every hash after, and the head would no longer match. The signature (Ed25519)
shows the checkpoint came from this Haven: ``public_key`` travels with it; an oversight body pins it once.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from events.base import EventData
from events.catalog import AUDIT

Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AuditCheckpointed(EventData):
    """The audit's chain head at ``at``: its last record, how many there were, and the signature over them."""

    event_type = "audit.checkpointed"
    topic = AUDIT.name

    seq: int = Field(ge=0, description="The last record's sequence number (0: the audit was empty).")
    records: int = Field(ge=0)
    head: Hex64 = Field(description="The last record's hash (the genesis hash when empty).")
    at: AwareDatetime
    reason: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")] = "interval"
    public_key: str = Field(description="Ed25519, raw, base64url.")
    signature: str = Field(description="Ed25519 over ``signed()``, base64url.")

    def subject(self) -> str:
        return "haven-audit"

    def signed(self) -> bytes:
        """What the signature covers: the chain's position and head, and when."""
        return json.dumps([self.seq, self.records, self.head, self.at.isoformat(), self.reason]).encode()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text)
