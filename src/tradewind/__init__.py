"""Tradewind: an open-source cryptocurrency exchange."""

__version__ = "0.1.0"
