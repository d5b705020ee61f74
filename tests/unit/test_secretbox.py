"""Master key handling, AES-GCM sealing and the in-memory replay cache."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from tradewind.adapters.local import InMemoryReplayCache, SystemClock
from tradewind.adapters.secretbox import (
    KEY_FILE_NAME,
    AesGcmSecretBox,
    MasterKeyError,
    SecretBoxError,
    decode_key,
    encode_key,
    load_master_keys,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


def test_seal_and_open() -> None:
    box = AesGcmSecretBox([KEY_A])
    sealed = box.seal(b"secret", b"ctx")
    assert b"secret" not in sealed
    assert box.open(sealed, b"ctx") == b"secret"
    assert box.seal(b"secret", b"ctx") != sealed  # fresh nonce every time


@pytest.mark.parametrize("where", [0, 1, 9, 21, -1])
def test_tampering_is_detected(where: int) -> None:
    box = AesGcmSecretBox([KEY_A])
    sealed = bytearray(box.seal(b"secret", b"ctx"))
    sealed[where] ^= 0x01
    with pytest.raises(SecretBoxError):
        box.open(bytes(sealed), b"ctx")


def test_wrong_context_or_key_is_refused() -> None:
    sealed = AesGcmSecretBox([KEY_A]).seal(b"secret", b"ctx")
    with pytest.raises(SecretBoxError):
        AesGcmSecretBox([KEY_A]).open(sealed, b"other")
    with pytest.raises(SecretBoxError, match="master key"):
        AesGcmSecretBox([KEY_B]).open(sealed, b"ctx")
    with pytest.raises(SecretBoxError):
        AesGcmSecretBox([KEY_A]).open(b"short", b"ctx")


def test_rotation_opens_old_and_seals_with_new() -> None:
    old = AesGcmSecretBox([KEY_A]).seal(b"secret", b"ctx")
    rotating = AesGcmSecretBox([KEY_B, KEY_A])
    assert rotating.open(old, b"ctx") == b"secret"
    resealed = rotating.seal(b"secret", b"ctx")
    assert AesGcmSecretBox([KEY_B]).open(resealed, b"ctx") == b"secret"


@pytest.mark.parametrize("keys", [[], [b"short"], [KEY_A + b"x"]])
def test_keys_must_be_32_bytes(keys: list[bytes]) -> None:
    with pytest.raises(MasterKeyError):
        AesGcmSecretBox(keys)


def test_key_text_forms() -> None:
    assert decode_key(encode_key(KEY_A)) == KEY_A
    assert decode_key(base64.urlsafe_b64encode(KEY_A).decode().rstrip("=")) == KEY_A
    for bad in ["", "zz" * 32, "abcd", base64.b64encode(b"x" * 31).decode()]:
        with pytest.raises(MasterKeyError):
            decode_key(bad)


def test_environment_variable_wins_and_lists_rotation_keys(tmp_path: Path) -> None:
    env = {"TRADEWIND_SECRET_KEY": f"{KEY_B.hex()}, {KEY_A.hex()}"}
    assert load_master_keys(tmp_path, env) == [KEY_B, KEY_A]
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_key_file_is_created_private_once(tmp_path: Path) -> None:
    first = load_master_keys(tmp_path, {})
    path = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_keys(tmp_path, {}) == first
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE_NAME]


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_master_keys(tmp_path, {})
    os.chmod(tmp_path / KEY_FILE_NAME, 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_master_keys(tmp_path, {})


def test_no_key_and_no_data_dir_is_an_error() -> None:
    with pytest.raises(MasterKeyError):
        load_master_keys(None, {})


@pytest.mark.asyncio
async def test_replay_cache_remembers_until_the_ttl_runs_out() -> None:
    cache = InMemoryReplayCache()
    assert await cache.remember("a", 1000, 100)
    assert not await cache.remember("a", 1099, 100)
    assert await cache.remember("b", 1099, 100)
    assert await cache.remember("a", 1100, 100)
    assert len(cache) == 2
    await cache.remember("c", 5000, 1)
    assert len(cache) == 1
    with pytest.raises(ValueError):
        await cache.remember("d", 5000, 0)


def test_system_clock_is_epoch_milliseconds() -> None:
    assert 1_600_000_000_000 < SystemClock().now_ms() < 10_000_000_000_000
