"""Chain adapters: readers of block chains behind ``ChainReader``."""
