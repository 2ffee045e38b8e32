"""What the Docker image runs, run here without Docker: wheel, fresh venv, entrypoint, signals.

CI has no Docker engine, so this test repeats the image's steps on the host:

1. the build stage: the files the Dockerfile COPYs go into a scratch build context
   and ``pip wheel`` builds the project's wheel from it (``--no-deps``: see 3);
2. the runtime stage: ``python -m venv`` and then the Dockerfile's own ``pip install``
   command, read from the Dockerfile, with ``/wheels`` pointed at step 1's output;
3. the dependencies: installing them into a fresh venv from the package index would
   take minutes of CI's budget (2 cores, 90 minutes in all) and need the network.
   Instead a ``.pth`` file makes the fresh venv see the project venv's site-packages
   *after* its own, and the install adds ``--no-deps``. The project itself is
   imported from the freshly installed wheel (asserted), so a module or migration
   missing from the wheel fails here; only the resolution of dependency versions is
   not exercised, which ``pip install -e .`` of the project venv already does;
4. the container: ``deploy/entrypoint.sh run`` (ENTRYPOINT + CMD) with the image's
   environment, against a temporary state directory (the VOLUME) holding SQLite, and
   a fake systemd ``NOTIFY_SOCKET`` (a Unix datagram socket). It must migrate, send
   READY=1 and WATCHDOG=1, pass ``rebalancerd healthcheck`` (the HEALTHCHECK) and
   exit 0 on SIGTERM (``docker stop``).

Durations (wheel, venv, time to READY) are printed, never asserted.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rebalancerd.cli.main import cli
from tests.integration.test_deploy_docker import args_of, parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
#: A generous deadline for each wait, so a broken daemon fails instead of hanging.
DEADLINE_SECONDS = 90.0

pytestmark = pytest.mark.skipif(
    not {"run", "healthcheck", "migrate"} <= set(cli.commands),
    reason="`rebalancerd run` / `healthcheck` are not implemented yet (the daemon issue)",
)


@dataclass(frozen=True)
class ImageVenv:
    venv: Path
    bin: Path
    wheel: Path


def build_context(dest: Path) -> Path:
    """The files the build stage COPYs (what `docker build` would send), nothing else."""
    build = parse_dockerfile(DOCKERFILE.read_text())[0]
    dest.mkdir()
    for copy in args_of(build, "COPY"):
        *sources, _ = [w for w in copy.split() if not w.startswith("--")]
        for source in sources:
            src = ROOT / source.rstrip("/")
            if src.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(src, dest / src.name, ignore=ignore)
            else:
                shutil.copy2(src, dest / src.name)
    return dest


def install_command(wheels: Path) -> list[str]:
    """The runtime stage's ``pip install`` arguments, /wheels replaced, globs expanded."""
    runtime = parse_dockerfile(DOCKERFILE.read_text())[-1]
    (run,) = [a for a in args_of(runtime, "RUN") if "pip install" in a]
    match = re.search(r"/opt/rebalancerd/bin/pip install (.+?)(?: &&|$)", run)
    assert match, run
    args: list[str] = []
    for word in shlex.split(match[1]):
        word = word.replace("/wheels", str(wheels))
        args.extend(sorted(glob.glob(word)) if "*" in word else [word])
    return args


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> ImageVenv:
    tmp = tmp_path_factory.mktemp("image")
    wheels = tmp / "wheels"
    started = time.perf_counter()
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "-q"),
            *("--wheel-dir", str(wheels), str(build_context(tmp / "ctx"))),
        ],
        check=True,
        timeout=600,
    )
    built = time.perf_counter()
    venv = tmp / "opt-rebalancerd"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "zz_project_venv_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = [str(venv / "bin" / "pip"), "install", "-q", *install_command(wheels), "--no-deps"]
    subprocess.run(pip, check=True, timeout=600)
    print(
        f"\nimage smoke: wheel built in {built - started:.1f} s, "
        f"venv + install in {time.perf_counter() - built:.1f} s"
    )
    (wheel,) = wheels.glob("rebalancerd-*.whl")
    return ImageVenv(venv=venv, bin=venv / "bin", wheel=wheel)


