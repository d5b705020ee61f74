"""The demo's networks: Bitcoin regtest, a local Ethereum dev chain and BSC testnet.

Why these keys are safe only in a demo: the extended public keys below are the BIP84
and BIP44 account keys of the well-known BIP39 test mnemonic ("abandon" x11, "about").
Anyone can derive the private keys, so coins sent to these addresses are anyone's.
The demo shows the flow on test chains; a real deployment configures its own xpubs in
``[funding.networks.*]`` of the config file (docs/funding.md), and ``tradewind serve``
without such a table offers no deposit addresses at all.

The USDT contract is the address the first contract deployed by that mnemonic's first
EVM account gets (CREATE from nonce 0), which is where a fresh dev chain puts the
token a test deploys first.
"""

from __future__ import annotations

from collections.abc import Mapping

from tradewind.services.funding.networks import NetworkCatalog, parse_networks

TEST_MNEMONIC_ZPUB_REGTEST = (
    "vpub5Y6cjg78GGuNLsaPhmYsiw4gYX3HoQiRBiSwDaBXKUafCt9bNwWQiitDk5VZ5BVxYnQdwoTyXSs2JHRPAgjAvtb"
    "Brf8ZhDYe2jWAqvZVnsc"
)
TEST_MNEMONIC_XPUB_EVM = (
    "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh5GFZ"
    "aM6si3yZdUsT8ddYM3PwnATt"
)
DEV_TOKEN_CONTRACT = "0xC5273AbFb36550090095B1EDec019216AD21BE6c"

DEMO_FUNDING: Mapping[str, object] = {
    "networks": {
        "bitcoin": {
            "chain": "regtest",
            "xpub": TEST_MNEMONIC_ZPUB_REGTEST,
            "assets": {
                "BTC": {
                    "decimals": 8,
                    "confirmations": 2,
                    "min_deposit": "0.0001",
                    "withdrawal_fee": "0.0002",
                },
            },
        },
        "ethereum": {
            "chain_id": 1337,
            "xpub": TEST_MNEMONIC_XPUB_EVM,
            "assets": {
                "ETH": {
                    "decimals": 8,
                    "chain_decimals": 18,
                    "confirmations": 12,
                    "min_deposit": "0.001",
                    "withdrawal_fee": "0.002",
                },
                "USDT": {
                    "decimals": 6,
                    "chain_decimals": 6,
                    "contract": DEV_TOKEN_CONTRACT,
                    "confirmations": 12,
                    "min_deposit": "1",
                    "withdrawal_fee": "5",
                },
            },
        },
        "bsc": {
            "chain_id": 97,
            "xpub": TEST_MNEMONIC_XPUB_EVM,
            "assets": {
                "USDT": {
                    "decimals": 6,
                    "chain_decimals": 18,
                    "contract": DEV_TOKEN_CONTRACT,
                    "confirmations": 15,
                    "min_deposit": "1",
                    "withdrawal_fee": "0.5",
                    "withdrawal_enabled": False,
                },
            },
        },
    }
}
"""The demo configuration, in the shape of the config file's ``funding`` table."""


def demo_networks() -> NetworkCatalog:
    return parse_networks(DEMO_FUNDING)
