"""Settings of a Tradewind process, from a TOML file, ``TRADEWIND_*`` variables and the CLI.

Invariants:
- :class:`Settings` is immutable; every process builds exactly one with
  :func:`load_settings` and passes it down (nothing else reads ``TRADEWIND_*``);
- precedence, highest first: command-line options > environment > config file >
  defaults, applied per setting;
- every value is checked when loaded: an unknown key in the file, a malformed number or
  boolean, a port out of range, an unsupported database URL... raises
  :class:`ConfigError` naming the setting and where the bad value came from, never a
  traceback from deep inside start-up;
- ``database_url`` defaults to ``sqlite+aiosqlite:///<data_dir>/tradewind.db``, so it
  follows ``data_dir`` unless set explicitly;
- the secret key is never part of ``repr`` (it is only handed to the secret box).

The file is flat TOML whose keys are the setting names (``data_dir``, ``port``, ...);
a ``[tradewind]`` table with the same keys is accepted too. The variable of a setting is
``TRADEWIND_`` + its name in upper case (``TRADEWIND_DATA_DIR``, ``TRADEWIND_PORT``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "TRADEWIND_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "console")


class ConfigError(ValueError):
    """A setting is malformed; the message names the setting and its source."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a process needs to know to wire itself. Build it with :func:`load_settings`."""

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = ""
    """Empty means the SQLite file in ``data_dir`` (filled in by :func:`load_settings`)."""
    database_pool_size: int = 16
    """PostgreSQL: connections each process keeps open (plus as many again, closed after
    use, under bursts); size ``max_connections`` for every process's twice this."""
    redis_url: str | None = None
    amqp_url: str | None = None
    smtp_url: str | None = field(default=None, repr=False)
    """Where emails go (``smtp://``, ``smtp+starttls://``, ``smtps://``); unset: they stay
    in the database outbox (shown at ``/dev/mail`` in demo mode)."""
    secret_key: str | None = field(default=None, repr=False)
    """Master key(s) for API-key secrets; unset: ``data_dir/secret.key`` (ADR 0005)."""
    demo: bool = False
    """Demo mode: seeds the demo markets and enables the faucet."""
    demo_bot: bool = True
    """In demo mode, run the market-maker bot."""
    bot_seed: int | None = None
    """Seed of the bot's random walk; unset: a random seed."""
    snapshot_every: int = 100_000
    log_level: str = "info"
    log_format: str = "json"
    max_body_bytes: int = 65_536
    rate_limits: str = ""
    """Token buckets: empty for the defaults, ``off``, or ``scope=LIMIT/WINDOW,...``
    overriding some (scopes ip, user, key, auth, orders; docs/security.md)."""
    cors_origins: str = ""
    """Comma-separated origins allowed to call the API from a browser; empty: none."""
    hsts: bool = False
    """Send HSTS on every response (TLS is terminated by a proxy in front)."""
    kyc_webhook_secrets: str | None = field(default=None, repr=False)
    """``provider=secret,...``: KYC providers whose signed callbacks are accepted."""
    core_timeout_ms: int = 10_000
    """How long a request waits for the core before answering 504."""
    faucet_max: int = 100_000
    """Largest faucet amount per request, in whole units of any asset."""
    amqp_prefix: str = "tradewind"
    """Distributed mode: prefix of every RabbitMQ exchange and queue name."""
    redis_prefix: str = "tw"
    """Distributed mode: prefix of every Redis key."""
    core_heartbeat_ms: int = 500
    """Distributed mode: how often the core announces itself (and its seq) on the bus."""
    core_liveness_ms: int = 2_000
    """Distributed mode: an API replica answers 503 at once when the core has not been
    heard for this long."""
    core_lease_ms: int = 3_000
    """Distributed mode: the active core's lease in Redis (ADR 0010); a standby core takes
    over this long after the active one stopped renewing it."""
    funding: Mapping[str, object] | None = field(default=None, repr=False)
    """The config file's ``[funding]`` table: networks, their assets and rules, and the
    extended public keys deposit addresses come from (docs/funding.md); unset: the test
    networks in demo mode, none otherwise."""
    fiat: Mapping[str, object] | None = field(default=None, repr=False)
    """The config file's ``[fiat]`` table: fiat currencies, the bank account shown in
    deposit instructions, the card processor's keys (docs/fiat.md); unset: EUR on a
    made-up account in demo mode, no fiat rails otherwise."""
    margin: Mapping[str, object] | None = None
    """The config file's ``[margin]`` table: ``mark_interval_ms``, ``feed_timeout_ms`` and
    ``feeds`` (symbol -> ``["static:<price>" | URL[#field], ...]``) of the mark-price
    feeder (docs/margin.md "Using margin"); unset: marks from the book's mid only."""
    bitcoin_rpc_url: str | None = field(default=None, repr=False)
    """``tradewind watcher --network bitcoin``: bitcoind's JSON-RPC URL
    (``http://host:8332``; ``--rpc-url`` wins over it). Hidden: it may carry user:password."""
    bitcoin_rpc_user: str | None = None
    bitcoin_rpc_password: str | None = field(default=None, repr=False)
    bitcoin_rpc_cookie_file: Path | None = None
    """bitcoind's ``.cookie`` (instead of a user and password); read again after a 401,
    since bitcoind writes a new one at each start."""

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url(self.data_dir)

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def default_database_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir.resolve() / 'tradewind.db'}"


