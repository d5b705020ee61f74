"""The [fiat] table: precise errors naming the key, keys never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tradewind.runtime.config import ConfigError, load_settings
from tradewind.services.fiat.config import FiatConfigError, demo_fiat, parse_fiat

GOOD: dict[str, Any] = {
    "currencies": {"EUR": 2, "USD": 2},
    "bank": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX", "beneficiary": "TW"},
    "stripe": {"secret_key": "sk_test_secret_value", "webhook_secret": "whsec_secret_value"},
}


def test_a_good_table_parses() -> None:
    config = parse_fiat(GOOD)
    assert dict(config.currencies) == {"EUR": 2, "USD": 2} and config.require_kyc
    assert config.stripe is not None and config.stripe.tolerance_s == 300
    assert "secret_value" not in repr(config)
    assert demo_fiat().bank.iban == "DE89370400440532013000"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "fiat: unknown key 'extra'"),
        ({"currencies": {}}, "fiat.currencies"),
        ({"currencies": {"euro": 2}}, "fiat.currencies.euro"),
        ({"currencies": {"EUR": 9}}, "fiat.currencies.EUR"),
        ({"bank": {**GOOD["bank"], "iban": "DE88370400440532013000"}}, "fiat.bank: the IBAN"),
        ({"bank": {**GOOD["bank"], "bic": "XX"}}, "fiat.bank: not a valid BIC"),
        ({"bank": {**GOOD["bank"], "swift": "x"}}, "fiat.bank: unknown key 'swift'"),
        ({"stripe": {"secret_key": "sk"}}, "fiat.stripe.webhook_secret"),
        ({"stripe": {**GOOD["stripe"], "tolerance_s": 5}}, "fiat.stripe.tolerance_s"),
        ({"require_kyc": "yes"}, "fiat.require_kyc"),
    ],
)
def test_bad_tables_name_the_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(FiatConfigError, match=message.replace("(", r"\(")):
        parse_fiat({**GOOD, **change})


def test_the_config_file_table_is_checked_and_hidden(tmp_path: Path) -> None:
    path = tmp_path / "tw.toml"
    path.write_text(
        '[fiat]\ncurrencies = { EUR = 2 }\n[fiat.bank]\niban = "DE89370400440532013000"\n'
        'bic = "COBADEFFXXX"\nbeneficiary = "TW"\n[fiat.stripe]\n'
        'secret_key = "sk_live_do_not_print"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert "fiat.stripe.webhook_secret" in str(caught.value)
    assert "do_not_print" not in str(caught.value)
    settings = load_settings(None, environ={}, overrides={"fiat": GOOD})
    assert settings.fiat == GOOD
