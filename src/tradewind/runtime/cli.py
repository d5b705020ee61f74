"""The ``tradewind`` command line. Each subcommand imports its module lazily so that
``tradewind --help`` stays fast and a broken optional part cannot break the rest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tradewind.runtime.config import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tradewind exchange.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks.")
app.add_typer(bench_app, name="bench")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")

HostOpt = Annotated[str | None, typer.Option("--host", help="Address to listen on.")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port to listen on.")]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (journal, SQLite, keys).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML config file (TRADEWIND_* override it).")
]


def _settings(config: Path | None, **overrides: object) -> Settings:
    """Load the settings, or exit 2 with the reason (no traceback)."""
    from tradewind.runtime.config import ConfigError, load_settings

    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _run(settings: Settings) -> None:
    from tradewind.runtime.logging import configure_logging
    from tradewind.runtime.server import run_server

    configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(run_server(settings))


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the exchange (embedded mode: one process, SQLite and journal in the data dir)."""
    _run(_settings(config, host=host, port=port, data_dir=data_dir))


@app.command()
def demo(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    no_bot: Annotated[bool, typer.Option("--no-bot", help="Do not run the market maker.")] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the market maker's random walk.")
    ] = None,
) -> None:
    """Run the exchange in demo mode: BTC-USDT, ETH-USDT, ETH-BTC, a market maker, a faucet."""
    _run(
        _settings(
            config,
            host=host,
            port=port,
            data_dir=data_dir,
            demo=True,
            demo_bot=False if no_bot else None,
            bot_seed=seed,
        )
    )


def _run_with(runner_name: str, settings: Settings) -> None:
    from tradewind.runtime import server
    from tradewind.runtime.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(getattr(server, runner_name)(settings))


@app.command()
def core(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """Distributed mode: run the trading core (journal in the data dir, bus, Redis).

    A second ``tradewind core`` on the same data dir stands by and takes over when the
    active one stops renewing its lease (docs/distributed.md#hot-standby)."""
    from tradewind.runtime import standby
    from tradewind.runtime.logging import configure_logging

    settings = _settings(config, data_dir=data_dir)
    configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(standby.run_core(settings))


@app.command()
def api(
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Distributed mode: run one API replica (REST + WebSocket); run several on other ports."""
    _run_with("run_api", _settings(config, host=host, port=port, data_dir=data_dir))


@app.command()
def marketmaker(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """Distributed mode: run the demo market maker (one per deployment; a second one
    stands by)."""
    from tradewind.runtime.logging import configure_logging
    from tradewind.runtime.marketmaker_process import run_marketmaker

    settings = _settings(config, data_dir=data_dir)
    configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(run_marketmaker(settings))


@app.command()
def watcher(
    network: Annotated[
        str, typer.Option("--network", help="Network name: ethereum, bsc or bitcoin.")
    ],
    rpc_url: Annotated[
        str | None,
        typer.Option(
            "--rpc-url", help="The node's JSON-RPC URL (bitcoin: default bitcoin_rpc_url)."
        ),
    ] = None,
    start_height: Annotated[
        int, typer.Option("--start-height", min=0, help="First block when nothing is stored.")
    ] = 0,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between polls.")] = 2.0,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Distributed mode: run the chain watcher of one network (credits deposits
    after their confirmations; one per network, a second one stands by)."""
    from tradewind.runtime.logging import configure_logging
    from tradewind.runtime.watcher import run_watcher

    settings = _settings(config, data_dir=data_dir)
    configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(
        run_watcher(settings, network, rpc_url, start_height=start_height, poll_s=poll)
    )


@app.command()
def signer(
    host: HostOpt = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535)] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the withdrawal signer: hot-wallet keys in the PKCS#11 token ([funding.signer]),
    HMAC-authenticated requests from the payout processor, on loopback."""
    from tradewind.runtime.config import ConfigError
    from tradewind.runtime.logging import configure_logging
    from tradewind.runtime.signer import run_signer

    settings = _settings(config, data_dir=data_dir)
    configure_logging(settings.log_level, settings.log_format)
    try:
        code = run_signer(settings, host=host, port=port)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command("signer-deposit-key")
def signer_deposit_key(
    network: Annotated[str, typer.Option("--network", help="a network of [funding.sweeps]")],
    generate: Annotated[
        bool, typer.Option("--generate", help="make a new account key in the signer")
    ] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Seal a network's deposit account key (the xprv of its xpub, read from stdin) in
    the signer's PKCS#11 token, for sweeps (ADR 0028); --generate makes a new one and
    prints the xpub to configure."""
    import sys

    from tradewind.runtime.config import ConfigError
    from tradewind.runtime.sweeps import store_deposit_key

    settings = _settings(config, data_dir=data_dir)
    xprv = None if generate else sys.stdin.readline().strip()
    if not generate and not xprv:
        typer.echo("error: give the account xprv on stdin, or --generate", err=True)
        raise typer.Exit(2)
    try:
        xpub = store_deposit_key(settings, network, xprv)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"deposit key sealed for {network}; its account xpub: {xpub}")


