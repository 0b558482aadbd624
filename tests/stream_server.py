"""The live-stream server as `make run` starts it (gunicorn gevent, scripts/run.py stream_server()),
in a subprocess for tests: `with running_stream_server(base_env, tmp_root) as url: ...`."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

from bench.stack import free_port, make_run_module

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def running_stream_server(base_env: dict, tmp_root: Path, **settings: str) -> Iterator[str]:
    """Start it on a free port with the tests' settings (plus `settings`); yield its base URL."""
    # A free port of its own: make run's PORT+1 may be some other connection's port here.
    env = {**os.environ, **base_env, **settings, "PORT": str(free_port()), "STREAM_PORT": str(free_port()),
           "PYTHONUNBUFFERED": "1"}
    command = make_run_module().stream_server(env, "127.0.0.1")
    log_path = tmp_root / "stream-server.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(shlex.split(command), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{env['STREAM_PORT']}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"the stream server exited:\n{log_path.read_text()[-3000:]}")
            try:
                requests.get(base + "/login", timeout=5)
                break
            except requests.RequestException:
                threading.Event().wait(0.1)
        else:
            pytest.fail(f"the stream server did not answer:\n{log_path.read_text()[-3000:]}")
        yield base
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to its process group, SIGKILL if it lingers; nothing to do if it already exited."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
