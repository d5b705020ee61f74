"""The sweeper: moves credited deposits from deposit addresses to the hot wallet, tops up
gas for token sweeps first, and moves the hot wallet's excess above its ceiling to the
cold address (issue 6 item 6, ADR 0028). Bitcoin's coins are swept by the UTXO half,
services/funding/utxo_sweeps.py (ADR 0035); what follows is the EVM one.

One :meth:`Sweeper.step` per network decides (2, 3) then moves (1):

1. **advance** every unfinished custody transfer once (oldest first):
   ``waiting_gas`` (a token sweep): its top-up confirmed -> ``ready``; a top-up under
   way -> wait; none, or the last one failed -> a new top-up row (``ready``) of exactly
   ``gas * max_fee`` less what the address holds of the native coin;
   ``ready``: fix the whole transaction (nonce = max(node's pending count, highest
   handed out + 1) over payouts and transfers of the same sender) and store it as
   ``signing`` BEFORE asking for the signature; ``signing``: ask the signer, which
   stores the signed bytes (``signed``); ``signed``: broadcast those bytes (refused and
   unknown to the node -> ``failed``); ``broadcast``: with the asset's confirmations,
   ``confirmed`` (or ``failed`` if reverted); dropped -> the same bytes again;
2. **plan sweeps** for deposit addresses whose deposits are all credited: a token
   balance of at least ``min_sweep`` -> a ``sweep`` (``waiting_gas`` unless the address
   holds the gas budget already; none while a native sweep of the address, which takes
   that gas money, is under way); then, if no token sweep of that address is
   unfinished, a native balance that leaves at least ``min_sweep`` after the fee -> a
   ``sweep`` of ``balance - 21000 * max_fee``. Below that: dust, left alone;
3. **hot and cold** for assets with a ``hot_ceiling``: pending payouts (not yet
   broadcast) needing more than the hot wallet holds raise a ``hot_wallet_short``
   alert (a row, and a log at critical level) until it is no longer short; the hot
   balance above ``ceiling + pending payouts`` (broadcast ones included) goes to the
   cold address down to ``target``, one move at a time.

A failed sweep of an (address, asset) is decided again only after an hour (a token
whose transfer reverts would otherwise burn gas every step); a top-up is not decided
while the hot wallet cannot pay it, and three failed top-ups fail their sweep.

Invariants: a transfer's transaction is fixed before it is signed and its signed bytes
stored before they are broadcast, so a sweeper killed anywhere and restarted repeats a
step and never makes a second transaction for one decision (one top-up per sweep while
one is under way, one sweep per decision); sweeps never touch the core's balances (the
money was credited when it arrived; it only changes custody).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from tradewind.services.alerts import AlertService
from tradewind.services.funding.networks import AssetOnNetwork, Network, NetworkCatalog
from tradewind.services.funding.signer import to_chain_units
from tradewind.services.funding.sweep_config import NetworkSweeps, SweepSettings
from tradewind.services.funding.sweep_ports import (
    CustodyTransfer,
    NewTransfer,
    SweepChain,
    SweepSignerClient,
    SweepStore,
    TransferStatus,
)
from tradewind.services.funding.utxo_sweeps import UtxoSweepChain, UtxoSweeps
from tradewind.services.funding.withdrawal_ports import (
    SignerRefused,
    SignerUnavailable,
    TxState,
    WithdrawalStore,
)

log = structlog.get_logger(__name__)

NATIVE_GAS = 21_000
PAYOUTS_AHEAD = ("pending_approval", "approved", "signing", "signed")
"""Withdrawals whose transaction has not left yet: the hot wallet must cover them."""
PAYOUTS_OUT = (*PAYOUTS_AHEAD, "broadcast")
"""Also broadcast ones (maybe not mined yet): kept in hot before anything goes to cold."""
RETRY_AFTER_MS = 3_600_000
"""A failed sweep of an (address, asset) is not decided again for an hour."""
TOPUP_TRIES = 3
"""A token sweep whose top-up failed this many times fails itself (then waits an hour)."""
HOT_SHORT = "hot_wallet_short"
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")


@dataclass
class SweepCounts:
    planned: int = 0
    topups: int = 0
    signed: int = 0
    broadcast: int = 0
    confirmed: int = 0
    failed: int = 0
    waiting: int = 0
    alerts: int = 0


def native_asset(net: Network) -> AssetOnNetwork | None:
    for a in net.assets:
        if a.contract is None:
            return a
    return None


def transfer_data(to: str, value: int) -> str:
    """ABI-encoded ERC-20 ``transfer(to, value)`` as 0x hex (selector a9059cbb)."""
    addr = bytes.fromhex(to[2:])
    if len(addr) != 20:
        raise ValueError("not an EVM address")
    return "0x" + (TRANSFER_SELECTOR + addr.rjust(32, b"\0") + value.to_bytes(32, "big")).hex()


class Sweeper:
    def __init__(
        self,
        *,
        catalog: NetworkCatalog,
        settings: SweepSettings,
        store: SweepStore,
        withdrawals: WithdrawalStore,
        chains: Mapping[str, SweepChain | UtxoSweepChain],
        signer: SweepSignerClient,
        now_ms: Callable[[], int],
        batch: int = 200,
        alerts: AlertService | None = None,
    ) -> None:
        self.alerts = alerts
        """The operators' alerts (back office): a short hot wallet is raised there too."""
        self.catalog = catalog
        self.settings = settings
        self.store = store
        self.withdrawals = withdrawals
        self.chains = dict(chains)
        self.signer = signer
        self.now_ms = now_ms
        self.batch = batch
        self._hot: dict[str, str] = {}
        self._utxo = UtxoSweeps(self)
        """Bitcoin's coins, one transaction per batch of coins (ADR 0035)."""

    async def step(self) -> SweepCounts:
        counts = SweepCounts()
        for name, conf in self.settings.networks.items():
            chain = self.chains.get(name)
            net = self.catalog.network(name)
            if chain is None or net is None:
                continue
            try:
                hot = await self.hot_address(name)
                if isinstance(chain, UtxoSweepChain):
                    await self._utxo.step(net, conf, chain, hot, counts)
                    continue
                await self._plan_sweeps(net, conf, chain, hot, counts)
                await self._hot_and_cold(net, conf, chain, hot, counts)
                await self._advance_all(net, chain, hot, counts)
            except (SignerUnavailable, OSError) as exc:
                counts.waiting += 1
                log.warning("sweep step postponed", network=name, error=str(exc))
            except Exception:  # this network's node or rows: the other networks go on
                counts.waiting += 1
                log.exception("sweep step failed", network=name)
        return counts

    async def hot_address(self, network: str) -> str:
        hot = self._hot.get(network)
        if hot is None:
            hot = await self.signer.address(network)
            self._hot[network] = hot
        return hot

    # -- 1. advancing transfers -----------------------------------------------------

    async def _advance_all(
        self, net: Network, chain: SweepChain, hot: str, counts: SweepCounts
    ) -> None:
        for t in await self.store.unfinished(net.name):
            try:
                await self._advance(net, chain, hot, t, counts)
            except (SignerUnavailable, OSError) as exc:
                counts.waiting += 1
                log.warning("custody transfer postponed", transfer=t.id, error=str(exc))
            except Exception:  # one transfer's trouble does not hold up the others
                counts.waiting += 1
                log.exception("custody transfer step failed", transfer=t.id)

    async def _advance(
        self, net: Network, chain: SweepChain, hot: str, t: CustodyTransfer, counts: SweepCounts
    ) -> None:
        if t.status == "waiting_gas":
            await self._gas(net, chain, hot, t, counts)
            return
        if t.status == "ready":
            await self._fix(chain, t)
            t = await self._get(t.id)
        if t.status == "signing":
            if not await self._sign(t):
                counts.failed += 1
                return
            counts.signed += 1
            t = await self._get(t.id)
        if t.status == "signed":
            sent = await self._broadcast(chain, t, counts)
            if sent is None:
                return
            t = sent
        if t.status == "broadcast":
            await self._confirm(net, chain, t, counts)

    async def _broadcast(
        self, chain: SweepChain | UtxoSweepChain, t: CustodyTransfer, counts: SweepCounts
    ) -> CustodyTransfer | None:
        """``signed`` -> ``broadcast`` (EVM and UTXO alike): the stored bytes to the node;
        refused -> ``failed`` and ``None``, else the transfer as stored now."""
        assert t.raw_tx is not None
        refused = await chain.broadcast(t.raw_tx)
        if refused is not None:
            await self._fail(t, ("signed",), f"broadcast refused: {refused}")
            counts.failed += 1
            return None
        await self.store.transition(t.id, ("signed",), "broadcast", at_ms=self.now_ms())
        counts.broadcast += 1
        return await self._get(t.id)

    async def _get(self, transfer_id: int) -> CustodyTransfer:
        t = await self.store.get(transfer_id)
        assert t is not None
        return t

    async def _gas(
        self, net: Network, chain: SweepChain, hot: str, t: CustodyTransfer, counts: SweepCounts
    ) -> None:
        kids = await self.store.children(t.id)
        last = kids[-1] if kids else None
        if last is not None and last.status == "confirmed":
            await self.store.transition(t.id, ("waiting_gas",), "ready", at_ms=self.now_ms())
            counts.waiting += 1  # fixed and sent on the next step
            return
        if last is not None and last.status != "failed":
            counts.waiting += 1  # the top-up is under way
            return
        if sum(1 for k in kids if k.status == "failed") >= TOPUP_TRIES:
            await self._fail(t, ("waiting_gas",), f"its gas top-up failed {TOPUP_TRIES} times")
            counts.failed += 1
            return
        native = native_asset(net)
        if native is None:
            await self._fail(t, ("waiting_gas",), "no native coin configured to pay gas with")
            counts.failed += 1
            return
        held = await chain.balance(t.sender, None)
        need = t.gas_budget - held
        if need <= 0:  # the address has the gas already (e.g. an ETH deposit on it)
            await self.store.transition(t.id, ("waiting_gas",), "ready", at_ms=self.now_ms())
            return
        max_fee, tip = await chain.fees()
        if await chain.balance(hot, None) < need + NATIVE_GAS * max_fee:
            counts.waiting += 1  # no row that would only fail: the short alert says why
            log.warning("hot wallet cannot pay a gas top-up", sweep=t.id, wei=need)
            return
        topup = await self.store.create(
            NewTransfer(
                kind="topup",
                network=net.name,
                asset=native.asset,
                contract=None,
                sender=hot,
                recipient=t.sender,
                amount=need,
                gas=NATIVE_GAS,
                max_fee=max_fee,
                priority_fee=tip,
                status="ready",
                parent_id=t.id,
            ),
            at_ms=self.now_ms(),
        )
        counts.topups += 1
        log.info("gas top-up decided", sweep=t.id, address=t.sender, wei=need)
        await self._advance(net, chain, hot, topup, counts)

    async def _fix(self, chain: SweepChain, t: CustodyTransfer) -> None:
        net = self.catalog.network(t.network)
        assert net is not None and net.chain_id is not None
        highest = await self.store.highest_nonce(t.network, t.sender)
        nonce = max(await chain.nonce(t.sender), 0 if highest is None else highest + 1)
        if t.contract is None:
            to, value, data = t.recipient, t.amount, "0x"
        else:
            to, value, data = t.contract, 0, transfer_data(t.recipient, t.amount)
        tx = {
            "type": 2,
            "chainId": net.chain_id,
            "nonce": nonce,
            "maxFeePerGas": t.max_fee,
            "maxPriorityFeePerGas": t.priority_fee,
            "gas": t.gas,
            "to": to,
            "value": value,
            "data": data,
            "from": t.sender,
        }
        await self.store.transition(
            t.id,
            ("ready",),
            "signing",
            at_ms=self.now_ms(),
            fields={"tx": json.dumps(tx, sort_keys=True, separators=(",", ":")), "nonce": nonce},
        )

    async def _sign(self, t: CustodyTransfer) -> bool:
        assert t.tx is not None
        try:
            await self.signer.sweep(t.id, t.network, json.loads(t.tx))
            return True
        except SignerRefused as exc:
            fresh = await self._get(t.id)
            if fresh.status != "signing":
                return fresh.status == "signed"
            await self._fail(t, ("signing",), f"signer refused: {exc.code}: {exc.message}")
            return False

    async def _confirm(
        self, net: Network, chain: SweepChain, t: CustodyTransfer, counts: SweepCounts
    ) -> None:
        assert t.txid is not None and t.raw_tx is not None
        state = await chain.state(t.txid)
        if state.state == "unknown":
            refused = await chain.broadcast(t.raw_tx)
            if refused is not None:
                log.warning("custody transfer re-broadcast refused", transfer=t.id, reason=refused)
            counts.waiting += 1
            return
        rules = net.asset(t.asset)
        depth = 1 if rules is None else rules.confirmations
        if state.state == "pending" or state.confirmations < depth:
            counts.waiting += 1
            return
        if state.state == "succeeded":
            await self._confirmed(t, state, counts)
            return
        await self._fail(t, ("broadcast",), f"reverted on chain in block {state.block_number}")
        counts.failed += 1

    async def _confirmed(self, t: CustodyTransfer, state: TxState, counts: SweepCounts) -> None:
        """``broadcast`` -> ``confirmed`` (EVM and UTXO alike), once mined deep enough."""
        await self.store.transition(
            t.id,
            ("broadcast",),
            "confirmed",
            at_ms=self.now_ms(),
            fields={"block_number": state.block_number},
        )
        counts.confirmed += 1
        log.info("custody transfer confirmed", transfer=t.id, kind=t.kind, txid=t.txid)

    async def _fail(self, t: CustodyTransfer, from_statuses: tuple[str, ...], reason: str) -> None:
        await self.store.transition(
            t.id, from_statuses, "failed", at_ms=self.now_ms(), fields={"reason": reason}
        )
        log.error("custody transfer failed", transfer=t.id, kind=t.kind, reason=reason)

    # -- 2. planning sweeps ---------------------------------------------------------

    async def _plan_sweeps(
        self, net: Network, conf: NetworkSweeps, chain: SweepChain, hot: str, counts: SweepCounts
    ) -> None:
        busy: dict[str, set[str]] = {}
        for t in await self.store.unfinished(net.name):
            if t.kind == "sweep":
                busy.setdefault(t.sender, set()).add(t.asset)
        resting = await self.store.failed_since(net.name, self.now_ms() - RETRY_AFTER_MS)
        by_address: dict[str, set[str]] = {}
        for c in await self.store.candidates(net.name, self.batch):
            if (c.address, c.asset) not in resting:
                by_address.setdefault(c.address, set()).add(c.asset)
        for address, assets in by_address.items():
            if address == hot:
                continue
            taken = busy.setdefault(address, set())
            native = native_asset(net)
            if native is not None and native.asset in taken:
                continue  # a native sweep under way is taking the gas money: wait for it
            tokens = sorted(a for a in assets if (r := net.asset(a)) is not None and r.contract)
            for asset in tokens:
                if asset not in taken and await self._plan_token(
                    net, conf, chain, hot, address, asset
                ):
                    taken.add(asset)
                    counts.planned += 1
            token_busy = any((r := net.asset(a)) is not None and r.contract for a in taken)
            if native is None or token_busy or native.asset in taken:
                continue
            if await self._plan_native(net, conf, chain, hot, address, native):
                counts.planned += 1

    def _min_chain(self, conf: NetworkSweeps, rules: AssetOnNetwork) -> int:
        a = conf.assets.get(rules.asset)
        minimum = 0 if a is None else a.min_sweep
        return max(1, to_chain_units(minimum, rules.decimals, rules.chain_decimals))

    async def _plan_token(
        self,
        net: Network,
        conf: NetworkSweeps,
        chain: SweepChain,
        hot: str,
        address: str,
        asset: str,
    ) -> bool:
        rules = net.asset(asset)
        assert rules is not None and rules.contract is not None
        amount = await chain.balance(address, rules.contract)
        if amount < self._min_chain(conf, rules):
            return False  # dust stays
        max_fee, tip = await chain.fees()
        gas = await chain.token_gas(address, rules.contract, hot, amount)
        held = await chain.balance(address, None)
        status: TransferStatus = "ready" if held >= gas * max_fee else "waiting_gas"
        await self.store.create(
            NewTransfer(
                kind="sweep",
                network=net.name,
                asset=asset,
                contract=rules.contract,
                sender=address,
                recipient=hot,
                amount=amount,
                gas=gas,
                max_fee=max_fee,
                priority_fee=tip,
                status=status,
            ),
            at_ms=self.now_ms(),
        )
        log.info("token sweep decided", address=address, asset=asset, amount=amount, gas=gas)
        return True

    async def _plan_native(
        self,
        net: Network,
        conf: NetworkSweeps,
        chain: SweepChain,
        hot: str,
        address: str,
        rules: AssetOnNetwork,
    ) -> bool:
        balance = await chain.balance(address, None)
        max_fee, tip = await chain.fees()
        amount = balance - NATIVE_GAS * max_fee
        if amount < self._min_chain(conf, rules):
            return False  # dust (or only gas money left from a token sweep)
        await self.store.create(
            NewTransfer(
                kind="sweep",
                network=net.name,
                asset=rules.asset,
                contract=None,
                sender=address,
                recipient=hot,
                amount=amount,
                gas=NATIVE_GAS,
                max_fee=max_fee,
                priority_fee=tip,
                status="ready",
            ),
            at_ms=self.now_ms(),
        )
        log.info("native sweep decided", address=address, asset=rules.asset, amount=amount)
        return True

    # -- 3. hot and cold ------------------------------------------------------------

    async def _payouts(self, net: Network, rules: AssetOnNetwork, statuses: tuple[str, ...]) -> int:
        total = 0
        for w in await self.withdrawals.list_by_status(statuses, limit=10_000, network=net.name):
            if w.asset == rules.asset:
                total += to_chain_units(w.net_amount, rules.decimals, rules.chain_decimals)
        return total

    async def _hot_and_cold(
        self, net: Network, conf: NetworkSweeps, chain: SweepChain, hot: str, counts: SweepCounts
    ) -> None:
        unfinished = await self.store.unfinished(net.name)
        for asset, a in conf.assets.items():
            rules = net.asset(asset)
            if rules is None:
                continue
            held = await chain.balance(hot, rules.contract)
            ahead = await self._payouts(net, rules, PAYOUTS_AHEAD)
            await self._short_alert(net, rules, held, ahead, counts)
            if a.hot_ceiling is None or a.hot_target is None or conf.cold_address is None:
                continue
            if any(t.kind == "cold" and t.asset == asset for t in unfinished):
                continue  # one move to cold at a time
            out = await self._payouts(net, rules, PAYOUTS_OUT)
            ceiling = to_chain_units(a.hot_ceiling, rules.decimals, rules.chain_decimals)
            target = to_chain_units(a.hot_target, rules.decimals, rules.chain_decimals)
            free = held - out
            if free <= ceiling:
                continue
            max_fee, tip = await chain.fees()
            if rules.contract is None:
                gas = NATIVE_GAS
            else:
                gas = await chain.token_gas(hot, rules.contract, conf.cold_address, free - target)
            await self.store.create(
                NewTransfer(
                    kind="cold",
                    network=net.name,
                    asset=asset,
                    contract=rules.contract,
                    sender=hot,
                    recipient=conf.cold_address,
                    amount=free - target,
                    gas=gas,
                    max_fee=max_fee,
                    priority_fee=tip,
                    status="ready",
                ),
                at_ms=self.now_ms(),
            )
            counts.planned += 1
            log.info("excess to cold decided", asset=asset, amount=free - target, held=held)

    async def _short_alert(
        self, net: Network, rules: AssetOnNetwork, held: int, need: int, counts: SweepCounts
    ) -> None:
        open_ = await self.store.open_alert(net.name, rules.asset, HOT_SHORT)
        if need > held and open_ is None:
            message = (
                f"the hot wallet on {net.name} holds {held} chain units of {rules.asset}, "
                f"pending withdrawals need {need}: fund it (from cold) or payouts will fail"
            )
            await self.store.raise_alert(net.name, rules.asset, HOT_SHORT, message, self.now_ms())
            counts.alerts += 1
            log.critical(
                "hot wallet short", network=net.name, asset=rules.asset, held=held, need=need
            )
            if self.alerts is not None:
                try:
                    await self.alerts.raise_alert(
                        f"custody.{HOT_SHORT}",
                        "critical",
                        message,
                        {
                            "network": net.name,
                            "asset": rules.asset,
                            "held": str(held),
                            "need": str(need),
                        },
                        dedupe_key=f"custody.{HOT_SHORT}:{net.name}:{rules.asset}",
                    )
                except Exception:  # the custody row and the log line stand regardless
                    log.exception("operator alert not raised", kind=HOT_SHORT)
        elif need <= held and open_ is not None:
            await self.store.resolve_alert(open_.id, self.now_ms())
            log.info("hot wallet no longer short", network=net.name, asset=rules.asset)
