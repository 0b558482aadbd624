"""A worker shutting down mid-generation, and a job that finds nothing to do: the user is never charged
for copy they did not get, and a generation is never left stuck.

The shutdown is the threaded worker's own (`watchdog.interrupt()`, see the `worker_shutdown` fixture), in
this process with a real RQ SimpleWorker, so the job's hand-back is measured here; tests/workers/ does the
same through real signals to real worker processes.
"""
from __future__ import annotations

import json

from sqlalchemy import select

from app.extensions import db
from app.generation.recovery import INTERRUPTED
from app.generation.stop import STOPPED_BEFORE_START
from app.generation.streams import stream_key
from app.generation.tasks import run_generation
from app.quota.models import QuotaCharge
from tests.fakes.openai_server import long, trickle
from tests.generation.helpers import ledger, load, submit


def _entries(app, generation_id: int) -> list[tuple[str, dict]]:
    with app.app_context():
        return [(fields[b"type"].decode(), json.loads(fields[b"data"]))
                for _id, fields in app.extensions["redis"].xrange(stream_key(generation_id))]


def _charge_state(app) -> str:
    with app.app_context():
        return db.session.scalars(select(QuotaCharge.state)).one()


def test_a_shutdown_mid_generation_requeues_it_once_then_fails_and_refunds_it(
        app, client, login, fake_llm, run_worker, worker_shutdown):
    login()
    generation_id = submit(client, app, "x-post", variants=2)
    worker_shutdown.when_streaming(generation_id)
    run_worker()  # interrupted; RQ puts the job back; the worker, still shutting down, runs it again
    generation = load(app, generation_id)
    assert generation.status == "failed" and generation.error_message == INTERRUPTED
    assert generation.variants == []
    assert ledger(app) == (0, 0) and _charge_state(app) == "refunded"
    kinds = [kind for kind, _data in _entries(app, generation_id)]
    # What the browser showed of the first run is taken back (a reset per variant) before the end.
    assert "token" in kinds and kinds.count("reset") >= 2 and kinds.index("reset") > kinds.index("token")
    assert _entries(app, generation_id)[-1] == ("failed", {"message": INTERRUPTED})
    assert len(fake_llm.chat_requests) == 2  # the second run asked the model nothing


def test_stop_pressed_as_the_worker_shut_down_ends_the_requeued_generation_before_it_starts(
        app, client, login, fake_llm, run_worker, worker_shutdown):
    login()
    generation_id = submit(client, app, "x-post", variants=1)

    def press_stop() -> None:  # the page sees it running: it only raises the flag the job watches
        assert client.post(f"/generations/{generation_id}/stop").status_code == 302

    worker_shutdown.when_streaming(generation_id, then=press_stop)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "failed" and generation.error_message == STOPPED_BEFORE_START
    assert ledger(app) == (0, 0) and _charge_state(app) == "refunded"
    assert len(fake_llm.chat_requests) == 1


def test_stop_during_the_repair_of_the_only_variant_charges_nothing(app, client, login, fake_llm):
    import threading

    login()
    fake_llm.script(long(400), trickle(0.02))  # over x-post's 280 characters: a repair is asked for, and trickles
    generation_id = submit(client, app, "x-post", variants=1)
    results = []

    def job() -> None:
        with app.app_context():
            results.append(run_generation(generation_id))

    thread = threading.Thread(target=job)
    thread.start()
    fake_llm.wait_for_requests(2, timeout=20)
    assert client.post(f"/generations/{generation_id}/stop").status_code == 302
    thread.join(30)
    assert results == ["failed"]
    generation = load(app, generation_id)
    assert generation.status == "failed" and generation.variants == []
    assert generation.error_message == "You stopped this generation before any variant was finished. Nothing was charged."
    assert ledger(app) == (0, 0)


def test_a_job_whose_generation_went_with_its_workspace_does_nothing(app, client, login, fake_llm, run_worker):
    login()
    generation_id = submit(client, app, "x-post", variants=1)
    with app.app_context():
        from app.generation.models import Generation
        from app.workspaces.models import Workspace
        name = db.session.get(Workspace, db.session.get(Generation, generation_id).workspace_id).name
    assert client.post("/workspace/delete", data={"del-confirm_name": name}).status_code == 302  # job still queued
    run_worker()
    assert fake_llm.chat_requests == []
    with app.app_context():
        from app.jobs import queue
        assert queue(app).failed_job_registry.count == 0  # it ended quietly, not as a crash
        assert run_generation(generation_id) == "missing"
