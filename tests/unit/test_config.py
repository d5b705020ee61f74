"""Settings: CLI > environment > file > defaults, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradewind.runtime.config import ConfigError, Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tradewind.toml"
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(None, environ={})
    assert (s.host, s.port, s.demo, s.snapshot_every) == ("127.0.0.1", 8000, False, 100_000)
    assert s.database_url == f"sqlite+aiosqlite:///{Path('data').resolve() / 'tradewind.db'}"


def test_precedence_cli_over_env_over_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'port = 7000\nhost = "0.0.0.0"\ndata_dir = "/srv/tw"\ndemo = true\n')
    s = load_settings(cfg, environ={})
    assert (s.port, s.host, s.data_dir, s.demo) == (7000, "0.0.0.0", Path("/srv/tw"), True)
    assert s.database_url == "sqlite+aiosqlite:////srv/tw/tradewind.db"
    assert s.url == "http://127.0.0.1:7000"
    env = {"TRADEWIND_PORT": "7100", "TRADEWIND_DEMO": "no"}
    s = load_settings(cfg, environ=env)
    assert (s.port, s.demo, s.host) == (7100, False, "0.0.0.0")
    s = load_settings(cfg, environ=env, overrides={"port": 7200, "host": None})
    assert (s.port, s.host) == (7200, "0.0.0.0")


def test_config_file_from_environment_and_section(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[tradewind]\nport = 7300\n")
    s = load_settings(None, environ={"TRADEWIND_CONFIG": str(cfg)})
    assert s.port == 7300


def test_explicit_database_url_is_kept(tmp_path: Path) -> None:
    env = {"TRADEWIND_DATABASE_URL": "postgresql://u@h/db", "TRADEWIND_DATA_DIR": "/x"}
    assert load_settings(None, environ=env).database_url == "postgresql://u@h/db"


def test_database_pool_size_sizes_each_postgresql_engine() -> None:
    from tradewind.adapters.sql.engine import Database

    assert load_settings(None, environ={}).database_pool_size == 16
    s = load_settings(None, environ={"TRADEWIND_DATABASE_POOL_SIZE": "4"})
    assert s.database_pool_size == 4
    pool = Database.from_url("postgresql://u@h/db", pool_size=s.database_pool_size).engine.pool
    assert (pool.size(), pool._max_overflow) == (4, 4)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRADEWIND_PORT": "eighty"}, "TRADEWIND_PORT (environment): expected an integer"),
        ({"TRADEWIND_PORT": "70000"}, "between 0 and 65535"),
        ({"TRADEWIND_DEMO": "maybe"}, "TRADEWIND_DEMO (environment): expected a boolean"),
        ({"TRADEWIND_DATABASE_URL": "mysql://x"}, "sqlite:/// or postgresql://"),
        ({"TRADEWIND_LOG_FORMAT": "xml"}, "must be one of json, console"),
        ({"TRADEWIND_SNAPSHOT_EVERY": "0"}, "between 1 and"),
        ({"TRADEWIND_DATABASE_POOL_SIZE": "0"}, "between 1 and 1000"),
    ],
)
def test_invalid_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(None, environ=env)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "port = = 1"), environ={})
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings(write(tmp_path, "prot = 1"), environ={})
    with pytest.raises(ConfigError, match=r"port \(config file"):
        load_settings(write(tmp_path, 'port = "x"'), environ={})


def test_secret_key_is_never_shown() -> None:
    s = load_settings(None, environ={"TRADEWIND_SECRET_KEY": "00" * 32})
    assert "00" * 32 not in repr(s)
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={}, overrides={"secret_key": 123})
    assert "123" not in str(info.value)


def test_settings_are_immutable() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


def test_distributed_settings() -> None:
    s = load_settings(None, environ={})
    assert (s.amqp_prefix, s.redis_prefix) == ("tradewind", "tw")
    assert (s.core_heartbeat_ms, s.core_liveness_ms) == (500, 2000)
    s = load_settings(
        None,
        environ={
            "TRADEWIND_AMQP_PREFIX": "ex-1.a",
            "TRADEWIND_REDIS_PREFIX": "ex1",
            "TRADEWIND_CORE_HEARTBEAT_MS": "100",
            "TRADEWIND_CORE_LIVENESS_MS": "600",
        },
    )
    assert (s.amqp_prefix, s.redis_prefix, s.core_liveness_ms) == ("ex-1.a", "ex1", 600)
    with pytest.raises(ConfigError, match="TRADEWIND_AMQP_PREFIX"):
        load_settings(None, environ={"TRADEWIND_AMQP_PREFIX": "a b"})
    with pytest.raises(ConfigError, match="TRADEWIND_REDIS_PREFIX"):
        load_settings(None, environ={"TRADEWIND_REDIS_PREFIX": "tw:x"})
    with pytest.raises(ConfigError, match="core_liveness_ms"):
        load_settings(None, environ={"TRADEWIND_CORE_LIVENESS_MS": "400"})


def test_distributed_processes_name_what_they_miss(tmp_path: Path) -> None:
    from tradewind.runtime.bootstrap import ApiReplica, CoreProcess, ProjectorProcess

    s = load_settings(None, environ={"TRADEWIND_DATA_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="amqp_url is required"):
        CoreProcess(s)
    with pytest.raises(ConfigError, match="amqp_url is required"):
        ProjectorProcess(s)
    s = load_settings(
        None,
        environ={
            "TRADEWIND_DATA_DIR": str(tmp_path),
            "TRADEWIND_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
            "TRADEWIND_REDIS_URL": "redis://127.0.0.1:6379/0",
        },
    )
    with pytest.raises(ConfigError, match="secret_key is required"):
        ApiReplica(s)
