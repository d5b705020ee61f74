"""Wiring of the sweeper (the payout loop's second job) and of the signer's sweep rules.

- :func:`build_sweeper`: the sweeper over SQL, web3 nodes and bitcoind
  (``[funding.withdrawals] rpc``, ADR 0035) and the signer's HTTP client, when
  ``[funding.sweeps.*]`` is configured and payouts are (same signer, same nodes); it
  runs in the payout loop, so behind the same Redis lease in ``tradewind withdrawals``
  and as the embedded exchange's payout task;
- :func:`build_sweep_signer`: the signer process's side: each swept network's account
  key read from the token and checked against its xpub (start-up fails otherwise);
- :func:`store_deposit_key`: ``tradewind signer-deposit-key``: seal an account xprv in
  the token (read from stdin, or generated there and its xpub printed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from tradewind.adapters.sql import Database
from tradewind.runtime.config import ConfigError, Settings
from tradewind.runtime.funding import network_catalog
from tradewind.services.audit import AuditLog
from tradewind.services.funding.networks import NetworkCatalog, NetworkConfigError
from tradewind.services.funding.ports import Custody
from tradewind.services.funding.sweep_config import SweepSettings, parse_sweep_settings
from tradewind.services.funding.sweep_ports import SecretVault, SweepChain
from tradewind.services.funding.sweep_signer import SweepSigner
from tradewind.services.funding.sweeps import Sweeper
from tradewind.services.funding.utxo_sweeps import UtxoSweepChain
from tradewind.services.funding.withdrawals import WithdrawalService


def sweep_settings(settings: Settings, catalog: NetworkCatalog | None) -> SweepSettings:
    try:
        return parse_sweep_settings(settings.funding, catalog)
    except NetworkConfigError as exc:
        raise ConfigError(str(exc)) from None


def build_sweeper(settings: Settings, db: Database, service: WithdrawalService) -> Sweeper | None:
    """The sweeper, or ``None`` without ``[funding.sweeps]`` or without payouts."""
    from tradewind.adapters.chain.evm_sweeps import Web3SweepChain
    from tradewind.adapters.local import SystemClock
    from tradewind.adapters.signer_http import HttpSignerClient
    from tradewind.adapters.sql.alerts import SqlAlertStore
    from tradewind.adapters.sql.audit import SqlAuditStore
    from tradewind.adapters.sql.sweeps import SqlSweepStore
    from tradewind.services.alerts import AlertService

    conf = sweep_settings(settings, service.catalog)
    policy = service.policy
    if not conf.networks or policy.signer_url is None or policy.signer_secret is None:
        return None
    chains: dict[str, SweepChain | UtxoSweepChain] = {}
    for name in conf.networks:
        url = policy.rpc.get(name)
        net = service.catalog.network(name)
        if url is None or net is None:
            continue
        if net.kind == "utxo":  # ADR 0035: the payouts' node and credentials
            from tradewind.adapters.chain.bitcoind_payout import BitcoindPayoutChain
            from tradewind.adapters.chain.bitcoind_reader import BitcoindReader
            from tradewind.adapters.chain.bitcoind_sweeps import BitcoindSweepChain

            own = "@" in url
            reader = BitcoindReader(
                url,
                user=None if own else settings.bitcoin_rpc_user,
                password=None if own else settings.bitcoin_rpc_password,
                cookie_file=None if own else settings.bitcoin_rpc_cookie_file,
            )
            chains[name] = BitcoindSweepChain(
                BitcoindPayoutChain(
                    reader,
                    fallback_fee_rate=policy.bitcoin_fee_fallback,
                    fee_target_blocks=policy.bitcoin_fee_target,
                )
            )
            continue
        if net.chain_id is None:
            continue
        chains[name] = Web3SweepChain.from_url(url, net.chain_id)
    if not chains:
        return None
    clock = SystemClock()
    return Sweeper(
        catalog=service.catalog,
        settings=conf,
        store=SqlSweepStore(db),
        withdrawals=service.store,
        chains=chains,
        signer=HttpSignerClient(policy.signer_url, policy.signer_secret, service.now_ms),
        now_ms=service.now_ms,
        alerts=AlertService(SqlAlertStore(db), AuditLog(SqlAuditStore(db), clock), clock),
    )


def build_sweep_signer(
    settings: Settings,
    db: Database,
    custody: Custody,
    vault: SecretVault,
    *,
    audit: AuditLog,
    hot_keys: Mapping[str, str],
    secret: str,
    now_ms: Callable[[], int],
    max_fee_rate: int | None = None,
) -> SweepSigner | None:
    """``max_fee_rate``: the highest Bitcoin fee rate signed (sat/vB; default the
    withdrawals' ``bitcoin_max_fee_rate`` default)."""
    from tradewind.adapters.chain.bitcoin_tx import BitcoinTxCodec
    from tradewind.adapters.chain.evm_tx import EvmTxCodec
    from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
    from tradewind.adapters.sql.sweeps import SqlSweepStore
    from tradewind.services.funding.deposit_keys import DepositKeyError, DepositKeyring
    from tradewind.services.funding.signer import MAX_FEE_RATE

    catalog = network_catalog(settings)
    conf = sweep_settings(settings, catalog)
    if catalog is None or not conf.networks:
        return None
    keyrings: dict[str, DepositKeyring] = {}
    for name, net_conf in conf.networks.items():
        net = catalog.network(name)
        assert net is not None
        try:
            keyrings[name] = DepositKeyring.from_vault(net, vault, net_conf.deposit_key)
        except DepositKeyError as exc:
            raise ConfigError(str(exc)) from None
    return SweepSigner(
        store=SqlSweepStore(db),
        addresses=SqlDepositAddressStore(db),
        custody=custody,
        keyrings=keyrings,
        codec=EvmTxCodec(),
        audit=audit,
        catalog=catalog,
        settings=conf,
        hot_keys=hot_keys,
        secret=secret,
        now_ms=now_ms,
        utxo_codecs={
            name: BitcoinTxCodec(net.chain)
            for name in conf.networks
            if (net := catalog.network(name)) is not None and net.kind == "utxo"
        },
        max_fee_rate=MAX_FEE_RATE if max_fee_rate is None else max_fee_rate,
    )


def store_deposit_key(settings: Settings, network: str, xprv: str | None) -> str:
    """Seal ``xprv`` (or a new random account key) as ``network``'s deposit key in the
    signer's token; returns the account xpub to configure in ``[funding.networks]``."""
    from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
    from tradewind.services.funding.deposit_keys import (
        DepositKeyError,
        DepositKeyring,
        account_xpub,
        new_account_key,
    )
    from tradewind.services.funding.withdrawal_config import parse_signer_settings

    catalog = network_catalog(settings)
    conf = sweep_settings(settings, catalog)
    net_conf = conf.network(network)
    net = None if catalog is None else catalog.network(network)
    if net_conf is None or net is None:
        raise ConfigError(f"no [funding.sweeps.{network}] in the config")
    signer = parse_signer_settings(settings.funding, os.environ)
    if signer.pin is None:
        raise ConfigError("the signer's PIN ([funding.signer] pin or TRADEWIND_SIGNER_PIN)")
    key = xprv.strip() if xprv else new_account_key(net)
    try:
        DepositKeyring(net, key)  # refuses a key that is not the configured xpub's
    except DepositKeyError as exc:
        raise ConfigError(str(exc)) from None
    with Pkcs11Custody(signer.library, signer.token_label, signer.pin) as custody:
        try:
            custody.put_secret(net_conf.deposit_key, key.encode())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return account_xpub(key, net)
