"""The keyring: secrets at rest, bound to their row, readable across key rotations."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest

from gmv_common.crypto import (
    DecryptionError,
    Keyring,
    app_secret_context,
    binding_token_context,
    fingerprint,
)
from gmv_common.settings import Settings

KEY_1 = os.urandom(32)
KEY_2 = os.urandom(32)


def test_a_token_round_trips_under_its_context() -> None:
    keyring = Keyring({1: KEY_1}, active_version=1)
    context = binding_token_context(workspace_id=3, provider_app_id=9)

    blob, version = keyring.encrypt("act.example-token", associated_data=context)

    assert version == 1
    assert b"act.example-token" not in blob
    assert keyring.decrypt(blob, associated_data=context) == "act.example-token"


def test_the_same_plaintext_encrypts_differently_each_time() -> None:
    keyring = Keyring({1: KEY_1}, active_version=1)
    context = app_secret_context("7001")

    first, _ = keyring.encrypt("app-secret", associated_data=context)
    second, _ = keyring.encrypt("app-secret", associated_data=context)

    assert first != second


def test_a_blob_copied_onto_another_binding_does_not_decrypt() -> None:
    keyring = Keyring({1: KEY_1}, active_version=1)
    blob, _ = keyring.encrypt(
        "act.example-token", associated_data=binding_token_context(3, 9)
    )

    with pytest.raises(DecryptionError, match="does not match"):
        keyring.decrypt(blob, associated_data=binding_token_context(4, 9))


def test_a_tampered_blob_does_not_decrypt() -> None:
    keyring = Keyring({1: KEY_1}, active_version=1)
    blob, _ = keyring.encrypt("secret", associated_data="ctx")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])

    with pytest.raises(DecryptionError):
        keyring.decrypt(tampered, associated_data="ctx")


def test_old_blobs_still_decrypt_after_rotating_to_a_new_active_key() -> None:
    before = Keyring({1: KEY_1}, active_version=1)
    old_blob, _ = before.encrypt("act.old", associated_data="ctx")

    rotated = Keyring({1: KEY_1, 2: KEY_2}, active_version=2)
    new_blob, new_version = rotated.encrypt("act.new", associated_data="ctx")

    assert new_version == 2
    assert rotated.decrypt(old_blob, associated_data="ctx") == "act.old"
    assert rotated.decrypt(new_blob, associated_data="ctx") == "act.new"
    assert rotated.needs_rotation(old_blob)
    assert not rotated.needs_rotation(new_blob)


def test_a_blob_of_a_key_version_no_longer_configured_fails_clearly() -> None:
    rotated = Keyring({1: KEY_1, 2: KEY_2}, active_version=2)
    blob, _ = rotated.encrypt("act.token", associated_data="ctx")
    retired = Keyring({1: KEY_1}, active_version=1)

    with pytest.raises(DecryptionError, match="key version 2, which is not configured"):
        retired.decrypt(blob, associated_data="ctx")


@pytest.mark.parametrize("blob", [b"", b"g1", b"xx" + bytes(40)])
def test_garbage_is_refused_as_undecryptable(blob: bytes) -> None:
    keyring = Keyring({1: KEY_1}, active_version=1)

    with pytest.raises(DecryptionError):
        keyring.decrypt(blob, associated_data="ctx")


def test_a_keyring_refuses_keys_that_are_not_32_bytes() -> None:
    with pytest.raises(ValueError, match="not 32 bytes"):
        Keyring({1: os.urandom(16)}, active_version=1)


def test_a_keyring_refuses_an_active_version_without_a_key() -> None:
    with pytest.raises(ValueError, match="active crypto key version 3"):
        Keyring({1: KEY_1}, active_version=3)


def test_the_keyring_is_built_from_settings_keys(
    make_settings: Callable[..., Settings],
) -> None:
    encoded = {
        1: base64.urlsafe_b64encode(KEY_1).decode().rstrip("="),
        2: base64.urlsafe_b64encode(KEY_2).decode(),
    }
    keyring = Keyring.from_settings(
        make_settings(crypto_keys=encoded, crypto_active_key_version=2)
    )
    direct = Keyring({1: KEY_1}, active_version=1)
    blob, _ = direct.encrypt("act.token", associated_data="ctx")

    assert keyring.active_version == 2
    assert keyring.decrypt(blob, associated_data="ctx") == "act.token"


def test_fingerprint_is_stable_and_does_not_reveal_the_secret() -> None:
    assert fingerprint("app-secret") == fingerprint("app-secret")
    assert fingerprint("app-secret") != fingerprint("app-secret2")
    assert "app-secret" not in fingerprint("app-secret")
