"""Recovery asks RQ, not the clock alone: a generation whose job is gone is requeued or failed and refunded,
exactly once, with the final `failed` entry in its stream; it runs periodically on worker hosts, one at a time."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import time_machine
from sqlalchemy import update

from app.core import utcnow
from app.extensions import db
from app.generation.models import Generation
from app.generation.recovery import INTERRUPTED, recover
from app.generation.streams import read_batch
from app.outbox import services as outbox
from tests.generation.helpers import load, submit
from tests.outbox.test_outbox import _ledger, _outbox
from workers import maintenance


def _recover(app, after_seconds: float = 0):
    with time_machine.travel(utcnow() + timedelta(seconds=after_seconds)), app.app_context():
        try:
            return recover()
        finally:
            db.session.remove()


def _set(app, generation_id: int, **values) -> None:
    with app.app_context():
        db.session.execute(update(Generation).where(Generation.id == generation_id).values(**values))
        db.session.commit()


def _final_events(app, generation_id: int) -> list[str]:
    events = read_batch(app.extensions["redis"], generation_id, "0-0", 0)
    return [kind for _id, kind, _data in events if kind in ("done", "failed")]


def test_a_live_job_is_left_alone_whatever_its_age(app, client, login):
    login()
    generation_id = submit(client, app, "x-post", variants=1)
    report = _recover(app, after_seconds=24 * 3600)  # a day in the queue: still queued in RQ, so alive
    assert not report and load(app, generation_id).status == "queued"


def test_a_queued_generation_whose_job_redis_lost_is_requeued_once_and_runs(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", variants=2)
    app.extensions["redis"].flushdb()  # a Redis restart without persistence
    assert not _recover(app, after_seconds=5)  # too fresh: its delivery may still be under way
    report = _recover(app, after_seconds=60)
    assert report.requeued == [generation_id] and report.failed == []
    assert _outbox(app) == []  # delivered right after the recovery's commit
    assert not _recover(app, after_seconds=60)  # the job is back in RQ: not requeued twice
    run_worker()
    assert load(app, generation_id).status == "succeeded"
    assert _ledger(app) == (2, 0)


def test_a_running_generation_whose_job_is_gone_is_failed_refunded_and_its_stream_closed(app, client, login):
    login()
    generation_id = submit(client, app, "x-post", variants=3)
    app.extensions["redis"].flushdb()
    _set(app, generation_id, status="running", started_at=utcnow())
    # Its worker may still be running it until JOB_TIMEOUT has passed: no guess before that.
    assert not _recover(app, after_seconds=60)
    limit = app.config["JOB_TIMEOUT"] + 61
    report = _recover(app, after_seconds=limit)
    assert report.failed == [generation_id]
    generation = load(app, generation_id)
    assert generation.status == "failed" and generation.error_message == INTERRUPTED
    assert _ledger(app) == (0, 0)
    assert _final_events(app, generation_id) == ["failed"]
    assert not _recover(app, after_seconds=limit + 60)  # exactly once
    assert _final_events(app, generation_id) == ["failed"] and _ledger(app) == (0, 0)


def test_a_generation_that_finished_meanwhile_keeps_its_result(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    _set(app, generation_id, status="running")  # what recovery read a moment before the job stored it
    with app.app_context():
        from app.generation.recovery import fail_and_refund
        _set(app, generation_id, status="succeeded")
        assert fail_and_refund(generation_id, INTERRUPTED) is False
        db.session.commit()
    assert load(app, generation_id).status == "succeeded" and _ledger(app) == (1, 0)


def test_maintenance_runs_periodically_on_one_host_at_a_time(app, client, login, run_worker, monkeypatch):
    login()
    monkeypatch.setattr(outbox, "deliver", lambda app, messages: 0)  # the submitting process died
    generation_id = submit(client, app, "x-post", variants=1)
    monkeypatch.undo()
    monkeypatch.setitem(app.config, "MAINTENANCE_INTERVAL", 0.2)
    rounds: list[str] = []
    real_sweep = outbox.sweep

    def counted_sweep(*args, **kwargs):
        rounds.append(threading.current_thread().name)
        time.sleep(0.3)  # long enough for the other host to find the lock taken
        return real_sweep(*args, **kwargs)

    monkeypatch.setattr(outbox, "sweep", counted_sweep)
    with time_machine.travel(utcnow() + timedelta(seconds=app.config["OUTBOX_SWEEP_GRACE"] + 1), tick=True):
        stop = threading.Event()
        hosts = [threading.Thread(target=maintenance.run_forever, args=(app, stop.is_set), name=f"host-{n}")
                 for n in range(2)]  # two worker hosts' loops
        [host.start() for host in hosts]
        deadline = time.monotonic() + 20
        while (_outbox(app) or len(rounds) < 3) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        [host.join(10) for host in hosts]
    assert _outbox(app) == [] and len(rounds) >= 3, rounds  # periodic, not only at start
    redis = app.extensions["redis"]
    assert redis.lock(maintenance.LOCK_KEY, timeout=5).acquire(blocking=False)  # released between rounds
    assert maintenance.run_once(app) is None  # while another host holds it, this one skips the round
    run_worker()
    assert load(app, generation_id).status == "succeeded"


def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_requeued_at_most_twice(app, client, login,
                                                                                      run_worker):
    from rq import Queue

    import workers
    from app.generation.recovery import MAX_REQUEUES

    login()
    generation_id = submit(client, app, "x-post", variants=1)
    redis, queue_key = app.extensions["redis"], workers.queue(app).key

    def worker_takes_it_and_dies() -> None:
        assert Queue.lmove(redis, queue_key, None)  # what a worker does first: into RQ's intermediate queue

    worker_takes_it_and_dies()
    assert not _recover(app, after_seconds=60)  # RQ's rule: seen there twice, a minute apart
    assert _recover(app, after_seconds=130).requeued == [generation_id]
    for round_ in range(2, MAX_REQUEUES + 1):
        worker_takes_it_and_dies()
        assert _recover(app, after_seconds=130 + 70 * round_).requeued == [generation_id]
    worker_takes_it_and_dies()  # a job that keeps killing its worker is given up
    report = _recover(app, after_seconds=1000)
    assert report.failed == [generation_id] and not report.requeued
    assert load(app, generation_id).status == "failed" and _ledger(app) == (0, 0)
    assert _final_events(app, generation_id) == ["failed"]
    run_worker()  # nothing left to run it
    assert load(app, generation_id).status == "failed"


def test_flask_recover_runs_one_round_by_hand(app, client, login, run_worker, monkeypatch):
    login()
    monkeypatch.setattr(outbox, "deliver", lambda app, messages: 0)
    generation_id = submit(client, app, "x-post", variants=1)
    monkeypatch.undo()
    with time_machine.travel(utcnow() + timedelta(seconds=app.config["OUTBOX_SWEEP_GRACE"] + 1)):
        result = app.test_cli_runner().invoke(args=["recover"])
    assert result.exit_code == 0 and "outbox: 1 delivered" in result.output, result.output
    run_worker()
    assert load(app, generation_id).status == "succeeded"
