"""Which runs a backtest makes: policies by name, sweep grids, ranking.

A sweep ``key=v1,v2`` multiplies every selected policy by the values; several
sweeps make a grid (their product). Runs are sequential (the engine is fast,
and one process keeps a single copy of the bars); ``progress`` is told how
many trading days each run has simulated, for a progress bar.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from rebalancerd.backtest.data import Bars, Entry
from rebalancerd.backtest.engine import run_policy
from rebalancerd.backtest.metrics import RANKABLE, Metrics, compute
from rebalancerd.backtest.policy import Policy, presets, with_override
from rebalancerd.backtest.records import RunResult
from rebalancerd.errors import UsageError

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Run:
    policy: Policy
    params: dict[str, str]
    result: RunResult
    metrics: Metrics

    @property
    def name(self) -> str:
        return self.policy.display


@dataclass(frozen=True)
class Sweep:
    key: str
    values: tuple[str, ...]


@dataclass
class Options:
    cash: Decimal = Decimal(100_000)
    default_weight: Decimal = Decimal("0.10")
    sweeps: Sequence[Sweep] = field(default_factory=tuple)


def parse_sweep(text: str) -> Sweep:
    key, sep, values = text.partition("=")
    items = tuple(v.strip() for v in values.split(",") if v.strip())
    if not sep or not key.strip() or not items:
        raise UsageError(f"--sweep {text!r}: use key=v1,v2,... e.g. profit_take_pct=20,25,30")
    return Sweep(key.strip(), items)


def select_policies(names: Sequence[str], accounts: Mapping[str, Policy]) -> list[Policy]:
    """Named policies (presets first, then configured accounts); default: all of them."""
    known = presets() | {k: v for k, v in accounts.items() if k not in presets()}
    if not names:
        return list(known.values())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"--policy {unknown[0]!r}: not a preset or configured account "
            f"(known: {', '.join(known)}; accounts come from --config)"
        )
    return [known[n] for n in dict.fromkeys(names)]


def grid(
    policies: Sequence[Policy], sweeps: Sequence[Sweep]
) -> list[tuple[Policy, dict[str, str]]]:
    """Every policy × every combination of swept values, validated before anything runs."""
    if not sweeps:
        return [(p, {}) for p in policies]
    out = []
    for policy in policies:
        for combo in itertools.product(*(s.values for s in sweeps)):
            variant, params = policy, {}
            for sweep, value in zip(sweeps, combo, strict=True):
                variant = with_override(variant, sweep.key, value)
                params[sweep.key] = value
            label = policy.name + " " + " ".join(f"{k}={v}" for k, v in params.items())
            out.append((_relabel(variant, label), params))
    return out


def _relabel(policy: Policy, label: str) -> Policy:
    return replace(policy, label=label)


def run_all(
    bars: Bars,
    entries: list[Entry],
    variants: Sequence[tuple[Policy, dict[str, str]]],
    options: Options,
    progress: Progress | None = None,
) -> list[Run]:
    runs = []
    for policy, params in variants:
        result = run_policy(
            bars,
            entries,
            policy,
            cash=options.cash,
            default_weight=options.default_weight,
            progress=progress,
        )
        runs.append(Run(policy, params, result, compute(result)))
    return runs


def rank(runs: Sequence[Run], metric: str) -> list[Run]:
    """Best first by ``metric`` (higher is better; runs without a value last)."""
    if metric not in RANKABLE:
        raise UsageError(f"--rank-by {metric!r}: choose one of {', '.join(RANKABLE)}")

    def key(run: Run) -> tuple[bool, float]:
        value = getattr(run.metrics, metric)
        return (value is None, -(value or 0.0))

    return sorted(runs, key=key)
