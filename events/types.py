"""Identifier and value types shared by every domain's events."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SurvivorId = UUID
"""Pseudonymous survivor id: random, issued by identification, carries no personal data."""

ReferralId = UUID

OrgId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
"""An organisation's slug, e.g. ``safe-harbour-shelter``."""

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
"""A coded value from a controlled vocabulary."""

ShortText = Annotated[str, StringConstraints(max_length=500)]

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
"""ISO 3166-1 alpha-2."""


class Sealed(BaseModel):
    """A value encrypted with its survivor's own data key (AES-256-GCM); unreadable once the key is gone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: Literal["A256GCM"] = "A256GCM"
    kid: Annotated[str, StringConstraints(max_length=100)] = Field(description="The data key's id.")
    nonce: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16}$")] = Field(
        description="96-bit nonce, base64url without padding."
    )
    ciphertext: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]*$", max_length=200_000)] = Field(
        description="Ciphertext and tag, base64url without padding."
    )
