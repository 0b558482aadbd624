"""The live-stream server `make run` starts: the app under gunicorn's gevent worker.

Many open streams in one process (more than a threaded page worker would give them),
page requests still answered meanwhile, and every stream gets the end of its generation.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from app.generation.streams import GenerationStream
from bench.stack import free_port, make_run_module
from tests.generation.helpers import submit

REPO = Path(__file__).resolve().parents[2]
STREAMS = 60  # more than a gthread worker's default stream budget (WEB_THREADS // 2 = 32)


@pytest.fixture
def stream_server(base_env, tmp_root):
    env = {**os.environ, **base_env, "PORT": str(free_port()), "STREAM_MAX_PER_USER": str(STREAMS), "STREAM_MAX_PER_GENERATION": str(STREAMS),
           "PYTHONUNBUFFERED": "1"}
    command = make_run_module().stream_server(env, "127.0.0.1")
    log_path = tmp_root / "stream-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(shlex.split(command), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{env['STREAM_PORT']}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"the stream server exited:\n{log_path.read_text()[-3000:]}")
            try:
                requests.get(base + "/up", timeout=5)
                break
            except requests.RequestException:
                threading.Event().wait(0.1)
        else:
            pytest.fail(f"the stream server did not answer:\n{log_path.read_text()[-3000:]}")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_the_gevent_stream_server_holds_many_streams_and_still_serves_pages(app, client, login, stream_server):
    login()
    generation_id = submit(client, app, "x-post", 1)
    stream = GenerationStream(app.extensions["redis"], generation_id)
    stream.started()
    cookie = client.get_cookie("session").value
    firsts, ends, errors = [], [], []
    opened = threading.Barrier(STREAMS + 1)

    def follow() -> None:
        try:
            with requests.get(f"{stream_server}/generations/{generation_id}/stream", cookies={"session": cookie},
                              headers={"Origin": "http://127.0.0.1:5000"}, stream=True, timeout=60) as resp:
                if resp.status_code != 200:
                    raise AssertionError(f"{resp.status_code} {resp.text[:300]}")
                lines = resp.iter_lines()
                firsts.append((resp.status_code, resp.headers.get("Access-Control-Allow-Origin"),
                               next(line for line in lines if line.startswith(b"data:"))))
                opened.wait()
                entries = []
                for line in lines:
                    if line.startswith(b"data:"):
                        entries += json.loads(line[5:])
                        if entries[-1][0] == "done":
                            break
                ends.append(entries)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
            opened.abort()

    threads = [threading.Thread(target=follow, daemon=True) for _ in range(STREAMS)]
    for thread in threads:
        thread.start()
    try:
        opened.wait(timeout=60)
    except threading.BrokenBarrierError:
        pytest.fail(f"streams did not open: {errors[:3]}")
    # Every stream is open and waiting: pages are still served, by this very process.
    assert requests.get(f"{stream_server}/login", timeout=30).status_code == 200
    stream.token(0, "Hello")
    stream.finish("done")
    for thread in threads:
        thread.join(60)
    assert not errors
    assert {first for first in firsts} == {(200, "http://127.0.0.1:5000", b'data: [["started",{}]]')}
    assert len(ends) == STREAMS
    assert all(end == [["token", {"v": 0, "t": "Hello"}], ["done", {}]] for end in ends)
