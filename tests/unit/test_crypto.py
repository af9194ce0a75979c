"""Per-survivor sealing: only the survivor's own key, for the same field, opens a value."""

from __future__ import annotations

from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.identification import Identity
from services.kernel.crypto import DataKey, SealBroken


def key() -> DataKey:
    return DataKey(uuid4(), "k-test", AESGCM.generate_key(bit_length=256))


def test_a_sealed_value_opens_with_its_key_and_shows_no_plaintext() -> None:
    k = key()
    identity = Identity(given_name="Maria", family_name="Santos")
    sealed = k.seal_model("identity", identity)
    assert "Maria" not in sealed.model_dump_json()
    assert k.open_model("identity", sealed, Identity) == identity


def test_another_survivors_key_does_not_open_it() -> None:
    sealed = key().seal("identity", b"Maria")
    other = key()
    with pytest.raises(SealBroken):
        other.open("identity", sealed.model_copy(update={"kid": other.kid}))


def test_a_value_moved_to_another_field_does_not_open() -> None:
    k = key()
    sealed = k.seal("narrative", b"story")
    with pytest.raises(SealBroken, match="identity"):
        k.open("identity", sealed)


def test_a_tampered_value_does_not_open() -> None:
    k = key()
    sealed = k.seal("contact", b"+63 917 555 0101")
    flipped = ("A" if sealed.ciphertext[0] != "A" else "B") + sealed.ciphertext[1:]
    with pytest.raises(SealBroken):
        k.open("contact", sealed.model_copy(update={"ciphertext": flipped}))
