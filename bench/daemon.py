"""Time-to-READY and idle RSS of ``rebalancerd run`` (``python -m bench.daemon``).

Starts the daemon as a real process on the example config (SQLite + simulated
broker) with a fake ``NOTIFY_SOCKET``; times spawn → READY=1, cold (fresh
database: migrations, then a catch-up) and warm (nothing to catch up); samples
VmRSS from /proc after the daemon has idled; prints numbers, asserts nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: A Tuesday evening after the guard: the only pending work is one catch-up.
NOW = "2026-12-01T20:00:00"
IDLE_S = 5.0


def _config(tmp: Path) -> Path:
    text = (REPO / "config" / "rebalancerd.example.toml").read_text(encoding="utf-8")
    text = text.replace("sqlite:///var/rebalancerd.db", f"sqlite:///{tmp / 'r.db'}")
    text = text.replace('"config/demo-portfolio', f'"{REPO}/config/demo-portfolio')
    path = tmp / "rebalancerd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def start_once(tmp: Path, config: Path) -> tuple[float, int]:
    """(seconds from spawn to READY=1, idle RSS KiB)."""
    sock_path = tmp / "notify.sock"
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(60)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REBALANC")}
    env["NOTIFY_SOCKET"] = str(sock_path)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rebalancerd", "--config", str(config), "run", "--now", NOW],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        while "READY=1" not in sock.recv(4096).decode().split("\n"):
            pass
        ready = time.perf_counter() - t0
        time.sleep(IDLE_S)
        rss = _rss_kib(proc.pid)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        if code != 0:
            print(f"daemon exited {code}")
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    return ready, rss


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rbd-bench-", dir="/tmp") as name:
        tmp = Path(name)
        config = _config(tmp)
        cold, cold_rss = start_once(tmp, config)
        warm = []
        rss = []
        for _ in range(3):
            ready, kib = start_once(tmp, config)
            warm.append(ready)
            rss.append(kib)
    print(f"daemon time-to-READY cold (fresh SQLite, migrations): {cold * 1000:.0f} ms")
    print(f"daemon time-to-READY warm (best of 3): {min(warm) * 1000:.0f} ms")
    print(f"daemon idle RSS after catch-up, cold start: {cold_rss / 1024:.1f} MiB")
    print(f"daemon idle RSS, warm starts: {min(rss) / 1024:.1f}-{max(rss) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
