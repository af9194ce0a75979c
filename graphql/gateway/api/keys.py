"""An organisation's API keys, managed by its own org admin: shown once when made, listed by a short id, revoked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from gateway.api.base import Info, fail, principal
from gateway.auth import Role, RoleNotAllowed, create_key, hash_key

KEY_ID_LENGTH = 16
"""A key is named by the first characters of its hash: enough to tell keys apart, nothing to sign in with."""


@strawberry.type(description="One of my organisation's API keys (never the key itself, which is shown once).")
class ApiKey:
    id: strawberry.ID
    role: Role
    label: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, r: Any) -> ApiKey:
        return cls(id=strawberry.ID(r["key_hash"][:KEY_ID_LENGTH]), role=Role(r["role"]), label=r["label"],
                   created_at=r["created_at"], revoked_at=r["revoked_at"])  # fmt: skip


@strawberry.type(description="A new key: give it to the person or system it is for; it is not shown again.")
class NewApiKey:
    key: str
    api_key: ApiKey


@strawberry.type
class KeysQuery:
    @strawberry.field(description="My organisation's API keys, newest first (org_admin).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        who = principal(info, Role.ORG_ADMIN)
        rows = await info.context["pool"].fetch(
            "SELECT * FROM gateway.api_keys WHERE org_id = $1 ORDER BY created_at DESC", who.org_id
        )
        return [ApiKey.of(r) for r in rows]


@strawberry.type
class KeysMutation:
    @strawberry.mutation(description="A new API key for my organisation in a role it may hold (org_admin).")
    async def create_api_key(self, info: Info, role: Role, label: str | None = None) -> NewApiKey:
        who = principal(info, Role.ORG_ADMIN)
        if label is not None and not 1 <= len(label) <= 100:
            raise fail("BAD_INPUT", "label: 1 to 100 characters", field="label")
        async with info.context["pool"].acquire() as conn:
            try:
                key = await create_key(conn, who.org_id, role, label)
            except RoleNotAllowed as exc:
                raise fail("FORBIDDEN", str(exc), field="role") from None
            row = await conn.fetchrow("SELECT * FROM gateway.api_keys WHERE key_hash = $1", hash_key(key))
        return NewApiKey(key=key, api_key=ApiKey.of(row))

    @strawberry.mutation(description="Revoke one of my organisation's keys at once: its sessions end too (org_admin).")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKey:
        who = principal(info, Role.ORG_ADMIN)
        prefix = str(id)
        if len(prefix) != KEY_ID_LENGTH or not all(c in "0123456789abcdef" for c in prefix):
            raise fail("BAD_INPUT", "id: not a key id this API gave out", field="id")
        row = await info.context["pool"].fetchrow(
            "UPDATE gateway.api_keys SET revoked_at = coalesce(revoked_at, now())"
            " WHERE org_id = $1 AND left(key_hash, $3) = $2 RETURNING *",
            who.org_id, prefix, KEY_ID_LENGTH,
        )  # fmt: skip
        if row is None:  # another organisation's key is answered as one that does not exist
            raise fail("BAD_INPUT", "id: no such key in your organisation", field="id")
        await info.context["pool"].execute("DELETE FROM gateway.console_sessions WHERE key_hash = $1", row["key_hash"])
        return ApiKey.of(row)
