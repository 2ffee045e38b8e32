"""Weekly-cap outcomes as data (SPEC §3).

The database takes the real slots (atomically, see the SQL store); this module
holds the pure parts: which sources are capped, and the "as if real" outcome a
dry run or a disabled account shows the operator without holding any slot.
"""

from __future__ import annotations

from collections.abc import Iterable

from rebalancerd.domain.model import Action, Source

SLOT_ACTIONS: frozenset[Action] = frozenset({Action.EXIT, Action.TRIM})


def takes_slot(action: Action, source: Source, cap_sources: Iterable[Source]) -> bool:
    """EXIT and TRIM take a slot when their source is listed in ``cap_sources``."""
    return action in SLOT_ACTIONS and source in set(cap_sources)


class SimulatedSlots:
    """Counts down the slots a dry run would have taken, in priority order."""

    def __init__(self, cap: int, held: int):
        self.free = max(cap - held, 0)

    def take(self) -> bool:
        if self.free <= 0:
            return False
        self.free -= 1
        return True
