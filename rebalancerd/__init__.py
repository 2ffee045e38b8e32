"""rebalancerd: exit management daemon for automated equity-trading bots."""

__version__ = "0.1.0"