# -- parsing of single values ---------------------------------------------------------


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected a boolean (true/false, 1/0, yes/no, on/off)")


def _as_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if text.lstrip("-").isdigit():
            return int(text)
    raise ValueError("expected an integer")


def _as_str(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    raise ValueError("expected a string")


def _as_opt_str(value: object) -> str | None:
    text = _as_str(value)
    return text or None


def _as_opt_int(value: object) -> int | None:
    if isinstance(value, str) and not value.strip():
        return None
    return _as_int(value)


def _as_path(value: object) -> Path:
    if isinstance(value, Path):
        return value
    text = _as_str(value)
    if not text:
        raise ValueError("expected a non-empty path")
    return Path(text).expanduser()


def _ranged(parse: Callable[[object], int], lo: int, hi: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        number = parse(value)
        if not lo <= number <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return number

    return check


def _choice(*options: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _as_str(value).lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return check


def _name_prefix(value: object) -> str:
    text = _as_str(value)
    if not text or len(text) > 64 or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError("must be 1-64 letters, digits, '-', '_' or '.'")
    return text


def _database_url(value: object) -> str:
    text = _as_str(value)
    if not text:
        return ""
    scheme = text.split(":", 1)[0].split("+", 1)[0].lower()
    if "://" not in text or scheme not in ("sqlite", "postgresql", "postgres"):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return text


def _rate_limits(value: object) -> str:
    from tradewind.services.ratelimit import parse_rules

    text = _as_str(value)
    parse_rules(text)  # raises ValueError naming the bad part
    return text


def _origins(value: object) -> str:
    text = _as_str(value)
    for origin in filter(None, (part.strip() for part in text.split(","))):
        scheme, sep, rest = origin.partition("://")
        if origin == "*" or scheme not in ("http", "https") or not sep or not rest:
            raise ValueError(f"{origin!r} is not an origin such as https://app.example.com")
        if "/" in rest:
            raise ValueError(f"{origin!r}: an origin has no path")
    return text


def _webhook_secrets(value: object) -> str | None:
    text = _as_opt_str(value)
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, secret = part.partition("=")
        name = name.strip()
        if not sep or not name or not all(c.isalnum() or c in "-_" for c in name):
            raise ValueError("expected provider=secret,... (provider: letters, digits, - or _)")
        if len(secret.strip()) < 16:
            raise ValueError(f"the secret of {name!r} is shorter than 16 characters")
    return text


def _rpc_url(value: object) -> str | None:
    text = _as_opt_str(value)
    if text is not None and not text.lower().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return text


def _as_opt_path(value: object) -> Path | None:
    if isinstance(value, str) and not value.strip():
        return None
    return _as_path(value)


def _funding(value: object) -> Mapping[str, object]:
    from tradewind.services.funding.derivation import AddressDeriver, DerivationError
    from tradewind.services.funding.networks import parse_networks
    from tradewind.services.funding.withdrawal_config import (
        parse_signer_settings,
        parse_withdrawal_policy,
    )

    if not isinstance(value, Mapping):
        raise ValueError("set it as a [funding.networks.NAME] table in the config file")
    catalog = parse_networks(value)  # NetworkConfigError (a ValueError) names the entry
    parse_withdrawal_policy(value)  # [funding.withdrawals] and [funding.aml]
    parse_signer_settings(value)  # [funding.signer]
    from tradewind.services.funding.sweep_config import parse_sweep_settings

    parse_sweep_settings(value, catalog)  # [funding.sweeps]
    from tradewind.services.funding.watch_config import parse_watch_settings

    parse_watch_settings(value, catalog)  # [funding.watch]
    for network in catalog.networks:
        if network.xpub is not None:
            try:
                AddressDeriver(network)
            except DerivationError as exc:
                raise ValueError(str(exc)) from None
    return value


def _margin(value: object) -> Mapping[str, object]:
    from tradewind.services.margin_feed import parse_margin_config

    if not isinstance(value, Mapping):
        raise ValueError("set it as a [margin] table in the config file")
    parse_margin_config(value)  # MarginFeedError (a ValueError) names the key
    return value


def _fiat(value: object) -> Mapping[str, object]:
    from tradewind.services.fiat.config import parse_fiat

    if not isinstance(value, Mapping):
        raise ValueError("set it as a [fiat] table in the config file")
    parse_fiat(value)  # FiatConfigError (a ValueError) names the key, never a secret
    return value


_PARSERS: dict[str, Callable[[object], Any]] = {
    "data_dir": _as_path,
    "host": _as_str,
    "port": _ranged(_as_int, 0, 65_535),
    "database_url": _database_url,
    "redis_url": _as_opt_str,
    "amqp_url": _as_opt_str,
    "smtp_url": _as_opt_str,
    "secret_key": _as_opt_str,
    "demo": _as_bool,
    "demo_bot": _as_bool,
    "bot_seed": _as_opt_int,
    "snapshot_every": _ranged(_as_int, 1, 10**12),
    "log_level": _choice(*LOG_LEVELS),
    "log_format": _choice(*LOG_FORMATS),
    "max_body_bytes": _ranged(_as_int, 1_024, 64 * 1024 * 1024),
    "rate_limits": _rate_limits,
    "cors_origins": _origins,
    "hsts": _as_bool,
    "kyc_webhook_secrets": _webhook_secrets,
    "core_timeout_ms": _ranged(_as_int, 1, 600_000),
    "database_pool_size": _ranged(_as_int, 1, 1_000),
    "faucet_max": _ranged(_as_int, 1, 10**9),
    "amqp_prefix": _name_prefix,
    "redis_prefix": _name_prefix,
    "core_heartbeat_ms": _ranged(_as_int, 10, 60_000),
    "core_liveness_ms": _ranged(_as_int, 50, 600_000),
    "core_lease_ms": _ranged(_as_int, 100, 600_000),
    "funding": _funding,
    "fiat": _fiat,
    "margin": _margin,
    "bitcoin_rpc_url": _rpc_url,
    "bitcoin_rpc_user": _as_opt_str,
    "bitcoin_rpc_password": _as_opt_str,
    "bitcoin_rpc_cookie_file": _as_opt_path,
}
assert set(_PARSERS) == {f.name for f in dataclasses.fields(Settings)}


def _read_file(path: Path) -> dict[str, object]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.pop("tradewind", None)
    if section is not None:
        if not isinstance(section, dict):
            raise ConfigError(f"config file {path}: [tradewind] must be a table")
        overlap = set(section) & set(data)
        if overlap:
            raise ConfigError(f"config file {path}: {sorted(overlap)[0]!r} is set twice")
        data.update(section)
    unknown = sorted(set(data) - set(_PARSERS))
    if unknown:
        known = ", ".join(sorted(_PARSERS))
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r} (known: {known})")
    return data


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Build the settings: ``overrides`` (from the CLI; ``None`` values are ignored) over
    ``TRADEWIND_*`` variables over the file over the defaults.

    ``TRADEWIND_CONFIG`` names the file when ``config_file`` is not given.
    """
    env = os.environ if environ is None else environ
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(_PARSERS))
    if unknown:
        raise TypeError(f"unknown setting {unknown[0]!r}")
    if config_file is None and env.get(ENV_PREFIX + "CONFIG", "").strip():
        config_file = Path(env[ENV_PREFIX + "CONFIG"].strip()).expanduser()

    values: dict[str, Any] = {}
    sources: list[tuple[str, Mapping[str, object]]] = []
    if config_file is not None:
        sources.append((f"config file {config_file}", _read_file(config_file)))
    sources.append(
        (
            "environment",
            {
                name: env[ENV_PREFIX + name.upper()]
                for name in _PARSERS
                if ENV_PREFIX + name.upper() in env
            },
        )
    )
    sources.append(
        ("command line", {name: value for name, value in overrides.items() if value is not None})
    )
    for where, mapping in sources:
        for name, raw in mapping.items():
            label = ENV_PREFIX + name.upper() if where == "environment" else name
            try:
                values[name] = _PARSERS[name](raw)
            except ValueError as exc:
                hidden = (
                    "secret_key",
                    "kyc_webhook_secrets",
                    "smtp_url",
                    "funding",
                    "bitcoin_rpc_url",
                    "bitcoin_rpc_password",
                    "fiat",
                )
                shown = "(hidden)" if name in hidden else repr(raw)
                raise ConfigError(f"{label} ({where}): {exc}; got {shown}") from None
    settings = Settings(**values)
    if settings.core_liveness_ms <= settings.core_heartbeat_ms:
        raise ConfigError(
            f"core_liveness_ms ({settings.core_liveness_ms}) must be longer than "
            f"core_heartbeat_ms ({settings.core_heartbeat_ms})"
        )
    if not settings.database_url:
        settings = dataclasses.replace(
            settings, database_url=default_database_url(settings.data_dir)
        )
    return settings
