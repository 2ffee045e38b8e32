"""The systemd unit (deploy/rebalancerd.service), checked offline with systemd-analyze.

``systemd-analyze verify`` exits 0 on an unknown or misspelt key and only warns on
stderr, so the test fails on *any* output. Verify also insists that every
``ExecStart*=`` binary exists; the unit points at the production venv
(``/opt/rebalancerd/bin/rebalancerd``), which CI does not have, so the test
verifies a copy whose binary path is replaced by an executable stub in a temporary
directory. Nothing else in the copy changes.

``systemd-analyze security --offline=yes`` scores the sandboxing from 0 (locked
down) to 10 (exposed); the score is printed so CI logs record it, and must stay at
or below 2.0 (it measured 1.1 when written: the remaining exposure is network
access, which the broker API needs).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from rebalancerd.config.models import ResearchConfig

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "rebalancerd.service"
PROD_BINARY = "/opt/rebalancerd/bin/rebalancerd"
MAX_EXPOSURE = Decimal("2.0")

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is not installed (Debian/Ubuntu package: systemd)",
)


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every directive, in order; repeated keys kept."""
    section = ""
    found: list[tuple[str, str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def service(key: str) -> list[str]:
    return [v for s, k, v in directives(UNIT.read_text()) if s == "Service" and k == key]


def seconds(value: str) -> int:
    """A systemd time span in plain seconds or with one unit (``360``, ``6min``)."""
    match = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", value)
    assert match, f"unexpected time span {value!r}"
    return int(match[1]) * (60 if match[2] in ("min", "m") else 1)


def unit_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit in tmp_path with the production binary replaced by an existing stub."""
    stub = tmp_path / "bin" / "rebalancerd"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copy = tmp_path / "rebalancerd.service"
    copy.write_text((text or UNIT.read_text()).replace(PROD_BINARY, str(stub)))
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False
    )


@needs_systemd_analyze
def test_verify_prints_nothing(tmp_path: Path) -> None:
    result = analyze("verify", str(unit_copy(tmp_path)))
    print(f"systemd-analyze verify: exit {result.returncode}, stderr {result.stderr!r}")
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout == ""


@needs_systemd_analyze
def test_verify_check_catches_a_misspelt_key(tmp_path: Path) -> None:
    """The check above is not vacuous: a typo exits 0 but warns on stderr."""
    text = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict")
    result = analyze("verify", str(unit_copy(tmp_path, text)))
    assert result.returncode == 0
    assert "Unknown key 'ProtectSystm'" in result.stderr


@needs_systemd_analyze
def test_security_exposure_is_low(tmp_path: Path) -> None:
    result = analyze("security", "--offline=yes", str(unit_copy(tmp_path)))
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if "Overall exposure level" in ln)
    print(line)
    match = re.search(r"exposure level for \S+: (\d+\.\d+)", line)
    assert match, line
    assert Decimal(match[1]) <= MAX_EXPOSURE


def test_unit_has_the_required_settings() -> None:
    required = {
        "Type": "notify",
        "Restart": "on-failure",
        "DynamicUser": "yes",
        "StateDirectory": "rebalancerd",
        "ConfigurationDirectory": "rebalancerd",
        "EnvironmentFile": "-/etc/rebalancerd/rebalancerd.env",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
        "ExecReload": "/bin/kill -HUP $MAINPID",
    }
    for key, value in required.items():
        assert service(key) == [value], key
    assert "@system-service" in service("SystemCallFilter")
    assert set(service("RestrictAddressFamilies")[0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert seconds(service("WatchdogSec")[0]) > 0


def test_unit_runs_migrations_then_the_daemon() -> None:
    config = "--config /etc/rebalancerd/rebalancerd.toml"
    assert service("ExecStartPre") == [f"{PROD_BINARY} {config} migrate"]
    assert service("ExecStart") == [f"{PROD_BINARY} {config} run"]


def test_stop_timeout_outlasts_the_longest_job() -> None:
    """SIGTERM lets a research command run out its default timeout before SIGKILL."""
    longest = ResearchConfig.model_fields["timeout_seconds"].default
    assert seconds(service("TimeoutStopSec")[0]) > longest
