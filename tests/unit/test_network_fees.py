"""The network-fee booking (services/funding/network_fees.py, ADR 0034) over in-memory
ports and a real core: each finished transaction's fee is read once, rounded up into
the core's minor units, and booked once from the withdrawal-fee account, whatever
crashes or repeats in between; a fee the account cannot pay waits, pending, with an
alert naming the numbers, and is booked once the account is funded."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from tests.unit.helpers import Exchange
from tradewind.core.commands import AddAsset, AnyCommand, Deposit, Expense
from tradewind.core.events import Event
from tradewind.services.funding.network_fees import (
    ALERT_KIND,
    FeeSource,
    NetworkFee,
    NetworkFeeBooker,
    fee_ref,
    to_minor_units_up,
)
from tradewind.services.funding.networks import parse_networks
from tradewind.services.funding.withdrawals import FEE_ACCOUNT

GWEI = 10**9
WEI_PER_UNIT = 10**10  # ETH: 18 decimals on chain, 8 in the core


def catalog() -> Any:
    return parse_networks(
        {
            "networks": {
                "ethereum": {
                    "chain_id": 1,
                    "assets": {
                        "ETH": {
                            "decimals": 8,
                            "chain_decimals": 18,
                            "confirmations": 1,
                            "min_deposit": "0.001",
                            "withdrawal_fee": "0.002",
                        },
                        "USDT": {
                            "decimals": 6,
                            "contract": "0xdAC17F958D2ee523a2206206994597C13D831ec7",
                            "confirmations": 1,
                            "min_deposit": "1",
                            "withdrawal_fee": "1",
                        },
                    },
                },
                "bitcoin": {
                    "chain": "regtest",
                    "assets": {
                        "BTC": {
                            "decimals": 8,
                            "confirmations": 1,
                            "min_deposit": "0.0001",
                            "withdrawal_fee": "0.0002",
                        }
                    },
                },
                "bsc": {  # a token only: no native asset, so no fee can be booked there
                    "chain_id": 97,
                    "assets": {
                        "USDT": {
                            "decimals": 6,
                            "chain_decimals": 18,
                            "contract": "0x55d398326f99059fF775485246999027B3197955",
                            "confirmations": 1,
                            "min_deposit": "1",
                            "withdrawal_fee": "1",
                        }
                    },
                },
            }
        }
    )


class MemoryFees:
    """The store: source rows (as the withdrawals and custody tables would list them)
    and fee rows keyed by (source, id)."""

    def __init__(self) -> None:
        self.sources: list[FeeSource] = []
        self.rows: dict[tuple[str, int], NetworkFee] = {}
        self.crash_before_booked = False

    async def unrecorded(self, networks: Any, limit: int) -> list[FeeSource]:
        return [
            s
            for s in self.sources
            if s.network in networks and (s.source, s.source_id) not in self.rows
        ][:limit]

    async def record(self, fee: NetworkFee) -> bool:
        if (fee.source, fee.source_id) in self.rows:
            return False
        self.rows[(fee.source, fee.source_id)] = fee
        return True

    async def pending(self, limit: int) -> list[NetworkFee]:
        return [r for r in self.rows.values() if r.status == "pending"][:limit]

    async def booked(self, source: str, source_id: int, seq: int | None, at_ms: int) -> bool:
        if self.crash_before_booked:
            raise ConnectionError("the process died before the row said booked")
        row = self.rows[(source, source_id)]
        if row.status != "pending":
            return False
        self.rows[(source, source_id)] = dataclasses.replace(
            row, status="booked", seq=seq, reason=None, updated_at_ms=at_ms
        )
        return True

    async def note(self, source: str, source_id: int, reason: str, at_ms: int) -> None:
        row = self.rows[(source, source_id)]
        self.rows[(source, source_id)] = dataclasses.replace(row, reason=reason)

    async def get(self, source: str, source_id: int) -> NetworkFee | None:
        return self.rows.get((source, source_id))


class Reader:
    def __init__(self, fees: dict[str, int | None]) -> None:
        self.fees = fees
        self.asked: list[str] = []
        self.down = False

    async def fee_paid(self, txid: str) -> int | None:
        self.asked.append(txid)
        if self.down:
            raise ConnectionError("node away")
        return self.fees.get(txid)


@dataclass
class Applied:
    seq: int
    ts: int
    events: list[Event]


class CoreBus:
    def __init__(self) -> None:
        self.exchange = Exchange()
        self.commands: list[AnyCommand] = []
        for asset in ("ETH", "BTC", "USDT"):
            self.exchange.ok(AddAsset(asset=asset, decimals=6 if asset == "USDT" else 8))

    @property
    def available(self) -> bool:
        return True

    async def submit(self, cmd: AnyCommand) -> Applied:
        self.commands.append(cmd)
        return Applied(self.exchange.seq + 1, 0, self.exchange.do(cmd))

    def fees_held(self, asset: str) -> int:
        b = self.exchange.core.accounts.get(FEE_ACCOUNT, {}).get(asset)
        return 0 if b is None else b.available


class Alerts:
    def __init__(self) -> None:
        self.raised: list[tuple[str, str, str, dict[str, Any], str | None]] = []

    async def raise_alert(
        self,
        kind: str,
        severity: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
    ) -> None:
        self.raised.append((kind, severity, message, dict(details or {}), dedupe_key))


@dataclass
class Rig:
    store: MemoryFees
    eth: Reader
    btc: Reader
    bus: CoreBus
    alerts: Alerts
    booker: NetworkFeeBooker

    def step(self) -> Any:
        return asyncio.run(self.booker.step())

    def fund(self, asset: str, amount: int) -> None:
        self.bus.exchange.ok(Deposit(user=FEE_ACCOUNT, asset=asset, amount=amount))

    def expenses(self) -> list[Expense]:
        return [c for c in self.bus.commands if isinstance(c, Expense)]


@pytest.fixture
def rig() -> Rig:
    store, bus, alerts = MemoryFees(), CoreBus(), Alerts()
    eth, btc = Reader({}), Reader({})
    booker = NetworkFeeBooker(
        catalog=catalog(),
        store=store,
        readers={"ethereum": eth, "bitcoin": btc, "bsc": Reader({})},
        bus=bus,
        now_ms=lambda: 1_000,
        alerts=alerts,  # type: ignore[arg-type]
    )
    return Rig(store, eth, btc, bus, alerts, booker)


@pytest.mark.parametrize(
    ("fee_chain", "chain_decimals", "decimals", "amount"),
    [
        (21_000 * GWEI, 18, 8, 2_100),  # exact
        (21_000 * GWEI + 1, 18, 8, 2_101),  # one wei more: a whole minor unit more
        (1, 18, 8, 1),
        (0, 18, 8, 0),
        (1_234, 8, 8, 1_234),  # Bitcoin: satoshi are the core's units
        (7, 2, 4, 700),  # more decimals in the core than on chain: exact
    ],
)
def test_a_fee_is_converted_rounding_up(
    fee_chain: int, chain_decimals: int, decimals: int, amount: int
) -> None:
    rules = catalog().asset_on("ETH", "ethereum")
    rules = dataclasses.replace(rules, chain_decimals=chain_decimals, decimals=decimals)
    assert to_minor_units_up(fee_chain, rules) == amount


def test_each_finished_transaction_is_booked_once_from_the_fee_account(rig: Rig) -> None:
    rig.fund("ETH", 1_000_000)
    rig.fund("BTC", 50_000)
    rig.eth.fees = {"0xa": 21_000 * 3 * GWEI + 5, "0xb": 52_000 * 2 * GWEI, "0xc": 30 * GWEI}
    rig.btc.fees = {"b1": 2_820}
    rig.store.sources = [
        FeeSource("withdrawal", 1, "ethereum", "0xa", "confirmed"),
        FeeSource("withdrawal", 2, "ethereum", "0xb", "failed"),  # reverted: gas paid
        FeeSource("custody", 1, "ethereum", "0xc", "confirmed"),  # a sweep or a top-up
        FeeSource("withdrawal", 3, "bitcoin", "b1", "confirmed"),
        FeeSource("custody", 2, "bitcoin", "b2", "failed"),  # never mined: no fee
        FeeSource("withdrawal", 4, "bsc", "0xd", "confirmed"),  # no native asset here
    ]
    counts = rig.step()
    assert (counts.recorded, counts.booked, counts.waiting) == (5, 4, 0)
    want = {
        "network-fee:withdrawal:1": ("ETH", 6_301),  # 63,000 gwei + 5 wei, rounded up
        "network-fee:withdrawal:2": ("ETH", 10_400),
        "network-fee:custody:1": ("ETH", 3),
        "network-fee:withdrawal:3": ("BTC", 2_820),
    }
    assert {e.ref: (e.asset, e.amount) for e in rig.expenses()} == want
    assert all(e.user == FEE_ACCOUNT for e in rig.expenses())
    assert rig.bus.fees_held("ETH") == 1_000_000 - 6_301 - 10_400 - 3
    assert rig.bus.fees_held("BTC") == 50_000 - 2_820
    assert rig.bus.exchange.core.expensed == {"ETH": 16_704, "BTC": 2_820}
    none = rig.store.rows[("custody", 2)]
    assert (none.status, none.amount, none.fee_chain) == ("none", 0, 0)
    first = rig.store.rows[("withdrawal", 1)]
    assert (first.status, first.fee_chain, first.amount) == ("booked", 63_000 * GWEI + 5, 6_301)
    assert first.seq is not None and first.ref == fee_ref("withdrawal", 1)
    assert ("withdrawal", 4) not in rig.store.rows

    asked = len(rig.eth.asked)
    again = rig.step()  # nothing new: nothing read, nothing booked
    assert (again.recorded, again.booked) == (0, 0)
    assert len(rig.eth.asked) == asked and len(rig.expenses()) == 4


def test_a_crash_between_the_booking_and_the_row_books_once(rig: Rig) -> None:
    rig.fund("ETH", 100_000)
    rig.eth.fees = {"0xa": 21_000 * 10 * GWEI}
    rig.store.sources = [FeeSource("withdrawal", 7, "ethereum", "0xa", "confirmed")]
    rig.store.crash_before_booked = True
    with pytest.raises(ConnectionError):
        rig.step()
    assert rig.bus.fees_held("ETH") == 100_000 - 21_000
    assert rig.store.rows[("withdrawal", 7)].status == "pending"

    rig.store.crash_before_booked = False  # restarted: the core says it is booked
    counts = rig.step()
    assert counts.booked == 1
    row = rig.store.rows[("withdrawal", 7)]
    assert (row.status, row.seq) == ("booked", None)
    assert rig.bus.fees_held("ETH") == 100_000 - 21_000
    assert rig.bus.exchange.core.expensed == {"ETH": 21_000}
    refs = [e.ref for e in rig.expenses()]
    assert refs == ["network-fee:withdrawal:7"] * 2  # the retry was a duplicate_expense


def test_a_fee_the_account_cannot_pay_waits_with_an_alert_then_books(rig: Rig) -> None:
    rig.fund("ETH", 1_000)
    rig.eth.fees = {"0xa": 65_000 * 4 * GWEI, "0xb": 21_000 * GWEI}  # 26,000 and 2,100
    rig.store.sources = [
        FeeSource("withdrawal", 9, "ethereum", "0xa", "confirmed"),
        FeeSource("custody", 4, "ethereum", "0xb", "confirmed"),
    ]
    counts = rig.step()
    assert (counts.booked, counts.waiting, counts.alerts) == (0, 2, 1)
    assert len(rig.expenses()) == 1  # the later ETH fee waits behind the refused one
    row = rig.store.rows[("withdrawal", 9)]
    assert row.status == "pending" and row.reason is not None
    assert row.reason.startswith("insufficient_balance")
    assert rig.bus.fees_held("ETH") == 1_000  # nothing taken, nothing negative
    ((kind, severity, message, details, key),) = rig.alerts.raised
    assert (kind, severity, key) == (ALERT_KIND, "warning", f"{ALERT_KIND}:ETH")
    assert details["fee"] == "0.00026000" and details["unbooked"] == "0.00028100"
    assert details["txid"] == "0xa" and details["ref"] == "network-fee:withdrawal:9"
    assert "0.00026000 ETH" in message and str(FEE_ACCOUNT) in message

    rig.step()  # still short: still pending, the same alert repeated (one dedupe key)
    assert rig.store.rows[("withdrawal", 9)].status == "pending"
    assert {a[4] for a in rig.alerts.raised} == {f"{ALERT_KIND}:ETH"}

    rig.fund("ETH", 30_000)
    assert rig.step().booked == 2
    assert rig.store.rows[("withdrawal", 9)].status == "booked"
    assert rig.bus.fees_held("ETH") == 31_000 - 26_000 - 2_100


def test_a_fee_not_readable_yet_waits_and_a_node_away_stops_nothing_else(rig: Rig) -> None:
    rig.fund("BTC", 10_000)
    rig.btc.fees = {"b1": 500}
    rig.store.sources = [
        FeeSource("withdrawal", 1, "ethereum", "0xa", "confirmed"),  # the node lacks it
        FeeSource("custody", 3, "bitcoin", "b1", "confirmed"),
    ]
    counts = rig.step()
    assert (counts.recorded, counts.booked, counts.waiting) == (1, 1, 1)
    assert ("withdrawal", 1) not in rig.store.rows  # asked again next step

    rig.eth.down = True
    rig.store.sources.append(FeeSource("withdrawal", 2, "ethereum", "0xb", "confirmed"))
    assert rig.step().waiting == 2
    rig.eth.down = False
    rig.eth.fees = {"0xa": WEI_PER_UNIT, "0xb": WEI_PER_UNIT}
    rig.fund("ETH", 10)
    assert rig.step().booked == 2
    assert rig.bus.fees_held("ETH") == 8


class Node:
    """bitcoind's answers, as ``BitcoindReader.call`` gives them (amounts as Decimal)."""

    def __init__(self, txs: dict[str, dict[str, Any]]) -> None:
        self.txs = txs
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def call(self, method: str, *params: Any) -> Any:
        from tradewind.adapters.chain.bitcoind_reader import (
            RPC_INVALID_ADDRESS_OR_KEY,
            BitcoindRpcError,
        )

        self.calls.append((method, params))
        assert method == "getrawtransaction"
        if params[0] not in self.txs:
            raise BitcoindRpcError(method, RPC_INVALID_ADDRESS_OR_KEY, "No such transaction")
        return self.txs[params[0]]


