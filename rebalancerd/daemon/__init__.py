"""The long-running daemon (``rebalancerd run``): scheduler, catch-up, lock, health."""
