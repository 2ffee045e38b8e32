"""The CLI as a process: a copy of the example config on a temporary SQLite file.

Every command runs as ``python -m rebalancerd`` in a subprocess, with ``--now``
fixing the time, so what is tested is what an operator types.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "rebalancerd.example.toml"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def example_config(tmp: Path, extra: str = "", replace: dict[str, str] | None = None) -> Path:
    """The example config with its database and portfolio paths made absolute."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("sqlite:///var/rebalancerd.db", f"sqlite:///{tmp / 'rebalancerd.db'}")
    text = text.replace('"config/demo-portfolio', f'"{REPO}/config/demo-portfolio')
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp / "rebalancerd.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


Runner = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path) -> Runner:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REBALANCING_", "REBALANCERD_", "ENABLE_AUTO", "APCA_"))
    }
    env["REBALANCERD_CONFIG"] = str(example_config(tmp_path))

    def run(*args: str, env_extra: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "rebalancerd", *args],
            capture_output=True,
            text=True,
            env={**env, **(env_extra or {})},
            cwd=tmp_path,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
