"""Card processors behind the ``CardProcessor`` port (services/fiat/ports.py)."""
