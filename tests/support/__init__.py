"""Helpers shared by the test suites (reference models, engine views)."""
