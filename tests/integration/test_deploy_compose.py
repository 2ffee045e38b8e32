"""deploy/docker-compose.yml, parsed (no Docker engine or compose plugin here).

Checks the properties the deployment promises: PostgreSQL on a pinned major with
a ``pg_isready`` health check gating the daemon, a stop grace period longer than
the longest job, keys from ``.env`` only, a state volume, and nothing published
beyond 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebalancerd.config.models import ResearchConfig

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
SECRET_WORDS = re.compile(r"KEY|SECRET|PASSWORD|TOKEN", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    found = compose["services"][name]
    assert isinstance(found, dict)
    return found


def duration_seconds(value: str) -> int:
    """A compose duration such as ``6m``, ``90s`` or ``5m30s``."""
    parts = re.findall(r"(\d+)(h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, value
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def test_postgres_is_a_pinned_major_with_pg_isready(compose: dict[str, Any]) -> None:
    pg = service(compose, "postgres")
    assert re.fullmatch(r"postgres:\d+(\.\d+)?(-[a-z0-9]+)?", pg["image"]), pg["image"]
    test = pg["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "pg_isready"
    assert "ports" not in pg, "PostgreSQL is reached over the compose network only"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])


def test_daemon_waits_for_a_healthy_database(compose: dict[str, Any]) -> None:
    daemon = service(compose, "rebalancerd")
    assert daemon["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    url = daemon["environment"]["REBALANCERD_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in url


def test_stop_grace_outlasts_the_longest_job(compose: dict[str, Any]) -> None:
    daemon = service(compose, "rebalancerd")
    longest = ResearchConfig.model_fields["timeout_seconds"].default
    assert duration_seconds(daemon["stop_grace_period"]) > longest
    assert daemon.get("stop_signal", "SIGTERM") == "SIGTERM"


def test_keys_come_from_env_file_only(compose: dict[str, Any]) -> None:
    daemon = service(compose, "rebalancerd")
    assert daemon["env_file"] in (".env", [".env"])
    for svc in compose["services"].values():
        for name, value in (svc.get("environment") or {}).items():
            if SECRET_WORDS.search(name):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value)), name
        url = str((svc.get("environment") or {}).get("REBALANCERD_DATABASE_URL", ""))
        if url:
            password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
            assert password.startswith("${"), "the database password must be interpolated"


def test_interpolated_variables_are_in_the_env_example() -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    documented = set(re.findall(r"^#?\s*(\w+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert used <= documented


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_env_file_is_never_committed() -> None:
    result = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/.env"], cwd=ROOT, check=False, timeout=30
    )
    if result.returncode == 128:
        pytest.skip("not a git checkout")
    assert result.returncode == 0, "deploy/.env must be ignored by git"


def test_state_volume_is_mounted_and_declared(compose: dict[str, Any]) -> None:
    daemon = service(compose, "rebalancerd")
    assert "state:/var/lib/rebalancerd" in daemon["volumes"]
    assert "state" in compose["volumes"]
    assert "pgdata" in compose["volumes"]


def test_ports_are_bound_to_localhost_only(compose: dict[str, Any]) -> None:
    published = [(n, p) for n, s in compose["services"].items() for p in s.get("ports", [])]
    assert published, "the health port is published"
    for name, port in published:
        assert isinstance(port, str), f"{name}: use the short 'HOST_IP:HOST:CONTAINER' form"
        assert port.startswith("127.0.0.1:"), f"{name}: {port}"


def test_daemon_is_built_from_the_repository(compose: dict[str, Any]) -> None:
    build = service(compose, "rebalancerd")["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert (context / build["dockerfile"]) == ROOT / "Dockerfile"
    assert service(compose, "rebalancerd")["init"] is True
