"""Fiat rails (issue 6 item 7, DESIGN §5, docs/fiat.md): bank transfers matched by each
user's ISO 11649 reference (camt.053 statements in), payouts as pain.001 files, and card
deposits through a card processor (Stripe), each credited once through the core."""
