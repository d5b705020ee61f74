"""The bitcoind reader's conversions and error handling, against canned HTTP answers
(httpx's MockTransport): amounts are exact satoshi (never through a float), a deposit's
index is the output's ``n``, outputs without one address are not deposits, and every
failure (refused credentials, an RPC error, a node that answers no JSON or is down)
raises an error that says which."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tradewind.adapters.chain.bitcoind_reader import (
    GENESIS_PARENT,
    BitcoindAuthError,
    BitcoindProtocolError,
    BitcoindReader,
    BitcoindRpcError,
    BitcoindUnavailable,
    btc_to_satoshi,
    parse_block,
    parse_json,
    redact,
)

async_test = pytest.mark.asyncio


@pytest.mark.parametrize(
    ("text", "sats"),
    [
        ("0.29", 29_000_000),  # float(0.29) * 1e8 = 28999999.999999996: int() loses one
        ("0.00000001", 1),
        ("0.10000000", 10_000_000),
        ("21000000.00000000", 2_100_000_000_000_000),
        ("50", 5_000_000_000),
        ("1e-8", 1),
        ("0.00000000", 0),
    ],
)
def test_btc_values_parse_to_exact_satoshi(text: str, sats: int) -> None:
    value = parse_json(f'{{"value": {text}}}')["value"]
    assert btc_to_satoshi(value) == sats


def test_a_float_parse_would_have_lost_a_satoshi() -> None:
    assert int(json.loads('{"v": 0.29}')["v"] * 10**8) == 28_999_999
    assert btc_to_satoshi(parse_json('{"v": 0.29}')["v"]) == 29_000_000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal("0.000000001"), "more than 8 decimals"),
        (Decimal("-0.5"), "negative"),
        (0.5, "not an exact JSON number"),
        ("0.5", "not an exact JSON number"),
        (True, "not an exact JSON number"),
        (Decimal("NaN"), "not a finite number"),
    ],
)
def test_amounts_that_are_not_exact_satoshi_are_refused(value: object, message: str) -> None:
    with pytest.raises(BitcoindProtocolError, match=message):
        btc_to_satoshi(value)


def _vout(n: int, value: str, spk: dict[str, Any]) -> dict[str, Any]:
    return {"value": Decimal(value), "n": n, "scriptPubKey": spk}


def test_a_block_lists_each_output_to_one_address_with_its_index() -> None:
    raw = {
        "hash": "bb" * 32,
        "height": 7,
        "previousblockhash": "aa" * 32,
        "tx": [
            {
                "txid": "01" * 32,
                "vout": [
                    _vout(0, "50.00000000", {"address": "bcrt1qminer", "type": "x"}),
                    _vout(1, "0", {"type": "nulldata", "hex": "6a24aa21a9ed"}),
                ],
            },
            {
                "txid": "02" * 32,
                "vout": [
                    _vout(0, "0.3", {"address": "bcrt1qalice"}),
                    _vout(1, "0.2", {"addresses": ["mLegacy"]}),  # bitcoind before 22
                    _vout(2, "1", {"addresses": ["a", "b"], "type": "multisig"}),
                    _vout(3, "0", {"address": "bcrt1qzero"}),
                ],
            },
        ],
    }
    block = parse_block(7, raw)
    assert (block.number, block.hash, block.parent_hash) == (7, "bb" * 32, "aa" * 32)
    found = [(t.txid[:2], t.index, t.to, t.value, t.contract) for t in block.transfers]
    assert found == [
        ("01", 0, "bcrt1qminer", 5_000_000_000, None),
        ("02", 0, "bcrt1qalice", 30_000_000, None),
        ("02", 1, "mLegacy", 20_000_000, None),
    ]


def test_the_genesis_block_has_the_null_parent_and_a_wrong_height_is_refused() -> None:
    genesis = parse_block(0, {"hash": "cc" * 32, "height": 0, "tx": []})
    assert genesis.parent_hash == GENESIS_PARENT
    with pytest.raises(BitcoindProtocolError, match="asked for height 5, got 6"):
        parse_block(5, {"hash": "cc" * 32, "height": 6, "tx": []})
    with pytest.raises(BitcoindProtocolError, match="not decoded"):
        parse_block(5, {"hash": "cc" * 32, "height": 5, "tx": ["01" * 32]})


class Node:
    """Canned answers per method; records what was asked and with which auth."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.requests: list[tuple[str | None, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((request.headers.get("authorization"), body))
        answer = self.answers[body["method"]]
        if callable(answer):
            return answer(request, body)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json={"result": answer, "error": None, "id": body["id"]})


def rpc_error(code: int, message: str, status: int = 500) -> Any:
    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        error = {"code": code, "message": message}
        return httpx.Response(status, json={"result": None, "error": error, "id": body["id"]})

    return respond


def reader_for(node: Node, **kwargs: Any) -> BitcoindReader:
    return BitcoindReader(
        kwargs.pop("url", "http://127.0.0.1:18443"),
        transport=httpx.MockTransport(node),
        **kwargs,
    )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@async_test
async def test_calls_carry_basic_auth_and_read_the_block_by_the_hash_of_its_height() -> None:
    text = (
        '{"result": {"hash": "bb", "height": 3, "previousblockhash": "aa", "tx": [{"txid": '
        '"t1", "vout": [{"value": 0.29, "n": 4, "scriptPubKey": {"address": "bcrt1qx"}}]}]}, '
        '"error": null, "id": 2}'
    )
    node = Node(
        {
            "getblockcount": 3,
            "getblockhash": "bb",
            "getblock": lambda req, body: httpx.Response(200, text=text),
        }
    )
    reader = reader_for(node, user="u", password="p")
    assert await reader.head() == 3
    block = await reader.block(3)
    assert block is not None and block.transfers[0].value == 29_000_000
    assert block.transfers[0].index == 4
    methods = [(auth, b["method"], b["params"]) for auth, b in node.requests]
    assert methods == [
        (basic("u", "p"), "getblockcount", []),
        (basic("u", "p"), "getblockhash", [3]),
        (basic("u", "p"), "getblock", ["bb", 2]),
    ]
    await reader.aclose()


