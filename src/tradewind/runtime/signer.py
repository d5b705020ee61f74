"""``tradewind signer``: the signer service as its own process (issue 6 item 4, ADR 0022).

It holds the PKCS#11 session (``[funding.signer]``: library, token label, PIN or
``TRADEWIND_SIGNER_PIN``), creates each configured network's hot-wallet key in the token
on first start (printing its address, to be funded), reads the withdrawals table (is
this withdrawal approved and waiting for exactly this transaction?) and writes the
signature there and to the audit log. EVM networks' transactions are encoded by
``EvmTxCodec``, Bitcoin's by ``BitcoinTxCodec`` (one BIP 143 signature per input, ADR
0029). It serves HTTP on loopback only by default
(``127.0.0.1:8620``); nothing else of the exchange runs in it, and no other process
opens the token.
"""

from __future__ import annotations

import asyncio
import os

import structlog

from tradewind.runtime.config import ConfigError, Settings

log = structlog.get_logger(__name__)


def run_signer(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    import uvicorn

    from tradewind.adapters.chain.bitcoin_tx import BitcoinTxCodec
    from tradewind.adapters.chain.evm_tx import EvmTxCodec
    from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
    from tradewind.adapters.local import SystemClock
    from tradewind.adapters.sql import Database
    from tradewind.adapters.sql.audit import SqlAuditStore
    from tradewind.adapters.sql.migrate import upgrade_async
    from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
    from tradewind.gateways.signer_api import create_signer_app
    from tradewind.runtime.funding import network_catalog
    from tradewind.runtime.sweeps import build_sweep_signer
    from tradewind.services.audit import AuditLog
    from tradewind.services.funding.networks import NetworkConfigError
    from tradewind.services.funding.signer import SignerService
    from tradewind.services.funding.withdrawal_config import parse_signer_settings

    try:
        conf = parse_signer_settings(settings.funding, os.environ)
    except NetworkConfigError as exc:
        raise ConfigError(str(exc)) from None
    catalog = network_catalog(settings)
    if catalog is None or not conf.keys:
        raise ConfigError("the signer needs [funding.networks.*] and [funding.signer] keys")
    if conf.pin is None or conf.secret is None:
        raise ConfigError(
            "the signer needs a PIN and a shared secret ([funding.signer] pin and secret, "
            "or TRADEWIND_SIGNER_PIN and TRADEWIND_SIGNER_SECRET)"
        )
    bind = host or conf.host
    if bind not in ("127.0.0.1", "::1", "localhost"):
        log.warning("the signer listens beyond loopback", host=bind)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = SystemClock()
    try:
        custody = Pkcs11Custody(conf.library, conf.token_label, conf.pin)
    except Exception as exc:  # no library, no such token, wrong PIN: say which
        raise ConfigError(
            f"the PKCS#11 token {conf.token_label!r} in {conf.library} cannot be opened: "
            f"{type(exc).__name__} {exc}"
        ) from None

    async def serve() -> None:
        await upgrade_async(settings.resolved_database_url)
        db = Database.from_url(
            settings.resolved_database_url, pool_size=settings.database_pool_size
        )
        service = SignerService(
            store=SqlWithdrawalStore(db),
            custody=custody,
            codec=EvmTxCodec(),
            audit=AuditLog(SqlAuditStore(db), clock),
            catalog=catalog,
            keys=conf.keys,
            secret=conf.secret or "",
            now_ms=clock.now_ms,
            utxo_codecs={
                n.name: BitcoinTxCodec(n.chain) for n in catalog.networks if n.kind == "utxo"
            },
            max_fee_rate=conf.bitcoin_max_fee_rate,
        )
        for network, address in service.ensure_keys().items():
            print(f"hot wallet on {network}: {address}", flush=True)
        # sweeps (ADR 0028): deposit account keys sealed in the same token
        sweeps = build_sweep_signer(
            settings,
            db,
            custody,
            custody,
            audit=AuditLog(SqlAuditStore(db), clock),
            hot_keys=conf.keys,
            secret=conf.secret or "",
            now_ms=clock.now_ms,
            max_fee_rate=conf.bitcoin_max_fee_rate,
        )
        server = uvicorn.Server(
            uvicorn.Config(
                create_signer_app(service, sweeps),
                host=bind,
                port=port or conf.port,
                log_level="warning",
            )
        )
        try:
            await server.serve()
        finally:
            await db.dispose()

    try:
        asyncio.run(serve())
    finally:
        custody.close()
    return 0
