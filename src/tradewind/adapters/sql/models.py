"""Every table of the SQL adapter, imported in one place.

Invariant: importing this module registers every table on ``Base.metadata``; Alembic's
``env.py`` and the migration tests use it, so a table added to a concept module must be
imported here or the "models match migrations" test fails.
"""

from __future__ import annotations

from tradewind.adapters.sql.admin import AccountFreezeRow, ApprovalRow, UserRoleRow
from tradewind.adapters.sql.alerts import AlertRow
from tradewind.adapters.sql.api_keys import ApiKeyRow
from tradewind.adapters.sql.audit import AuditRow
from tradewind.adapters.sql.base import Base
from tradewind.adapters.sql.candles import CandleRow
from tradewind.adapters.sql.chain_watch import ChainAlertRow, ChainBlockRow, ChainDepositRow
from tradewind.adapters.sql.deposit_addresses import DepositAddressRow
from tradewind.adapters.sql.email_tokens import EmailTokenRow
from tradewind.adapters.sql.fiat import (
    BankBalanceRow,
    BankDebitRow,
    CardIntentRow,
    FiatLineRow,
    FiatReferenceRow,
)
from tradewind.adapters.sql.fills import FillRow
from tradewind.adapters.sql.funding_switches import FundingSwitchRow
from tradewind.adapters.sql.kyc import KycDocumentRow, KycEventRow, KycProfileRow
from tradewind.adapters.sql.ledger import LedgerEntryRow
from tradewind.adapters.sql.login_throttle import LoginThrottleRow
from tradewind.adapters.sql.margin import MarginEventRow, MarginWalletRow
from tradewind.adapters.sql.network_fees import NetworkFeeRow
from tradewind.adapters.sql.orders import OrderRow
from tradewind.adapters.sql.outbox import OutboxRow
from tradewind.adapters.sql.projections import LedgerHoldRow, ProjectorSymbolRow
from tradewind.adapters.sql.projector_offsets import ProjectorOffsetRow
from tradewind.adapters.sql.sessions import SessionRow
from tradewind.adapters.sql.sweeps import CustodyAlertRow, CustodyTransferRow
from tradewind.adapters.sql.trades import TradeRow
from tradewind.adapters.sql.users import RecoveryCodeRow, UserRow
from tradewind.adapters.sql.withdrawals import (
    WithdrawalAddressRow,
    WithdrawalApprovalRow,
    WithdrawalEventRow,
    WithdrawalRow,
)

metadata = Base.metadata

__all__ = [
    "AccountFreezeRow",
    "AlertRow",
    "ApiKeyRow",
    "ApprovalRow",
    "AuditRow",
    "BankBalanceRow",
    "BankDebitRow",
    "Base",
    "CandleRow",
    "CardIntentRow",
    "ChainAlertRow",
    "ChainBlockRow",
    "ChainDepositRow",
    "CustodyAlertRow",
    "CustodyTransferRow",
    "DepositAddressRow",
    "EmailTokenRow",
    "FiatLineRow",
    "FiatReferenceRow",
    "FillRow",
    "FundingSwitchRow",
    "KycDocumentRow",
    "KycEventRow",
    "KycProfileRow",
    "LedgerEntryRow",
    "LedgerHoldRow",
    "LoginThrottleRow",
    "MarginEventRow",
    "MarginWalletRow",
    "NetworkFeeRow",
    "OrderRow",
    "OutboxRow",
    "ProjectorOffsetRow",
    "ProjectorSymbolRow",
    "RecoveryCodeRow",
    "SessionRow",
    "TradeRow",
    "UserRoleRow",
    "UserRow",
    "WithdrawalAddressRow",
    "WithdrawalApprovalRow",
    "WithdrawalEventRow",
    "WithdrawalRow",
    "metadata",
]
