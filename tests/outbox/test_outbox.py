"""The outbox: a committed generation or Stripe event always gets its job, even when Redis fails at commit."""
from __future__ import annotations

from datetime import timedelta

import time_machine
from rq.job import Job
from sqlalchemy import func, select

from app.core import utcnow
from app.extensions import db
from app.generation.recovery import QUEUE_UNAVAILABLE
from app.generation.streams import read_batch
from app.outbox import services as outbox
from app.outbox.models import OutboxMessage
from app.quota.models import QuotaLedger
from tests.generation.helpers import form_data, load, submit


def _outbox(app) -> list[tuple[str, int, str | None]]:
    with app.app_context():
        return [(r.target, r.attempts, r.last_error) for r in db.session.scalars(select(OutboxMessage))]


def _ledger(app) -> tuple[int, int]:
    with app.app_context():
        ledger = db.session.scalars(select(QuotaLedger)).one()
        return ledger.used, ledger.reserved


def _sweep(app) -> int:
    with app.app_context():
        try:
            return outbox.sweep()
        finally:
            db.session.remove()


def test_redis_down_during_submit_saves_says_so_and_runs_when_back(app, client, login, own_redis, run_worker):
    login()
    own_redis.kill()
    response = client.post("/write/x-post", data=form_data(app, "x-post", 2))
    assert response.status_code == 302  # not the 500 "nothing was saved": it was saved
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-testid="waiting-for-queue"' in text and "quota is refunded" in text
    generation_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    [(target, attempts, error)] = _outbox(app)
    assert target == f"generation-{generation_id}" and attempts == 1 and "Connection" in error
    assert _ledger(app) == (0, 2)

    own_redis.start()  # back, and empty: the job was never in it
    assert _sweep(app) == 1
    assert _outbox(app) == []
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "succeeded" and len(generation.variants) == 2
    assert _ledger(app) == (2, 0)
    assert "waiting-for-queue" not in client.get(f"/generations/{generation_id}").get_data(as_text=True)


def test_the_sweep_delivers_rows_left_behind_by_a_process_that_died_after_commit(app, client, login,
                                                                                   run_worker, monkeypatch):
    login()
    # The web process "dies" between its COMMIT and the enqueue: nothing is delivered after commit.
    monkeypatch.setattr(outbox, "deliver", lambda app, messages: 0)
    generation_id = submit(client, app, "x-post", variants=1)
    monkeypatch.undo()
    assert app.extensions["redis"].exists(f"rq:job:generation-{generation_id}") == 0
    assert _sweep(app) == 0  # within the grace, the row is the committing process's
    with time_machine.travel(utcnow() + timedelta(seconds=app.config["OUTBOX_SWEEP_GRACE"] + 1)):
        assert _sweep(app) == 1
    assert _outbox(app) == []
    run_worker()
    assert load(app, generation_id).status == "succeeded"


def test_delivery_is_idempotent_a_job_already_in_rq_is_not_enqueued_twice(app, client, login, run_worker,
                                                                           monkeypatch):
    login()
    # Delivered, but the row's DELETE was lost (the database blinked): the sweep must not enqueue again.
    monkeypatch.setattr(outbox, "_record", lambda app, delivered, failed: None)
    generation_id = submit(client, app, "x-post", variants=1)
    monkeypatch.undo()
    queue_key = f"rq:queue:{app.config['RQ_QUEUE']}"
    assert app.extensions["redis"].llen(queue_key) == 1
    with time_machine.travel(utcnow() + timedelta(seconds=app.config["OUTBOX_SWEEP_GRACE"] + 1)):
        assert _sweep(app) == 1
    assert app.extensions["redis"].llen(queue_key) == 1 and _outbox(app) == []
    run_worker()
    assert load(app, generation_id).status == "succeeded"


def test_a_generation_that_cannot_reach_the_queue_in_time_is_failed_and_refunded(app, client, login, own_redis):
    login()
    own_redis.kill()
    response = client.post("/write/x-post", data=form_data(app, "x-post", 3))
    generation_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    own_redis.start()
    late = utcnow() + timedelta(seconds=app.config["GENERATION_QUEUE_DEADLINE"] + 1)
    with time_machine.travel(late):
        assert _sweep(app) == 1
    generation = load(app, generation_id)
    assert generation.status == "failed" and generation.error_message == QUEUE_UNAVAILABLE
    assert _ledger(app) == (0, 0)
    assert _outbox(app) == []
    redis = app.extensions["redis"]
    assert not Job.exists(f"generation-{generation_id}", connection=redis)  # never run late
    kinds = [kind for _id, kind, _data in read_batch(redis, generation_id, "0-0", 0)]
    assert kinds == ["failed"]  # open tabs stop waiting
    with time_machine.travel(late + timedelta(minutes=1)):
        assert _sweep(app) == 0  # exactly once
    assert _ledger(app) == (0, 0)


def test_a_rolled_back_transaction_leaves_no_row_and_no_job(app_ctx, make_user):
    make_user()
    outbox.enqueue_after_commit(db.session, "app.generation.tasks.run_generation", 999, job_id="generation-999")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert not Job.exists("generation-999", connection=app_ctx.extensions["redis"])



def test_job_options_reach_rq(app_ctx, make_user):
    make_user()
    outbox.enqueue_after_commit(db.session, "app.catalog.tasks.run_test", {"variants": 1}, job_id="test-run-x",
                                job_timeout=42, result_ttl=600, failure_ttl=600, meta={"user_id": 7},
                                retry=(3, [10, 60]))
    db.session.commit()
    job = Job.fetch("test-run-x", connection=app_ctx.extensions["redis"])
    assert (job.timeout, job.result_ttl, job.failure_ttl, job.meta) == (42, 600, 600, {"user_id": 7})
    assert (job.retries_left, job.retry_intervals) == (3, [10, 60])
    assert job.args == ({"variants": 1},)


def test_a_savepoint_inside_the_transaction_delivers_nothing_before_the_outer_commit(app_ctx, make_user):
    make_user()
    outbox.enqueue_after_commit(db.session, "app.generation.tasks.run_generation", 998, job_id="generation-998")
    with db.session.begin_nested():  # what the quota ledger does when it creates a row
        pass
    assert not Job.exists("generation-998", connection=app_ctx.extensions["redis"])
    db.session.rollback()
    assert not Job.exists("generation-998", connection=app_ctx.extensions["redis"])
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_delivery_needs_no_second_connection_from_a_busy_pool(app, make_app, make_user):
    """With one pooled connection per process, a commit still delivers and clears its row: delivery
    waits until the committed transaction has given its connection back (else every thread of a
    busy web process would hold one connection and wait for a second)."""
    make_user()
    tight = make_app({"TESTING": True, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0,
                                                                        "pool_timeout": 2}})
    with tight.app_context():
        try:
            outbox.enqueue_after_commit(db.session, "app.generation.tasks.run_generation", 997,
                                        job_id="generation-997")
            db.session.commit()
            assert Job.exists("generation-997", connection=tight.extensions["redis"])
            assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        finally:
            db.session.remove()
            db.engine.dispose()
