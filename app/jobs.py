"""The app's side of background jobs: its Redis connection, the queue, and enqueue-after-commit.

Jobs are enqueued only after the database transaction that created their rows has committed, so a
worker never picks up an id it cannot see yet, and a rolled-back request never leaves a job behind.
They go through the outbox (app/outbox): a row in that same transaction, so a failed enqueue is
retried. The worker runtime (workers/) imports this module; app code never imports workers/.
"""
from __future__ import annotations

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue

from app.outbox import services as outbox

_job_app: Flask | None = None


def set_job_app(app: Flask) -> None:
    """The worker entry point hands over the app it built, so jobs reuse it."""
    global _job_app
    _job_app = app


def job_app() -> Flask:
    """The app to run a job in: the current one (tests run jobs in-process),
    else this worker process's app, created once."""
    global _job_app
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]  # proxy method, untyped
    if _job_app is None:
        from app import create_app
        _job_app = create_app()
    return _job_app


def init_app(app: Flask) -> None:
    """Create the app's Redis connection (a pool shared by requests and streams)."""
    app.extensions["redis"] = Redis.from_url(app.config["REDIS_URL"], health_check_interval=30)


def redis_conn() -> Redis:
    return current_app.extensions["redis"]


def queue(app: Flask | None = None) -> Queue:
    app = app or current_app
    return Queue(app.config["RQ_QUEUE"], connection=app.extensions["redis"])


# Jobs are recorded in the transaction and enqueued after it commits: see app/outbox/services.py.
enqueue_after_commit = outbox.enqueue_after_commit
