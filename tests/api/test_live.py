"""With a real worker pool in a subprocess: ?wait= and the SSE stream (this module only: the pool
would take the jobs of modules that run their own burst worker)."""
from __future__ import annotations


def test_wait_returns_the_finished_generation(api, worker_process):
    response = api.post("/api/v1/generations?wait=30", api.body(variants=1))
    assert response.status_code == 200, response.get_json()
    document = response.get_json()
    assert document["status"] == "succeeded" and len(document["variants"]) == 1
