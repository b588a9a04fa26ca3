"""Encryption of provider tokens at rest: AES-256-GCM under a key derived with HKDF-SHA256.

Each ciphertext is bound to its record (the associated data is the grant id), so a ciphertext
copied onto another row does not decrypt.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from athkit.protocol import b64url_decode, b64url_encode

_VERSION = "v1"


class TokenCipher:
    """Encrypts and decrypts provider tokens with a key derived from the server secret."""

    __slots__ = ("_aead",)

    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < 32:
            raise ValueError("secret_key must be at least 32 characters")
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"athkit/server",
            info=b"athkit provider tokens v1",
        ).derive(secret_key.encode("utf-8"))
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, *, bound_to: str) -> str:
        """``v1.<base64url(nonce ‖ ciphertext ‖ tag)>``."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), bound_to.encode("utf-8"))
        return f"{_VERSION}.{b64url_encode(nonce + sealed)}"

    def decrypt(self, ciphertext: str, *, bound_to: str) -> str:
        """The plaintext; ``ValueError`` if the ciphertext was altered or bound elsewhere."""
        version, _, body = ciphertext.partition(".")
        if version != _VERSION:
            raise ValueError("unknown ciphertext version")
        raw = b64url_decode(body)
        try:
            plain = self._aead.decrypt(raw[:12], raw[12:], bound_to.encode("utf-8"))
        except InvalidTag:
            raise ValueError("ciphertext does not decrypt under this key") from None
        return plain.decode("utf-8")
