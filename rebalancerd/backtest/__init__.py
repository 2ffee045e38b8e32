"""Backtests: replay daily bars through the same rule engine that trades (SPEC §11)."""
