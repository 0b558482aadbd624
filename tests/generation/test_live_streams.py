"""Live streams (SSE): one event per batch, bounds per user / generation / process, leases
that expire, CORS for the stream server's port, and streams that end when their user is suspended."""
from __future__ import annotations

import json
import re
import time

import pytest

from app.auth.models import User
from app.extensions import db
from app.generation.streams import GenerationStream
from tests.generation.helpers import submit


def _events(body: str) -> list[tuple[str, str]]:
    """(event name, data) of each SSE event in a body."""
    return re.findall(r"^event: (\S+)\ndata: (.*)$", body, re.M)


def _running(app, client, login, variants: int = 1) -> tuple[int, int]:
    """A logged-in user's queued generation whose stream has begun (no job runs)."""
    user_id = login()
    generation_id = submit(client, app, "x-post", variants)
    with app.app_context():
        GenerationStream(app.extensions["redis"], generation_id).started()
    return user_id, generation_id


def test_one_event_per_read_carries_the_batch_in_order(app, client, login):
    _, generation_id = _running(app, client, login, variants=2)
    with app.app_context():
        stream = GenerationStream(app.extensions["redis"], generation_id)
        stream.token(0, "Hel")
        stream.token(1, "Good ")
        stream.token(0, 'lo "quoted"\nline')
        stream.reset(1)
        stream.finish("done")
        last = app.extensions["redis"].xrevrange(f"gen:{generation_id}", count=1)[0][0].decode()
    body = client.get(f"/generations/{generation_id}/stream").get_data(as_text=True)
    assert body.startswith("retry: 2000\n\n")
    events = _events(body)
    assert [name for name, _ in events] == ["batch"]
    assert json.loads(events[0][1]) == [
        ["started", {}], ["token", {"v": 0, "t": "Hel"}], ["token", {"v": 1, "t": "Good "}],
        ["token", {"v": 0, "t": 'lo "quoted"\nline'}], ["reset", {"v": 1}], ["done", {}]]
    assert re.findall(r"^id: (\S+)$", body, re.M) == [last]


def _open(client, generation_id: int):
    """Open a stream without reading its body (the connection stays open)."""
    return client.get(f"/generations/{generation_id}/stream", buffered=False)


def test_streams_per_user_are_capped_and_freed_on_close(app, client, login, monkeypatch):
    monkeypatch.setitem(app.config, "STREAM_MAX_PER_USER", 2)
    user_id, first = _running(app, client, login)
    second = submit(client, app, "x-post", 1)
    open_streams = [_open(client, first), _open(client, second)]
    assert [r.status_code for r in open_streams] == [200, 200]
    refused = _open(client, first)
    assert refused.status_code == 429
    assert "Too many live streams are open for your account (at most 2)" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"]
    # Closing a stream (the browser leaves) frees its slot, even before its body was read.
    open_streams.pop().close()
    again = _open(client, second)
    assert again.status_code == 200
    for response in open_streams + [again]:
        response.close()
    with app.app_context():
        assert app.extensions["redis"].zcard(f"sse:user:{user_id}") == 0


def test_streams_per_generation_are_capped(app, client, login, monkeypatch):
    monkeypatch.setitem(app.config, "STREAM_MAX_PER_GENERATION", 1)
    _, generation_id = _running(app, client, login)
    held = _open(client, generation_id)
    refused = _open(client, generation_id)
    assert (held.status_code, refused.status_code) == (200, 429)
    assert "for this generation (at most 1)" in refused.get_data(as_text=True)
    held.close()


def test_streams_per_process_keep_threads_for_pages(app, client, login, monkeypatch):
    monkeypatch.setitem(app.config, "STREAM_MAX_PER_PROCESS", 1)
    _, generation_id = _running(app, client, login)
    held = _open(client, generation_id)
    refused = _open(client, generation_id)
    assert refused.status_code == 429 and "every few seconds" in refused.get_data(as_text=True)
    assert client.get("/templates").status_code == 200
    held.close()
    assert _open(client, generation_id).status_code == 200


def test_a_crashed_process_leaves_leases_that_expire(app, client, login, monkeypatch):
    """Slots of a process that died without releasing them stop counting once their lease runs out."""
    monkeypatch.setitem(app.config, "STREAM_MAX_PER_USER", 1)
    user_id, generation_id = _running(app, client, login)
    redis = app.extensions["redis"]
    redis.zadd(f"sse:user:{user_id}", {"live-lease-of-a-live-process": time.time() + 3600})
    assert _open(client, generation_id).status_code == 429
    redis.delete(f"sse:user:{user_id}")
    redis.zadd(f"sse:user:{user_id}", {"lease-of-a-dead-process": time.time() - 1})
    response = _open(client, generation_id)
    assert response.status_code == 200
    assert 0 < redis.ttl(f"sse:user:{user_id}") <= app.config["STREAM_LEASE_SECONDS"] + 60
    assert redis.zrange(f"sse:user:{user_id}", 0, -1) != [b"lease-of-a-dead-process"]
    response.close()


def test_an_open_stream_ends_when_its_user_is_suspended(app, client, login, monkeypatch):
    monkeypatch.setitem(app.config, "STREAM_RECHECK_SECONDS", 0.2)
    user_id, generation_id = _running(app, client, login)
    response = _open(client, generation_id)
    assert response.status_code == 200
    chunks = iter(response.response)
    assert next(chunks).startswith(b"retry:")
    assert next(chunks).startswith(b"id: ")  # the `started` batch: the stream is live
    with app.app_context():
        db.session.get(User, user_id).is_suspended = True
        db.session.commit()
    rest = b"".join(chunks).decode()  # ends by itself: the generation never finishes
    assert rest.endswith('event: closed\ndata: {"reason": "signed-out"}\n\n')
    response.close()
    with app.app_context():
        assert app.extensions["redis"].zcard(f"sse:gen:{generation_id}") == 0


@pytest.mark.parametrize("origin, allowed", [
    ("http://localhost:5000", True),      # the page, on the web server's port of the same host
    ("http://evil.example:5000", False),
])
def test_the_stream_server_port_answers_pages_of_the_same_host(app, client, login, origin, allowed):
    _, generation_id = _running(app, client, login)
    with app.app_context():
        GenerationStream(app.extensions["redis"], generation_id).finish("done")
    response = client.get(f"/generations/{generation_id}/stream", headers={"Origin": origin},
                          base_url="http://localhost:5001")
    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
    assert (response.headers.get("Access-Control-Allow-Credentials") == "true") is allowed


def test_pages_point_live_streams_at_the_stream_port(app, client, login, monkeypatch):
    _, generation_id = _running(app, client, login)
    assert "data-stream-port" not in client.get(f"/generations/{generation_id}").get_data(as_text=True)
    monkeypatch.setitem(app.config, "STREAM_PORT", "5001")
    assert 'data-stream-port="5001"' in client.get(f"/generations/{generation_id}").get_data(as_text=True)
