"""Funding: assets on networks, address validation, deposit addresses, custody ports
(DESIGN §5, docs/funding.md)."""
