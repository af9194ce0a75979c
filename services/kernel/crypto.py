"""Per-survivor encryption: each survivor's personal data is sealed with that survivor's own key.

Keys live in the ``keyring`` schema, wrapped by the master key (``HAVEN_MASTER_KEY`` or the
key file). Erasing a survivor deletes the key: every copy of the ciphertext — in Kafka, in any
table, in a backup — becomes unreadable at once (crypto-shredding).

>>> from uuid import uuid4
>>> from events.consent import Category
>>> from events.identification import Identity
>>> keyring = Keyring(decode_master_key(new_master_key()))
>>> survivor_id = uuid4()
>>> key, wrapped = keyring.mint(survivor_id)  # Keyring.create also stores it, in the caller's transaction
>>> sealed = key.seal_model(Category.IDENTITY, Identity(given_name="Maria"))
>>> "Maria" in sealed.model_dump_json()
False
>>> key.open_model(Category.IDENTITY, sealed, Identity).given_name
'Maria'
>>> keyring.unwrap(survivor_id, key.kid, wrapped).open_model(Category.IDENTITY, sealed, Identity).given_name
'Maria'

A seal is bound to its category: what was sealed as identity does not open as contact.

>>> key.open(Category.CONTACT, sealed)
Traceback (most recent call last):
...
services.kernel.crypto.SealBroken: the contact value does not open with this survivor's key
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel

from events.types import Sealed
from services.kernel.db import Connection

M = TypeVar("M", bound=BaseModel)

KEYRING_SCHEMA = "keyring"


class SurvivorKeyMissing(LookupError):
    """The survivor has no data key: never identified, or erased (``erased`` says which)."""

    def __init__(self, survivor_id: UUID, *, erased: bool) -> None:
        state = "was erased" if erased else "has no data key"
        super().__init__(f"survivor {survivor_id} {state}")
        self.survivor_id = survivor_id
        self.erased = erased


class SealBroken(ValueError):
    """A sealed value that does not open with its survivor's key (tampered, or for another field)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class DataKey:
    """One survivor's AES-256-GCM key. The associated data binds each value to its survivor and field."""

    survivor_id: UUID
    kid: str
    key: bytes = field(repr=False)

    def _aad(self, category: str) -> bytes:
        return f"haven/{self.survivor_id}/{category}".encode()

    def seal(self, category: str, plaintext: bytes) -> Sealed:
        nonce = os.urandom(12)
        ciphertext = AESGCM(self.key).encrypt(nonce, plaintext, self._aad(category))
        return Sealed(kid=self.kid, nonce=_b64(nonce), ciphertext=_b64(ciphertext))

    def open(self, category: str, sealed: Sealed) -> bytes:
        if sealed.kid != self.kid:
            raise SealBroken(f"sealed with key {sealed.kid}, not {self.kid}")
        try:
            return AESGCM(self.key).decrypt(_unb64(sealed.nonce), _unb64(sealed.ciphertext), self._aad(category))
        except InvalidTag:
            raise SealBroken(f"the {category} value does not open with this survivor's key") from None

    def seal_model(self, category: str, model: BaseModel) -> Sealed:
        return self.seal(category, model.model_dump_json().encode())

    def open_model(self, category: str, sealed: Sealed, model: type[M]) -> M:
        return model.model_validate_json(self.open(category, sealed))

    def seal_parts(self, parts: Mapping[str, BaseModel]) -> dict[str, Sealed]:
        """Seal each part under its own category name (``{"identity": ..., "contact": ...}``)."""
        return {category: self.seal_model(category, model) for category, model in parts.items()}