def test_the_bitcoin_fee_is_the_nodes_fee_or_inputs_less_outputs() -> None:
    from decimal import Decimal

    from tradewind.adapters.chain.bitcoind_payout import BitcoindPayoutChain

    parent = {"vout": [{"n": 0, "value": Decimal("0.5")}, {"n": 1, "value": Decimal("0.3")}]}
    node = Node(
        {
            "given": {"confirmations": 3, "fee": Decimal("0.00001234")},  # bitcoind 25+
            "prevouts": {  # verbosity 2 with prevouts but no fee field
                "confirmations": 1,
                "vin": [{"txid": "p", "vout": 1, "prevout": {"value": Decimal("0.3")}}],
                "vout": [{"n": 0, "value": Decimal("0.2999")}],
            },
            "parents": {  # an older node: the spent outputs read from their parents
                "confirmations": 2,
                "vin": [{"txid": "p", "vout": 0}, {"txid": "p", "vout": 1}],
                "vout": [{"n": 0, "value": Decimal("0.7")}, {"n": 1, "value": Decimal("0.0998")}],
            },
            "p": parent,
            "mempool": {"confirmations": 0, "fee": Decimal("0.0001")},
        }
    )
    chain = BitcoindPayoutChain(node)  # type: ignore[arg-type]
    paid = {t: asyncio.run(chain.fee_paid(t)) for t in ("given", "prevouts", "parents")}
    assert paid == {"given": 1_234, "prevouts": 10_000, "parents": 20_000}
    assert asyncio.run(chain.fee_paid("mempool")) is None  # may still be dropped
    assert asyncio.run(chain.fee_paid("unknown")) is None
    assert node.calls[0] == ("getrawtransaction", ("given", 2))
