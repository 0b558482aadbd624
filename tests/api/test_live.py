"""With a real worker pool in a subprocess: ?wait= and the SSE stream (this module only: the pool
would take the jobs of modules that run their own burst worker)."""
from __future__ import annotations


def test_wait_returns_the_finished_generation(api, worker_process):
    response = api.post("/api/v1/generations?wait=30", api.body(variants=1))
    assert response.status_code == 200, response.get_json()
    document = response.get_json()
    assert document["status"] == "succeeded" and len(document["variants"]) == 1


def _events(chunks) -> list[dict]:
    """Parse an SSE body into [{"id", "event", "data"}] (comments and retry lines skipped)."""
    events = []
    for block in "".join(chunks).split("\n\n"):
        event = {}
        for line in block.splitlines():
            if line.startswith(":") or line.startswith("retry:"):
                continue
            name, _, value = line.partition(": ")
            event[name] = value
        if event:
            events.append(event)
    return events


def _stream(api, generation_id: int, last_id: str | None = None) -> list[dict]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    response = api.get(f"/api/v1/generations/{generation_id}/stream", headers=headers, buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    chunks = [chunk.decode() if isinstance(chunk, bytes) else chunk for chunk in response.response]
    response.close()
    return _events(chunks)


def test_stream_sends_the_browsers_events_and_resumes(api, worker_process, fake_llm):
    import json
    created = api.post("/api/v1/generations", api.body(variants=2)).get_json()
    events = _stream(api, created["id"])
    assert events and all(e["event"] == "batch" for e in events)
    entries = [entry for e in events for entry in json.loads(e["data"])]
    kinds = [kind for kind, _data in entries]
    assert kinds[0] == "started" and kinds[-1] == "done" and "token" in kinds
    finals = {data["v"]: data for kind, data in entries if kind == "variant"}
    stored = api.get(f"/api/v1/generations/{created['id']}").get_json()["variants"]
    assert {v["position"]: v["text"] for v in stored} == {v: d["text"] for v, d in finals.items()}
    # Resume after the first event: only what came after it, ending with done.
    resumed = _stream(api, created["id"], last_id=events[0]["id"])
    resumed_entries = [entry for e in resumed for entry in json.loads(e["data"])]
    first_count = len(json.loads(events[0]["data"]))
    assert resumed_entries == entries[first_count:]


def test_a_revoked_key_cannot_open_a_stream(api, app, worker_process):
    from app.api.models import ApiKey
    from app.core import utcnow
    from app.extensions import db
    created = api.post("/api/v1/generations", api.body(variants=1)).get_json()
    with app.app_context():
        for key in db.session.query(ApiKey):
            key.revoked_at = utcnow()
        db.session.commit()
    response = api.get(f"/api/v1/generations/{created['id']}/stream")
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
