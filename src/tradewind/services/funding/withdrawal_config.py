"""The withdrawal settings: ``[funding.withdrawals]``, ``[funding.aml]`` and
``[funding.signer]`` of the config file (docs/funding.md has the full list).

Invariants:
- unknown keys are refused, naming the entry, like the networks' tables;
- the signer's shared secret is at least 32 characters and the PIN is never logged;
  both may come from the environment (``TRADEWIND_SIGNER_SECRET``,
  ``TRADEWIND_SIGNER_PIN``) instead of the file;
- without a ``[funding.withdrawals]`` table the defaults apply: 24 h cooling-off, 2FA
  required, no payouts (no signer URL, no node): requests are accepted and wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tradewind.services.funding.networks import NETWORK_KINDS, NetworkConfigError

SECRET_MIN = 32


@dataclass(frozen=True, slots=True)
class WithdrawalPolicy:
    cooling_off_ms: int = 24 * 3_600_000
    """A new address book entry can be used this long after it was added."""
    require_2fa: bool = True
    """Withdrawals need 2FA turned on (``two_factor_required`` otherwise)."""
    signer_url: str | None = None
    """Where the signer listens (``http://127.0.0.1:8620``); unset: no payouts here."""
    signer_secret: str | None = field(default=None, repr=False)
    rpc: Mapping[str, str] = field(default_factory=dict)
    """Network name -> JSON-RPC URL of a node the payouts are broadcast through."""
    poll_s: float = 2.0
    bitcoin_fee_fallback: int = 10
    """Sat/vB a Bitcoin payout pays when the node has no ``estimatesmartfee`` answer."""
    bitcoin_fee_target: int = 6
    """Blocks: the confirmation target asked of ``estimatesmartfee``."""
    blocked_addresses: frozenset[str] = frozenset()
    """AML blocklist, compared case-insensitively (``[funding.aml] blocked_addresses``)."""


@dataclass(frozen=True, slots=True)
class SignerSettings:
    library: str = "/usr/lib/softhsm/libsofthsm2.so"
    token_label: str = "tradewind-hot"
    pin: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8620
    keys: Mapping[str, str] = field(default_factory=dict)
    """Network name -> label of the hot-wallet key in the token."""
    bitcoin_max_fee_rate: int = 500
    """Sat/vB: the signer refuses Bitcoin payouts paying a higher fee rate."""


def _table(value: object, where: str, keys: frozenset[str]) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise NetworkConfigError(f"{where}: must be a table")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise NetworkConfigError(f"{where}: unknown key {unknown[0]!r}")
    return value


def _secret(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value.strip()) < SECRET_MIN:
        raise NetworkConfigError(f"{where}: a secret of at least {SECRET_MIN} characters")
    return value.strip()


def _networks_map(value: object, where: str) -> dict[str, str]:
    table = _table(value, where, frozenset(NETWORK_KINDS))
    out: dict[str, str] = {}
    for name, text in table.items():
        if not isinstance(text, str) or not text:
            raise NetworkConfigError(f"{where}.{name}: expected a non-empty string")
        out[str(name)] = text
    return out


_WITHDRAWAL_KEYS = frozenset(
    {
        "cooling_off_hours",
        "require_2fa",
        "signer_url",
        "signer_secret",
        "rpc",
        "poll_s",
        "bitcoin_fee_fallback",
        "bitcoin_fee_target",
    }
)
_SIGNER_KEYS = frozenset(
    {"library", "token_label", "pin", "secret", "host", "port", "keys", "bitcoin_max_fee_rate"}
)


def _int_in(
    table: Mapping[str, object], key: str, default: int, low: int, high: int, where: str
) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NetworkConfigError(f"{where}.{key}: an integer from {low} to {high}")
    return value


def parse_withdrawal_policy(
    funding: Mapping[str, object] | None, environ: Mapping[str, str] | None = None
) -> WithdrawalPolicy:
    funding = funding or {}
    env = environ or {}
    w = _table(funding.get("withdrawals"), "funding.withdrawals", _WITHDRAWAL_KEYS)
    aml = _table(funding.get("aml"), "funding.aml", frozenset({"blocked_addresses"}))
    hours = w.get("cooling_off_hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= 8760:
        raise NetworkConfigError("funding.withdrawals.cooling_off_hours: a number from 0 to 8760")
    require_2fa = w.get("require_2fa", True)
    if not isinstance(require_2fa, bool):
        raise NetworkConfigError("funding.withdrawals.require_2fa: true or false")
    url = w.get("signer_url")
    if url is not None and (not isinstance(url, str) or not url.startswith("http")):
        raise NetworkConfigError("funding.withdrawals.signer_url: an http(s) URL")
    poll = w.get("poll_s", 2.0)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0.05 <= poll <= 600:
        raise NetworkConfigError("funding.withdrawals.poll_s: seconds from 0.05 to 600")
    blocked = aml.get("blocked_addresses", [])
    if not isinstance(blocked, list) or not all(isinstance(a, str) for a in blocked):
        raise NetworkConfigError("funding.aml.blocked_addresses: a list of addresses")
    secret = _secret(
        w.get("signer_secret", env.get("TRADEWIND_SIGNER_SECRET")),
        "funding.withdrawals.signer_secret",
    )
    if url is not None and secret is None:
        raise NetworkConfigError(
            "funding.withdrawals.signer_secret: needed with signer_url (or TRADEWIND_SIGNER_SECRET)"
        )
    return WithdrawalPolicy(
        cooling_off_ms=int(hours * 3_600_000),
        require_2fa=require_2fa,
        signer_url=url,
        signer_secret=secret,
        rpc=_networks_map(w.get("rpc"), "funding.withdrawals.rpc"),
        poll_s=float(poll),
        bitcoin_fee_fallback=_int_in(
            w, "bitcoin_fee_fallback", 10, 1, 10_000, "funding.withdrawals"
        ),
        bitcoin_fee_target=_int_in(w, "bitcoin_fee_target", 6, 1, 1008, "funding.withdrawals"),
        blocked_addresses=frozenset(a.strip().lower() for a in blocked if a.strip()),
    )


def parse_signer_settings(
    funding: Mapping[str, object] | None, environ: Mapping[str, str] | None = None
) -> SignerSettings:
    funding = funding or {}
    env = environ or {}
    s = _table(funding.get("signer"), "funding.signer", _SIGNER_KEYS)
    port = s.get("port", 8620)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise NetworkConfigError("funding.signer.port: 0 to 65535")
    pin = s.get("pin", env.get("TRADEWIND_SIGNER_PIN"))
    if pin is not None and (not isinstance(pin, str) or not pin):
        raise NetworkConfigError("funding.signer.pin: a non-empty string")
    for key in ("library", "token_label", "host"):
        if key in s and (not isinstance(s[key], str) or not s[key]):
            raise NetworkConfigError(f"funding.signer.{key}: a non-empty string")
    defaults = SignerSettings()
    return SignerSettings(
        library=str(s.get("library", defaults.library)),
        token_label=str(s.get("token_label", defaults.token_label)),
        pin=pin,
        secret=_secret(
            s.get("secret", env.get("TRADEWIND_SIGNER_SECRET")), "funding.signer.secret"
        ),
        host=str(s.get("host", defaults.host)),
        port=port,
        keys=_networks_map(s.get("keys"), "funding.signer.keys"),
        bitcoin_max_fee_rate=_int_in(s, "bitcoin_max_fee_rate", 500, 1, 100_000, "funding.signer"),
    )
