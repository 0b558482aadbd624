"""`make run`'s supervisor (scripts/run.py + honcho): no process of ours outlives it.

The whole stack is started as `make run` starts it (embedded Redis, gunicorn, a pool of two
worker processes; the fake LLM stands in for the local model), then the supervisor is stopped
by a real signal, SIGKILL included, and every process it had started must be gone.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker

from workers.embedded_redis import free_port

REPO = Path(__file__).resolve().parents[2]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _describe(pids) -> str:
    lines = []
    for pid in pids:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        lines.append(f"{pid}: {command[:120]}")
    return "; ".join(lines)


def wait_until(condition, what, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            what = what() if callable(what) else what
            pytest.fail(f"timed out waiting for {what}; make run's output:\n{log.read_text()[-5000:]}")
        time.sleep(0.1)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_no_process_outlives_the_supervisor(how, fake_llm, tmp_path):
    web_port, redis_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'supervised.db'}", EMBEDDED_REDIS_PORT=str(redis_port),
        PORT=str(web_port), OPENAI_BASE_URL=fake_llm.base_url, OPENAI_API_KEY="test-key",
        MAIL_OUTBOX=str(tmp_path / "outbox"), WEB_CONCURRENCY="1", WEB_THREADS="2",
        RQ_WORKERS="2", WORKER_THREADS="2", WORKER_GRACE="3", PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        supervisor = subprocess.Popen([sys.executable, "scripts/run.py"], cwd=REPO, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
    ours: set[int] = set()
    try:
        redis = Redis(port=redis_port)
        wait_until(lambda: port_open(redis_port) and port_open(web_port) and Worker.count(connection=redis) >= 2,
                   "redis, web and two workers", 120, log)
        ours = descendants(supervisor.pid)
        assert len(ours) >= 6  # honcho's helpers, redis, gunicorn and its worker, the pool and its 2 workers

        if how == "SIGINT":  # Ctrl-C: the terminal signals the supervisor's whole process group
            os.killpg(supervisor.pid, signal.SIGINT)
        else:
            supervisor.send_signal(getattr(signal, how))
        supervisor.wait(30)
        wait_until(lambda: not any(alive(pid) for pid in ours),
                   lambda: f"every process to exit (left: {_describe(p for p in ours if alive(p))})", 40, log)
    finally:
        for pid in ours | {supervisor.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
