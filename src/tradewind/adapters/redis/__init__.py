"""Redis adapters (distributed mode, ``TRADEWIND_REDIS_URL``): hot market data."""