@app.command()
def withdrawals(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """Distributed mode: run the withdrawal payout processor (signing, broadcast,
    confirmation; one per deployment, a second one stands by)."""
    from tradewind.runtime.logging import configure_logging
    from tradewind.runtime.withdrawals import run_withdrawals

    settings = _settings(config, data_dir=data_dir)
    configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(run_withdrawals(settings))


@app.command()
def projector(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """Distributed mode: run the projector (event stream into PostgreSQL). With Redis,
    a second one stands by."""
    from tradewind.runtime import standby
    from tradewind.runtime.logging import configure_logging

    settings = _settings(config, data_dir=data_dir)
    configure_logging(settings.log_level, settings.log_format)
    raise typer.Exit(standby.run_projector(settings))


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """Apply the database migrations (the embedded start-up does this by itself)."""
    from sqlalchemy.engine import make_url

    from tradewind.adapters.sql.migrate import head_revision, upgrade

    settings = _settings(config, data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    upgrade(url)
    shown = make_url(url).render_as_string(hide_password=True)
    typer.echo(f"database {shown} is at revision {head_revision()}")


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="Command file (JSON lines).")],
    json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Apply a command file to a fresh core and print a summary."""
    from tradewind.runtime.replay import run_replay

    raise typer.Exit(run_replay(file, as_json=json))


@bench_app.command("engine")
def bench_engine(
    input: Annotated[
        Path | None, typer.Option("--input", help="Command file to measure instead.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure the core alone (parsing excluded)."""
    from tradewind.runtime.benchmark import run_engine_bench

    raise typer.Exit(run_engine_bench(input, as_json=json))


@app.command()
def verify(
    data_dir: Annotated[
        Path | None, typer.Argument(help="Data directory of the exchange.", show_default=False)
    ] = None,
    data_dir_opt: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Load snapshot + journal, check every invariant and print the state hash."""
    from tradewind.runtime.verify import run_verify

    chosen = data_dir or data_dir_opt
    if chosen is None:
        chosen = _settings(config).data_dir
    raise typer.Exit(run_verify(chosen))


@app.command()
def reconcile(
    rpc: Annotated[
        list[str] | None,
        typer.Option(
            "--rpc", help="NETWORK=URL: read custody balances of that EVM network's node."
        ),
    ] = None,
    address: Annotated[
        list[str] | None,
        typer.Option(
            "--address", help="NETWORK=ADDRESS: a hot or cold wallet to count as custody."
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    bank: Annotated[
        bool | None,
        typer.Option(
            "--bank/--no-bank",
            help="Compare the bank statements' closing balances (default: when [fiat] is set).",
        ),
    ] = None,
    alert: Annotated[
        bool,
        typer.Option("--alert", help="Store each critical finding as a back-office alert."),
    ] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Compare the core with the SQL ledger at one seq, with custody balances on chain
    and with the bank's statements; exit 1 naming each difference with its numbers."""
    import asyncio

    from tradewind.runtime.reconcile import run_reconcile

    settings = _settings(config, data_dir=data_dir)
    code, text = asyncio.run(
        run_reconcile(
            settings,
            as_json=json,
            rpc=rpc or (),
            addresses=address or (),
            bank=bank,
            alert=alert,
        )
    )
    typer.echo(text)
    raise typer.Exit(code)


admin_app = typer.Typer(no_args_is_help=True, help="Back office: staff accounts.")
app.add_typer(admin_app, name="admin")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
app.add_typer(audit_app, name="audit")


@admin_app.command("create-user")
def admin_create_user(
    email: Annotated[str, typer.Option("--email", help="The staff member's email.")],
    role: Annotated[
        str, typer.Option("--role", help="user, support, compliance or admin.")
    ] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a user with a role (the first admin), or set the role of an existing one."""
    import asyncio
    import sys

    from tradewind.runtime.admin_cli import CliError, create_user

    settings = _settings(config, data_dir=data_dir)
    if password_stdin:
        password: str | None = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = None
    try:
        typer.echo(asyncio.run(create_user(settings, email, password, role)))
    except CliError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head", help="A head printed earlier (SEQ:HASH) that must still be there."
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Recompute the audit log's hash chain; exit 1 naming the first bad entry."""
    import asyncio

    from tradewind.runtime.admin_cli import verify_audit

    code, text = asyncio.run(verify_audit(_settings(config, data_dir=data_dir), expect_head, json))
    typer.echo(text)
    raise typer.Exit(code)


fiat_app = typer.Typer(no_args_is_help=True, help="Fiat rails: bank statements and payments.")
app.add_typer(fiat_app, name="fiat")


@fiat_app.command("import-camt")
def fiat_import_camt(
    file: Annotated[Path, typer.Argument(help="A camt.053 statement (XML).")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Store a camt.053 statement's credits (matched or for review; once per entry); the
    running exchange credits the matched ones."""
    import asyncio

    from tradewind.runtime.fiat_cli import FiatCliError, import_camt

    try:
        typer.echo(asyncio.run(import_camt(_settings(config, data_dir=data_dir), file)))
    except FiatCliError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@fiat_app.command("pain001")
def fiat_pain001(
    input: Annotated[Path, typer.Option("--input", help="Approved payouts (JSON).")],
    output: Annotated[Path, typer.Option("--output", help="The pain.001 file to write.")],
    execution_date: Annotated[
        str | None, typer.Option("--execution-date", help="YYYY-MM-DD (default: today).")
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write a pain.001.001.03 payment file (IBANs checked) from approved payouts."""
    from tradewind.runtime.fiat_cli import FiatCliError, write_payment_file

    try:
        settings = _settings(config, data_dir=data_dir)
        typer.echo(write_payment_file(settings, input, output, execution_date=execution_date))
    except FiatCliError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@fiat_app.command("payouts")
def fiat_payouts(
    output: Annotated[Path, typer.Option("--output", help="The pain.001 file to write.")],
    execution_date: Annotated[
        str | None, typer.Option("--execution-date", help="YYYY-MM-DD (default: today).")
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the payment file of the approved fiat withdrawals (each in one file, once)."""
    import asyncio

    from tradewind.runtime.fiat_cli import FiatCliError, write_fiat_payouts

    try:
        settings = _settings(config, data_dir=data_dir)
        typer.echo(asyncio.run(write_fiat_payouts(settings, output, execution_date=execution_date)))
    except FiatCliError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@fiat_app.command("confirm")
def fiat_confirm(
    ids: Annotated[list[int], typer.Argument(help="Withdrawal ids the bank paid.")],
    note: Annotated[str | None, typer.Option("--note", help="e.g. the bank's reference.")] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Mark sent fiat withdrawals paid; the running exchange settles them in the core."""
    import asyncio

    from tradewind.runtime.fiat_cli import FiatCliError, answer_fiat_withdrawals

    try:
        settings = _settings(config, data_dir=data_dir)
        typer.echo(asyncio.run(answer_fiat_withdrawals(settings, ids, paid=True, reason=note)))
    except FiatCliError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@fiat_app.command("returned")
def fiat_returned(
    ids: Annotated[list[int], typer.Argument(help="Withdrawal ids the bank returned.")],
    reason: Annotated[str, typer.Option("--reason", help="e.g. AC04 account closed.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Mark sent fiat withdrawals returned; the running exchange releases their funds."""
    import asyncio

    from tradewind.runtime.fiat_cli import FiatCliError, answer_fiat_withdrawals

    try:
        settings = _settings(config, data_dir=data_dir)
        typer.echo(asyncio.run(answer_fiat_withdrawals(settings, ids, paid=False, reason=reason)))
    except FiatCliError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@fiat_app.command("returns")
def fiat_returns(
    output: Annotated[Path, typer.Option("--output", help="The pain.001 file to write.")],
    execution_date: Annotated[
        str | None, typer.Option("--execution-date", help="YYYY-MM-DD (default: today).")
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write the payment file that sends returned bank transfers back (once each)."""
    import asyncio

    from tradewind.runtime.fiat_cli import FiatCliError, write_returns

    try:
        settings = _settings(config, data_dir=data_dir)
        typer.echo(asyncio.run(write_returns(settings, output, execution_date=execution_date)))
    except FiatCliError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def main() -> None:
    app()
