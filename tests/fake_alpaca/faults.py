"""Fault injection for the fake Alpaca server (see :mod:`.server` for the kinds)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

FAULT_KINDS = ("429", "500", "503", "504", "504_after", "slow", "drop", "drop_after")


@dataclass
class Fault:
    kind: str
    retry_after: str | None = "1"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {FAULT_KINDS}")


@dataclass
class _Rule:
    fault: Fault
    method: str | None
    path: str | None
    times: int


class FaultPlan:
    """Which request fails how: by number, by queued rule, or at a seeded rate."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._at: dict[int, Fault] = {}
        self._rules: list[_Rule] = []
        self._rate = 0.0
        self._rate_kinds: tuple[str, ...] = FAULT_KINDS
        self._rate_retry_after = "1"
        self._random = random.Random(seed)

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        retry_after: str | None = "1",
    ) -> None:
        """The next ``times`` requests matching method/path template get ``kind``."""
        with self._lock:
            self._rules.append(
                _Rule(Fault(kind, retry_after), method and method.upper(), path, times)
            )

    def inject_at(self, n: int, kind: str, *, retry_after: str | None = "1") -> None:
        """Request number ``n`` (1-based, counted since the server started) gets ``kind``."""
        with self._lock:
            self._at[n] = Fault(kind, retry_after)

    def fault_rate(
        self,
        rate: float,
        kinds: tuple[str, ...] = FAULT_KINDS,
        *,
        seed: int | None = None,
        retry_after: str = "1",
    ) -> None:
        """Each request fails with probability ``rate``, kind drawn from ``kinds`` (seeded)."""
        for kind in kinds:
            Fault(kind)
        with self._lock:
            self._rate, self._rate_kinds, self._rate_retry_after = rate, kinds, retry_after
            if seed is not None:
                self._random = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self._at.clear()
            self._rules.clear()
            self._rate = 0.0

    def pick(self, n: int, method: str, template: str) -> Fault | None:
        with self._lock:
            return self._pick(n, method, template)

    def _pick(self, n: int, method: str, template: str) -> Fault | None:
        if n in self._at:
            return self._at.pop(n)
        for rule in self._rules:
            if (rule.method in (None, method)) and (rule.path in (None, template)):
                rule.times -= 1
                if rule.times <= 0:
                    self._rules.remove(rule)
                return rule.fault
        if self._rate > 0 and self._random.random() < self._rate:
            return Fault(self._random.choice(self._rate_kinds), self._rate_retry_after)
        return None
