"""An in-process Ethereum chain (web3 over eth-tester/py-evm) served over JSON-RPC on
loopback, so another process (``tradewind withdrawals``) can use it as its node.

The server side is a ``Web3`` on ``EthereumTesterProvider``: each request goes through
its request formatters and the tester's middleware (which read JSON-RPC hex values),
and the result is written back as JSON-RPC values (integers as hex quantities, bytes as
0x hex). One request at a time (eth-tester is not thread-safe); a failure is a
JSON-RPC error, as a node reports a refused transaction.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import web3


def _rpc_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if hasattr(value, "items"):
        return {k: _rpc_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rpc_value(v) for v in value]
    return value


class EvmRpcNode:
    def __init__(self) -> None:
        self.w3 = web3.Web3(web3.EthereumTesterProvider())
        self.chain_id = int(self.w3.eth.chain_id)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def call(self, method: str, params: list[Any]) -> dict[str, Any]:
        try:
            with self._lock:
                result = self.w3.manager.request_blocking(method, params)  # type: ignore[arg-type]
            return {"result": _rpc_value(result)}
        except Exception as exc:
            return {"error": {"code": -32000, "message": str(exc)}}

    def mine(self, blocks: int = 1) -> None:
        with self._lock:
            self.w3.provider.ethereum_tester.mine_blocks(blocks)  # type: ignore[attr-defined]

    def pay(self, to: str, wei: int) -> None:
        with self._lock:
            eth = self.w3.eth
            tx = eth.send_transaction({"from": eth.accounts[0], "to": to, "value": wei})  # type: ignore[typeddict-item]
            eth.wait_for_transaction_receipt(tx)

    def balance(self, address: str) -> int:
        with self._lock:
            return int(self.w3.eth.get_balance(address))  # type: ignore[arg-type]

    @contextmanager
    def running(self) -> Iterator[EvmRpcNode]:
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = node.call(request["method"], request.get("params", []))
                body = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), **answer}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # a short poll: shutdown() waits for the loop's next poll (0.5 s by default)
        thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)
