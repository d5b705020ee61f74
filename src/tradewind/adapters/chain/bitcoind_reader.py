"""``ChainReader`` for Bitcoin through bitcoind's JSON-RPC interface (ADR 0025).

The subset used: ``getblockcount``, ``getblockhash``, ``getblock`` with verbosity 2
(every transaction decoded, each output with its value and address) and
``getblockchaininfo`` (which chain the node follows, checked at start-up). Requests are
HTTP POSTs with basic auth (a user and password, or bitcoind's cookie file, read again
when the node answers 401 since bitcoind writes a new cookie at each start).

Invariants:
- an amount is never a float: the response is parsed with every JSON number holding a
  fraction as a ``Decimal`` of its exact text, and ``value`` (BTC) is scaled to satoshi
  exactly; a value with more than 8 decimals or below zero is a protocol error, never
  rounded;
- a deposit's index is the output's ``n`` (so its ref is ``bitcoin:txid:n``); only
  outputs with exactly one address are reported (bare multisig, OP_RETURN and
  nonstandard scripts have none and cannot pay a deposit address);
- a block is fetched by the hash read for its height and its reported height is checked,
  so a reorg between the two calls yields the old block (the watcher's parent-hash check
  catches it on the next step), never a mix of two blocks;
- errors say what failed: :class:`BitcoindAuthError` for refused credentials,
  :class:`BitcoindRpcError` with bitcoind's code and message for an RPC error,
  :class:`BitcoindUnavailable` for a node that cannot be reached or answers no JSON.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tradewind.services.funding.chain_ports import ChainBlock, ChainTransfer

SATOSHI_PER_BTC = 10**8
RPC_INVALID_PARAMETER = -8
"""bitcoind's code for ``getblockhash`` above the tip ("Block height out of range")."""
RPC_INVALID_ADDRESS_OR_KEY = -5
"""bitcoind's code for an unknown block or transaction hash."""
GENESIS_PARENT = "00" * 32

CHAIN_NAMES: dict[str, frozenset[str]] = {
    "mainnet": frozenset({"main"}),
    "testnet": frozenset({"test", "testnet4", "signet"}),
    "regtest": frozenset({"regtest"}),
}
"""The config's ``chain`` of a Bitcoin network against ``getblockchaininfo``'s ``chain``:
testnet3, testnet4 and signet all use ``tb`` addresses."""


class BitcoindError(RuntimeError):
    """Anything that went wrong talking to bitcoind."""


class BitcoindUnavailable(BitcoindError):
    """The node cannot be reached, or answered something that is not JSON-RPC."""


class BitcoindAuthError(BitcoindError):
    """The node refused the credentials (HTTP 401 or 403)."""


class BitcoindRpcError(BitcoindError):
    """The node answered a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"bitcoind {method}: error {code}: {message}")
        self.method = method
        self.code = code
        self.message = message


class BitcoindProtocolError(BitcoindError):
    """The answer has a shape or a value the reader cannot trust (e.g. an amount with
    more than 8 decimals): reading stops rather than crediting a guess."""


def parse_json(text: str | bytes) -> Any:
    """JSON with every number that has a fraction or exponent as an exact ``Decimal``."""
    return json.loads(text, parse_float=Decimal)


def btc_to_satoshi(value: object) -> int:
    """A ``value`` from bitcoind (BTC, as parsed by :func:`parse_json`) in satoshi,
    exactly. Floats are refused: they have already lost the exact amount."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise BitcoindProtocolError(f"amount {value!r} is not an exact JSON number")
    scaled = Decimal(value).scaleb(8)
    if not scaled.is_finite():
        raise BitcoindProtocolError(f"amount {value} is not a finite number")
    if scaled != scaled.to_integral_value():
        raise BitcoindProtocolError(f"amount {value} BTC has more than 8 decimals")
    if scaled < 0:
        raise BitcoindProtocolError(f"amount {value} BTC is negative")
    return int(scaled)


def output_address(vout: dict[str, Any]) -> str | None:
    """The one address an output pays (``address`` since bitcoind 22, ``addresses``
    before), None for scripts without exactly one."""
    spk = vout.get("scriptPubKey") or {}
    address = spk.get("address")
    if isinstance(address, str):
        return address
    addresses = spk.get("addresses")
    if isinstance(addresses, list) and len(addresses) == 1 and isinstance(addresses[0], str):
        return addresses[0]
    return None


def parse_block(number: int, raw: dict[str, Any]) -> ChainBlock:
    """A ``getblock`` verbosity-2 answer as the watcher's block: every output with one
    address and a positive value is a transfer (index = ``n``)."""
    try:
        height = int(raw["height"])
        block_hash = str(raw["hash"])
        txs = raw["tx"]
    except (KeyError, TypeError, ValueError) as exc:
        raise BitcoindProtocolError(f"getblock at {number}: missing field {exc}") from None
    if height != number:
        raise BitcoindProtocolError(f"getblock: asked for height {number}, got {height}")
    transfers: list[ChainTransfer] = []
    for tx in txs:
        if not isinstance(tx, dict):
            raise BitcoindProtocolError("getblock: transactions not decoded (verbosity 2)")
        txid = str(tx["txid"])
        for vout in tx.get("vout", ()):
            address = output_address(vout)
            value = btc_to_satoshi(vout["value"])
            if address is None or value <= 0:
                continue
            transfers.append(ChainTransfer(txid, int(vout["n"]), address, value))
    parent = raw.get("previousblockhash")
    return ChainBlock(
        height, block_hash, GENESIS_PARENT if parent is None else str(parent), tuple(transfers)
    )