def test_the_venv_runs_the_wheel_not_the_checkout(image_venv: ImageVenv) -> None:
    code = (
        "import json, rebalancerd, rebalancerd.migrations; "
        "from importlib.resources import files; "
        "print(rebalancerd.__file__); "
        "print(json.dumps([p.name for p in files('rebalancerd.migrations.versions').iterdir()]))"
    )
    out = subprocess.run(
        [str(image_venv.bin / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=image_venv.venv,
    ).stdout.splitlines()
    assert Path(out[0]).is_relative_to(image_venv.venv)
    shipped = sorted(n for n in json.loads(out[1]) if n.endswith(".py") and n[0].isdigit())
    in_repo = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    assert shipped == in_repo
    assert (image_venv.bin / "rebalancerd").is_file()


# ---------------------------------------------------------------- the container


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: a Unix socket path must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="rbd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def image_layout(root: Path) -> tuple[Path, Path]:
    """/etc/rebalancerd (example config + demo portfolios) and the state volume."""
    etc = root / "etc"
    (etc / "config").mkdir(parents=True)
    shutil.copy2(ROOT / "config" / "rebalancerd.example.toml", etc / "rebalancerd.toml")
    for name in ("demo-portfolio.json", "demo-portfolio-shorgan.json"):
        shutil.copy2(ROOT / "config" / name, etc / "config" / name)
    state = root / "state"
    state.mkdir(mode=0o700)
    return etc, state


def image_env(venv: ImageVenv, etc: Path, state: Path, notify: Path) -> dict[str, str]:
    """The runtime stage's ENV with paths moved into the temporary layout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REBALANCING_", "REBALANCERD_", "ENABLE_AUTO", "APCA_", "PYTHON"))
    }
    env.update(
        PATH=f"{venv.bin}:/usr/local/bin:/usr/bin:/bin",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        REBALANCERD_CONFIG=str(etc / "rebalancerd.toml"),
        REBALANCERD_DATABASE_URL=f"sqlite:///{state / 'rebalancerd.db'}",
        NOTIFY_SOCKET=str(notify),
        WATCHDOG_USEC="2000000",
        TMPDIR=str(state),
    )
    return env


def wait_for(
    sock: socket.socket, wanted: str, seen: list[str], proc: subprocess.Popen[bytes]
) -> None:
    """Read notify datagrams until one holds the line ``wanted``; fail if the daemon exits."""
    end = time.monotonic() + DEADLINE_SECONDS
    sock.settimeout(0.5)
    while wanted not in seen:
        assert proc.poll() is None, f"the daemon exited ({proc.returncode}) before {wanted}"
        assert time.monotonic() < end, f"no {wanted} on NOTIFY_SOCKET: {seen}"
        try:
            seen.extend(sock.recv(4096).decode().splitlines())
        except TimeoutError:
            continue


def healthcheck_until_ok(venv: ImageVenv, env: dict[str, str], cwd: Path) -> str:
    end = time.monotonic() + DEADLINE_SECONDS
    while True:
        result = subprocess.run(
            [str(venv.bin / "rebalancerd"), "healthcheck"],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode == 0 or time.monotonic() > end:
            assert result.returncode == 0, result.stderr
            return result.stdout.strip()
        time.sleep(0.5)


def test_entrypoint_migrates_notifies_is_healthy_and_stops_on_sigterm(
    image_venv: ImageVenv, short_tmp: Path
) -> None:
    etc, state = image_layout(short_tmp)
    notify = short_tmp / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    env = image_env(image_venv, etc, state, notify)
    out, err = (short_tmp / "stdout.log").open("w"), (short_tmp / "stderr.log").open("w")
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "run"], env=env, cwd=state, stdout=out, stderr=err
    )
    logs = ""
    try:
        seen: list[str] = []
        wait_for(sock, "READY=1", seen, proc)
        ready = time.perf_counter() - started
        wait_for(sock, "WATCHDOG=1", seen, proc)
        health = healthcheck_until_ok(image_venv, env, state)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=DEADLINE_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
        out.close()
        err.close()
        logs = (short_tmp / "stdout.log").read_text() + (short_tmp / "stderr.log").read_text()
        print(f"\ndaemon output (last 3000 chars):\n{logs[-3000:]}")
    print(f"\nimage smoke: READY=1 after {ready:.2f} s (migrate + start); healthcheck: {health}")
    assert code == 0, logs[-2000:]
    assert (state / "rebalancerd.db").is_file()
    assert "Traceback" not in logs