@async_test
async def test_heights_above_the_tip_and_unknown_blocks_are_none_other_errors_raise() -> None:
    node = Node({"getblockhash": rpc_error(-8, "Block height out of range")})
    reader = reader_for(node)
    assert await reader.block_hash(9) is None
    assert await reader.block(9) is None
    assert await reader.block_hash(-1) is None
    node.answers = {"getblockhash": "bb", "getblock": rpc_error(-5, "Block not found")}
    assert await reader.block(2) is None  # reorged away between the two calls
    node.answers = {"getblockcount": rpc_error(-28, "Loading block index...")}
    with pytest.raises(BitcoindRpcError, match="getblockcount: error -28: Loading") as info:
        await reader.head()
    assert info.value.code == -28 and info.value.method == "getblockcount"
    await reader.aclose()


@async_test
async def test_refused_credentials_and_non_json_answers_say_so() -> None:
    node = Node({"getblockcount": httpx.Response(401)})
    reader = reader_for(node, user="u", password="wrong")
    with pytest.raises(BitcoindAuthError, match="refused the credentials \\(HTTP 401\\)"):
        await reader.head()
    node.answers = {"getblockcount": httpx.Response(502, text="<html>Bad Gateway</html>")}
    with pytest.raises(BitcoindUnavailable, match="HTTP 502 without a JSON body"):
        await reader.head()
    node.answers = {"getblockcount": httpx.Response(200, json=[1, 2])}
    with pytest.raises(BitcoindUnavailable, match="not a JSON-RPC object"):
        await reader.head()
    await reader.aclose()


@async_test
async def test_an_unreachable_node_is_unavailable_and_names_the_url_without_password() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    reader = BitcoindReader("http://u:hunter2@127.0.0.1:1", transport=httpx.MockTransport(refuse))
    with pytest.raises(BitcoindUnavailable, match="ConnectError") as info:
        await reader.head()
    assert "hunter2" not in str(info.value) and "127.0.0.1:1" in str(info.value)
    await reader.aclose()


@async_test
async def test_credentials_in_the_url_are_used_and_redacted() -> None:
    node = Node({"getblockcount": 1})
    reader = reader_for(node, url="http://alice:pw%21@127.0.0.1:8332/")
    assert await reader.head() == 1
    assert node.requests[0][0] == basic("alice", "pw!")
    assert "pw" not in reader.url
    assert redact("http://alice:pw@node:8332") == "http://alice:***@node:8332"
    assert redact("http://node:8332") == "http://node:8332"
    with pytest.raises(ValueError, match="must be http"):
        BitcoindReader("ftp://node")
    await reader.aclose()


@async_test
async def test_the_cookie_file_is_read_again_after_a_401(tmp_path: Path) -> None:
    """bitcoind writes a new cookie at each start: a watcher outliving a node restart
    must pick it up, not fail forever."""
    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:old")

    def check(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if request.headers.get("authorization") != basic("__cookie__", "new"):
            cookie.write_text("__cookie__:new")  # the node restarted meanwhile
            return httpx.Response(401)
        return httpx.Response(200, json={"result": 5, "error": None, "id": body["id"]})

    node = Node({"getblockcount": check})
    reader = reader_for(node, cookie_file=cookie)
    assert await reader.head() == 5
    assert [auth for auth, _ in node.requests] == [
        basic("__cookie__", "old"),
        basic("__cookie__", "new"),
    ]
    missing = reader_for(node, cookie_file=tmp_path / "absent")
    with pytest.raises(BitcoindAuthError, match=r"cookie file .* cannot be read"):
        await missing.head()
    await reader.aclose()
    await missing.aclose()


@async_test
async def test_the_node_must_follow_the_configured_chain() -> None:
    node = Node({"getblockchaininfo": {"chain": "regtest", "blocks": 0}})
    reader = reader_for(node)
    await reader.check_chain("regtest")
    with pytest.raises(Exception, match="follows 'regtest', the network is set to 'mainnet'"):
        await reader.check_chain("mainnet")
    node.answers = {"getblockchaininfo": {"chain": "signet"}}
    await reader.check_chain("testnet")  # tb1 addresses on signet too
    await reader.aclose()


def test_bitcoin_chain_amounts_are_satoshi_whatever_the_core_decimals() -> None:
    """A BTC listed with 6 core decimals still reads 8-decimal satoshi from the chain:
    a deposit of 1.23456789 BTC credits 1.234567 (the rest is dust left on the address),
    never 123.456789."""
    from tradewind.services.funding.networks import NetworkConfigError, parse_networks
    from tradewind.services.funding.watcher import to_core_units

    def btc(**extra: object) -> dict[str, object]:
        asset = {"decimals": 6, "confirmations": 2, "min_deposit": "0.001"}
        asset |= {"withdrawal_fee": "0.0002", **extra}
        return {"networks": {"bitcoin": {"chain": "regtest", "assets": {"BTC": asset}}}}

    rules = parse_networks(btc()).asset_on("BTC", "bitcoin")
    assert rules is not None and rules.chain_decimals == 8
    assert to_core_units(123_456_789, rules) == 1_234_567
    with pytest.raises(NetworkConfigError, match=r"BTC\.chain_decimals: Bitcoin amounts have 8"):
        parse_networks(btc(chain_decimals=6))