class BitcoindReader:
    """Reads one bitcoind node. Give ``user``/``password`` (``rpcauth``/``rpcuser``) or
    ``cookie_file`` (the node's ``.cookie``), or neither for a node without auth."""

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        cookie_file: Path | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"bitcoind RPC URL must be http(s)://host:port, got {redact(url)}")
        if parsed.username and user is None:  # http://user:pass@host:port
            user, password = parsed.username, parsed.password
        self.url = str(parsed.copy_with(username=None, password=None))
        self._user = user
        self._password = password or ""
        self._cookie_file = cookie_file
        self._ids = itertools.count(1)
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- ChainReader ----------------------------------------------------------------------

    async def head(self) -> int:
        return int(await self.call("getblockcount"))

    async def block_hash(self, number: int) -> str | None:
        if number < 0:
            return None
        try:
            return str(await self.call("getblockhash", number))
        except BitcoindRpcError as exc:
            if exc.code == RPC_INVALID_PARAMETER:  # above the tip
                return None
            raise

    async def block(self, number: int) -> ChainBlock | None:
        block_hash = await self.block_hash(number)
        if block_hash is None:
            return None
        try:
            raw = await self.call("getblock", block_hash, 2)
        except BitcoindRpcError as exc:
            if exc.code == RPC_INVALID_ADDRESS_OR_KEY:
                return None
            raise
        return parse_block(number, raw)

    # -- the node --------------------------------------------------------------------------

    async def chain(self) -> str:
        """``getblockchaininfo``'s chain: ``main``, ``test``, ``testnet4``, ``signet``
        or ``regtest``."""
        return str((await self.call("getblockchaininfo"))["chain"])

    async def check_chain(self, configured: str) -> None:
        """Refuse a node of another chain than the network's ``chain`` setting (a
        regtest node behind a mainnet config would credit worthless coins)."""
        actual = await self.chain()
        if actual not in CHAIN_NAMES.get(configured, frozenset()):
            raise BitcoindError(
                f"the node at {self.url} follows {actual!r}, the network is set to {configured!r}"
            )

    async def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; its result, or :class:`BitcoindRpcError`."""
        body = {"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)}
        answer = await self._post(body, method)
        if not isinstance(answer, dict):
            raise BitcoindUnavailable(f"bitcoind {method}: the answer is not a JSON-RPC object")
        return _result(method, answer)

    async def _post(self, body: object, what: str) -> Any:
        response = await self._send(body, what)
        if response.status_code == 401 and self._cookie_file is not None:
            response = await self._send(body, what)  # the cookie is read again
        if response.status_code in (401, 403):
            raise BitcoindAuthError(
                f"bitcoind at {self.url} refused the credentials (HTTP {response.status_code}); "
                "check bitcoin_rpc_user/bitcoin_rpc_password or bitcoin_rpc_cookie_file"
            )
        try:
            return parse_json(response.content)
        except ValueError:
            raise BitcoindUnavailable(
                f"bitcoind {what}: HTTP {response.status_code} without a JSON body "
                f"({response.text[:200]!r})"
            ) from None

    async def _send(self, body: object, what: str) -> httpx.Response:
        try:
            return await self._client.post(
                self.url,
                content=json.dumps(body),
                headers={"content-type": "application/json"},
                auth=self._auth() or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise BitcoindUnavailable(
                f"bitcoind {what} at {self.url}: {type(exc).__name__}: {exc}"
            ) from exc

    def _auth(self) -> httpx.BasicAuth | None:
        if self._cookie_file is not None:
            try:
                user, _, password = self._cookie_file.read_text().strip().partition(":")
            except OSError as exc:
                raise BitcoindAuthError(
                    f"bitcoind cookie file {self._cookie_file} cannot be read: {exc.strerror}"
                ) from None
            return httpx.BasicAuth(user, password)
        if self._user is None:
            return None
        return httpx.BasicAuth(self._user, self._password)


def _result(method: str, answer: dict[str, Any]) -> Any:
    error = answer.get("error")
    if error is not None:
        if isinstance(error, dict):
            raise BitcoindRpcError(method, int(error.get("code", 0)), str(error.get("message")))
        raise BitcoindRpcError(method, 0, str(error))
    if "result" not in answer:
        raise BitcoindUnavailable(f"bitcoind {method}: the answer has no result")
    return answer["result"]


def redact(url: str) -> str:
    """``url`` without a password in it (for logs and errors)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(an invalid URL)"
    if parsed.password:
        return str(parsed.copy_with(username=parsed.username, password="***"))
    return url