class Keyring:
    """Creates, fetches and destroys survivors' data keys, wrapping them with the master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes (AES-256)")
        self._master = AESGCM(master_key)
        self._pseudonyms = hmac.new(master_key, b"haven pseudonyms", hashlib.sha256).digest()
        self._checkpoints = hmac.new(master_key, b"haven audit checkpoints", hashlib.sha256).digest()

    def checkpoint_key(self) -> Ed25519PrivateKey:
        """The key the access audit's checkpoints are signed with (derived from the master key: nothing to store)."""
        return Ed25519PrivateKey.from_private_bytes(self._checkpoints)

    def pseudonym(self, *parts: str) -> UUID:
        """An id the same ``parts`` always give and no one without the master key can work out: a retried intake
        (its screener and idempotency key) names the survivor the first attempt named.

        >>> ring = Keyring(bytes(32))
        >>> ring.pseudonym("hotline", "k-1") == ring.pseudonym("hotline", "k-1") != ring.pseudonym("shelter", "k-1")
        True
        """
        digest = hmac.new(self._pseudonyms, "\x00".join(parts).encode(), hashlib.sha256).digest()
        return UUID(bytes=digest[:16], version=4)

    def _wrap(self, survivor_id: UUID, key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._master.encrypt(nonce, key, survivor_id.bytes)

    def _unwrap(self, survivor_id: UUID, wrapped: bytes) -> bytes:
        return self._master.decrypt(wrapped[:12], wrapped[12:], survivor_id.bytes)

    async def create(self, conn: Connection, survivor_id: UUID) -> DataKey:
        """The survivor's key, created now if it does not exist yet; refuses an erased survivor."""
        if await conn.fetchval("SELECT 1 FROM keyring.erased WHERE survivor_id = $1", survivor_id):
            raise SurvivorKeyMissing(survivor_id, erased=True)
        key, wrapped = self.mint(survivor_id)
        await conn.execute(
            "INSERT INTO keyring.data_keys (survivor_id, kid, wrapped_key) VALUES ($1, $2, $3)"
            " ON CONFLICT (survivor_id) DO NOTHING",
            survivor_id,
            key.kid,
            wrapped,
        )
        return await self.get(conn, survivor_id)

    def mint(self, survivor_id: UUID) -> tuple[DataKey, bytes]:
        """A new key and its wrapped form, not stored: ``create`` stores it; a bulk load COPYs many."""
        key, kid = AESGCM.generate_key(bit_length=256), f"k-{secrets.token_hex(8)}"
        return DataKey(survivor_id, kid, key), self._wrap(survivor_id, key)

    async def get(self, conn: Connection, survivor_id: UUID) -> DataKey:
        row = await conn.fetchrow("SELECT kid, wrapped_key FROM keyring.data_keys WHERE survivor_id = $1", survivor_id)
        if row is None:
            erased = bool(await conn.fetchval("SELECT 1 FROM keyring.erased WHERE survivor_id = $1", survivor_id))
            raise SurvivorKeyMissing(survivor_id, erased=erased)
        return self.unwrap(survivor_id, row["kid"], row["wrapped_key"])

    def unwrap(self, survivor_id: UUID, kid: str, wrapped: bytes) -> DataKey:
        """The key from its ``keyring.data_keys`` row, for a caller that fetched the row with other data."""
        return DataKey(survivor_id, kid, self._unwrap(survivor_id, wrapped))

    async def destroy(self, conn: Connection, survivor_id: UUID) -> bool:
        """Delete the survivor's key for good and remember the erasure; True if a key was deleted."""
        deleted = await conn.fetchval(
            "DELETE FROM keyring.data_keys WHERE survivor_id = $1 RETURNING true", survivor_id
        )
        await conn.execute("INSERT INTO keyring.erased (survivor_id) VALUES ($1) ON CONFLICT DO NOTHING", survivor_id)
        return bool(deleted)


async def open_or_none(
    keyring: Keyring, conn: Connection, survivor_id: UUID, category: str, sealed: Sealed | None, model: type[M]
) -> M | None:
    """Open ``sealed`` as ``model``; None when there is nothing to open, the key is gone, or the seal is
    broken (a service that only matches on coded facts treats them as unknown, never as a failure)."""
    if sealed is None:
        return None
    try:
        return (await keyring.get(conn, survivor_id)).open_model(category, sealed, model)
    except (SurvivorKeyMissing, SealBroken):
        return None


def new_master_key() -> str:
    """A fresh master key, base64url, for ``HAVEN_MASTER_KEY`` or the key file."""
    return _b64(AESGCM.generate_key(bit_length=256))


def decode_master_key(text: str) -> bytes:
    return _unb64(text.strip())
