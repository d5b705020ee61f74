"""TOTP second factor (RFC 6238 with the parameters every authenticator app uses).

Why these choices:
- 30-second steps, 6 digits, HMAC-SHA1, a 160-bit base32 secret: the only profile that
  Google Authenticator, Authy and 1Password all accept from an ``otpauth://`` URI;
- one step of drift either way (a phone clock 30 s off still works), and a code is
  accepted at most once: :func:`match_step` says *which* step a code belongs to, and the
  caller accepts it only if that step is newer than the last one accepted (stored per
  user, advanced atomically), so a code seen over a shoulder or in a log cannot be
  replayed, even within its own 90-second validity;
- recovery codes are 80 random bits each, so a plain SHA-256 suffices to store them
  (unlike passwords they cannot be guessed from a dictionary), and checking one is
  cheap enough to do without a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import pyotp

ISSUER = "Tradewind"
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
_CODE = re.compile(r"[0-9]{6}")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_RECOVERY = re.compile(r"[a-z0-9]{4}(?:-?[a-z0-9]{4}){3}")


def new_secret() -> str:
    """A fresh 160-bit secret, base32 (what authenticator apps store)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app scans."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=ISSUER
    )


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an inline SVG document (no network, no image files)."""
    import segno  # here: imported only when a QR code is drawn (start-up time)

    return str(segno.make(uri, error="m").svg_inline(scale=4))


def step_of(now_ms: int) -> int:
    return now_ms // 1000 // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    """The code of ``step`` (for tests and for the check below)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(step * STEP_SECONDS)


def looks_like_code(text: str) -> bool:
    return _CODE.fullmatch(text) is not None


def match_step(secret: str, code: str, now_ms: int) -> int | None:
    """The step (current, previous or next) whose code is ``code``, or ``None``.

    Compares in constant time per candidate; the caller enforces single use.
    """
    if not looks_like_code(code):
        return None
    now_step = step_of(now_ms)
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten fresh codes like ``k7qm-2xpa-9dht-wn4c`` (80 bits each), shown once."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def normalise_recovery_code(text: str) -> str | None:
    """Lower case without dashes or spaces, or ``None`` if it cannot be a recovery code."""
    cleaned = text.strip().lower().replace(" ", "")
    if not _RECOVERY.fullmatch(cleaned):
        return None
    return cleaned.replace("-", "")


def recovery_code_hash(normalised: str) -> str:
    """What is stored: hex SHA-256 of the normalised code."""
    return hashlib.sha256(b"tradewind/recovery-code/v1:" + normalised.encode()).hexdigest()
