"""Encryption of secrets at rest (TikTok access tokens, app secrets) with key versions.

AES-256-GCM; a blob is ``b"g1" + key_version (2 bytes) + nonce (12) + ciphertext||tag``. The
associated data binds a blob to what it protects (e.g. ``binding:<workspace>:<app id>``), so a
blob copied onto another row fails to decrypt. Keys come from ``CRYPTO_KEYS`` (version → url-safe
base64 of 32 bytes); new blobs use ``CRYPTO_ACTIVE_KEY_VERSION``, old ones decrypt with the key
they name, and ``gmv keys rotate`` re-encrypts everything under the active key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gmv_common.errors import GMVError
from gmv_common.settings import Settings

MAGIC = b"g1"
_HEADER = struct.Struct(">2sH")


class DecryptionError(GMVError):
    default_code = "DECRYPTION_FAILED"


class Keyring:
    def __init__(self, keys: dict[int, bytes], active_version: int) -> None:
        for version, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"crypto key version {version} is not 32 bytes")
        if active_version not in keys:
            raise ValueError(
                f"active crypto key version {active_version} is not configured"
            )
        self._keys = dict(keys)
        self.active_version = active_version

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        keys = {
            int(version): base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            for version, encoded in settings.crypto_keys.items()
        }
        return cls(keys, settings.crypto_active_key_version)

    def encrypt(self, plaintext: str, *, associated_data: str) -> tuple[bytes, int]:
        nonce = os.urandom(12)
        version = self.active_version
        sealed = AESGCM(self._keys[version]).encrypt(
            nonce, plaintext.encode(), associated_data.encode()
        )
        return _HEADER.pack(MAGIC, version) + nonce + sealed, version

    def decrypt(self, blob: bytes, *, associated_data: str) -> str:
        if len(blob) < _HEADER.size + 12 + 16:
            raise DecryptionError("ciphertext is too short")
        magic, version = _HEADER.unpack_from(blob)
        if magic != MAGIC:
            raise DecryptionError("ciphertext has an unknown format")
        key = self._keys.get(version)
        if key is None:
            raise DecryptionError(
                f"ciphertext uses key version {version}, which is not configured"
            )
        nonce = blob[_HEADER.size : _HEADER.size + 12]
        try:
            plaintext = AESGCM(key).decrypt(
                nonce, blob[_HEADER.size + 12 :], associated_data.encode()
            )
        except InvalidTag as exc:
            raise DecryptionError(
                "ciphertext does not match its key or context"
            ) from exc
        return plaintext.decode()

    def needs_rotation(self, blob: bytes) -> bool:
        version: int = _HEADER.unpack_from(blob)[1]
        return version != self.active_version


def fingerprint(secret: str) -> str:
    """A stable, non-reversible identifier of a secret (for uniqueness, never for auth)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def binding_token_context(workspace_id: int, provider_app_id: int) -> str:
    return f"binding:{workspace_id}:{provider_app_id}"


def app_secret_context(app_id: str) -> str:
    return f"provider_app:{app_id}"
