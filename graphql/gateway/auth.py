"""Partner authentication: API keys, hashed at rest, each scoped to one organisation and one role."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from events.consent import OrgType, Party
from services.kernel.db import Connection, Pool


class Role(StrEnum):
    INTAKE = "intake"
    CASEWORKER = "caseworker"
    ORG_ADMIN = "org_admin"
    AUDITOR = "auditor"
    OVERSIGHT = "oversight"


OVERSIGHT_ORG_TYPES = frozenset({OrgType.OVERSIGHT_BODY})
"""Only an organisation registered as an oversight body may hold the oversight role."""


class RoleNotAllowed(ValueError):
    """The organisation may not hold this role (oversight is for oversight bodies only)."""


def check_role(org_type: OrgType, role: Role) -> None:
    if role is Role.OVERSIGHT and org_type not in OVERSIGHT_ORG_TYPES:
        raise RoleNotAllowed(f"the oversight role is held only by an oversight body, not a {org_type}")


@dataclass(frozen=True)
class Principal:
    """Who is asking: an organisation (its type and jurisdictions, for consent) acting in one role."""

    org_id: str
    org_type: OrgType
    role: Role
    jurisdictions: frozenset[str] = frozenset()

    @property
    def party(self) -> Party:
        return Party(self.org_id, self.org_type, self.jurisdictions)


def hash_key(key: str) -> str:
    """Keys are 256-bit random tokens, so a plain SHA-256 is enough to make the stored form useless."""
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(conn: Connection, org_id: str, role: Role, label: str | None = None) -> str:
    """A new API key for ``org_id`` in ``role``; only its hash is stored, so show it once."""
    org_type = await conn.fetchval("SELECT org_type FROM gateway.organisations WHERE org_id = $1", org_id)
    if org_type is None:
        raise LookupError(f"{org_id} is not an organisation the gateway knows")
    check_role(OrgType(org_type), role)
    key = f"hvn_{secrets.token_urlsafe(32)}"
    await conn.execute(
        "INSERT INTO gateway.api_keys (key_hash, org_id, role, label) VALUES ($1, $2, $3, $4)",
        hash_key(key), org_id, role, label,
    )  # fmt: skip
    return key


class OidcVerifier:
    """Verifies OIDC bearer JWTs against a configured issuer, audience and JWKS.

    The token names the partner in two claims: ``haven_org`` (an organisation the gateway knows)
    and ``haven_role``. Signature, issuer, audience, subject and expiry are all required.
    """

    def __init__(self, issuer: str, audience: str, jwks_url: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300)

    def claims(self, token: str) -> dict[str, Any]:
        key = self._jwks.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token, key.key, algorithms=["RS256", "ES256"], audience=self.audience, issuer=self.issuer,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )  # fmt: skip
        return claims


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("hvn_")


async def authenticate(conn: Pool | Connection, key: str | None, oidc: OidcVerifier | None = None) -> Principal | None:
    """The principal behind an API key or, where OIDC is configured, a verified bearer JWT; else None.

    Takes the pool (a connection for just its one query) or a connection already in hand."""
    if not key:
        return None
    if oidc is not None and looks_like_jwt(key):
        try:
            claims = await asyncio.to_thread(oidc.claims, key)  # JWKS fetches are blocking I/O
        except jwt.PyJWTError:
            return None
        return await principal_for(conn, claims.get("haven_org"), claims.get("haven_role"))
    return await principal_of(conn, hash_key(key))


async def principal_for(conn: Pool | Connection, org_id: object, role: object) -> Principal | None:
    """The principal an identity provider vouches for (``haven_org``, ``haven_role``), if the gateway knows the
    organisation and it may hold the role."""
    if not isinstance(org_id, str) or role not in Role.__members__.values():
        return None
    org = await conn.fetchrow(
        f"SELECT org_type, {JURISDICTIONS} AS jurisdictions FROM gateway.organisations o WHERE org_id = $1", org_id
    )
    return _principal(org_id, org["org_type"], str(role), org["jurisdictions"]) if org is not None else None


async def principal_of(conn: Pool | Connection, key_hash: str) -> Principal | None:
    """The principal of the API key with this hash, while the key holds (a console session keeps only the hash)."""
    row = await conn.fetchrow(
        f"SELECT k.org_id, k.role, o.org_type, {JURISDICTIONS} AS jurisdictions"
        " FROM gateway.api_keys k JOIN gateway.organisations o USING (org_id)"
        " WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        key_hash,
    )
    return _principal(row["org_id"], row["org_type"], row["role"], row["jurisdictions"]) if row else None


JURISDICTIONS = "coalesce(o.profile->'jurisdictions', '[]'::jsonb)"
"""An organisation's jurisdictions, from its directory profile (none yet for one the directory has not confirmed)."""


def _principal(org_id: str, org_type: str, role: str, jurisdictions: list[str]) -> Principal | None:
    """The principal, unless its organisation may not hold the role (checked again at every request)."""
    try:
        check_role(OrgType(org_type), Role(role))
    except RoleNotAllowed:
        return None
    return Principal(org_id, OrgType(org_type), Role(role), frozenset(jurisdictions))


async def create_organisation(conn: Connection, org_id: str, name: str, org_type: OrgType) -> None:
    """Make the organisation known to the gateway at once (the directory event confirms it later)."""
    await conn.execute(
        "INSERT INTO gateway.organisations (org_id, name, org_type) VALUES ($1, $2, $3)"
        " ON CONFLICT (org_id) DO UPDATE SET name = excluded.name, org_type = excluded.org_type",
        org_id, name, org_type,
    )  # fmt: skip
