"""``python -m rebalancerd`` is the ``rebalancerd`` command."""

from rebalancerd.cli.main import main

main()
