"""The live-stream server `make run` starts: the app under gunicorn's gevent worker.

Many open streams in one process (more than a threaded page worker would give them),
page requests still answered meanwhile, and every stream gets the end of its generation.
"""
from __future__ import annotations

import json
import threading

import pytest
import requests

from app.generation.streams import GenerationStream
from tests.generation.helpers import submit
from tests.stream_server import running_stream_server

STREAMS = 60  # more than a gthread worker's default stream budget (WEB_THREADS // 2 = 32)


@pytest.fixture
def stream_server(base_env, tmp_root):
    with running_stream_server(base_env, tmp_root, STREAM_MAX_PER_USER=str(STREAMS),
                               STREAM_MAX_PER_GENERATION=str(STREAMS)) as url:
        yield url


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
