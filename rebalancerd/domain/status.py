"""Decision status transitions as a table (SPEC §4).

The store refuses any move this table does not list, so a bug elsewhere cannot
turn a filled exit back into an approved one and send it twice.
"""

from __future__ import annotations

from types import MappingProxyType

from rebalancerd.domain.model import Status

_S = Status

TRANSITIONS: MappingProxyType[Status, frozenset[Status]] = MappingProxyType(
    {
        _S.PROPOSED: frozenset({_S.PENDING_APPROVAL, _S.APPROVED, _S.SKIPPED, _S.DRY_RUN}),
        _S.PENDING_APPROVAL: frozenset({_S.APPROVED, _S.REJECTED, _S.EXPIRED, _S.CANCELLED}),
        _S.APPROVED: frozenset({_S.SUBMITTED, _S.REJECTED, _S.CANCELLED, _S.EXPIRED, _S.SKIPPED}),
        _S.SUBMITTED: frozenset(
            {_S.FILLED, _S.PARTIALLY_FILLED, _S.REJECTED, _S.CANCELLED, _S.EXPIRED}
        ),
        _S.PARTIALLY_FILLED: frozenset({_S.FILLED}),
        _S.FILLED: frozenset(),
        _S.REJECTED: frozenset(),
        _S.CANCELLED: frozenset(),
        _S.EXPIRED: frozenset(),
        _S.SKIPPED: frozenset(),
        _S.DRY_RUN: frozenset(),
    }
)

#: Statuses that hold a weekly slot (SPEC §3).
SLOT_HOLDING: frozenset[Status] = frozenset(
    {_S.PENDING_APPROVAL, _S.APPROVED, _S.SUBMITTED, _S.FILLED, _S.PARTIALLY_FILLED}
)

#: Statuses that make a position's decision "open" (SPEC §14): no new one until it ends.
OPEN: frozenset[Status] = frozenset({_S.PROPOSED, _S.PENDING_APPROVAL, _S.APPROVED, _S.SUBMITTED})

#: Ends that give a slot back and re-arm a profit-take level (SPEC §3, §14).
RELEASING: frozenset[Status] = frozenset({_S.REJECTED, _S.CANCELLED, _S.EXPIRED, _S.SKIPPED})

FINAL: frozenset[Status] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def can_transition(current: Status, new: Status) -> bool:
    return new in TRANSITIONS[current]
