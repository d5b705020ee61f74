"""A withdrawal-shaped transaction signed in SoftHSM2 is accepted and mined by a real
in-process Ethereum chain (web3.py over eth-tester/py-evm), moving exactly the value
and charging exactly the gas: the signer's signatures are what a node accepts."""

from __future__ import annotations

import web3
from eth_account._utils.legacy_transactions import (
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)

from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
from tradewind.services.funding.addresses import evm_address


def test_a_transaction_signed_in_the_token_is_mined(custody: Pkcs11Custody) -> None:
    w3 = web3.Web3(web3.EthereumTesterProvider())
    funder = w3.eth.accounts[0]
    hot = evm_address(custody.create_key("hot-chain").public_key)
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": funder, "to": hot, "value": 10**18})
    )
    recipient = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    chain_id = w3.eth.chain_id
    gas_price = 2 * w3.eth.get_block("latest")["baseFeePerGas"]
    before_hot, before_to = w3.eth.get_balance(hot), w3.eth.get_balance(recipient)
    value = 123_456_789_000_000_000

    unsigned = serializable_unsigned_transaction_from_dict(
        {
            "nonce": w3.eth.get_transaction_count(hot),
            "gasPrice": gas_price,
            "gas": 21_000,
            "to": recipient,
            "value": value,
            "data": b"",
            "chainId": chain_id,
        }
    )
    sig = custody.sign_digest("hot-chain", unsigned.hash())
    raw = encode_transaction(unsigned, vrs=(35 + 2 * chain_id + sig.recovery_id, sig.r, sig.s))
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))

    assert receipt["status"] == 1 and receipt["from"] == hot
    assert w3.eth.get_balance(recipient) == before_to + value
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(hot) == before_hot - value - fee
