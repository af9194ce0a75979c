"""Partner authentication: API keys, hashed at rest, each scoped to one organisation and one role."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from events.consent import OrgType, Party
from services.kernel.db import Connection


class Role(StrEnum):
    INTAKE = "intake"
    CASEWORKER = "caseworker"
    ORG_ADMIN = "org_admin"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class Principal:
    """Who is asking: an organisation (and its type, for consent) acting in one role."""

    org_id: str
    org_type: OrgType
    role: Role

    @property
    def party(self) -> Party:
        return Party(self.org_id, self.org_type)


def hash_key(key: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is enough to make the stored form useless."""
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(conn: Connection, org_id: str, role: Role, label: str | None = None) -> str:
    """A new API key for ``org_id`` in ``role``; only its hash is stored, so show it once."""
    key = f"hvn_{secrets.token_urlsafe(32)}"
    await conn.execute(
        "INSERT INTO gateway.api_keys (key_hash, org_id, role, label) VALUES ($1, $2, $3, $4)",
        hash_key(key), org_id, role, label,
    )  # fmt: skip
    return key


async def authenticate(conn: Connection, key: str | None) -> Principal | None:
    if not key:
        return None
    row = await conn.fetchrow(
        "SELECT k.org_id, k.role, o.org_type FROM gateway.api_keys k JOIN gateway.organisations o USING (org_id)"
        " WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        hash_key(key),
    )
    return Principal(row["org_id"], OrgType(row["org_type"]), Role(row["role"])) if row else None


async def create_organisation(conn: Connection, org_id: str, name: str, org_type: OrgType) -> None:
    """Make the organisation known to the gateway at once (the directory event confirms it later)."""
    await conn.execute(
        "INSERT INTO gateway.organisations (org_id, name, org_type) VALUES ($1, $2, $3)"
        " ON CONFLICT (org_id) DO UPDATE SET name = excluded.name, org_type = excluded.org_type",
        org_id, name, org_type,
    )  # fmt: skip
