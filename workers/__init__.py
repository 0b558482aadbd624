"""The worker runtime: Redis connection, the queue, and enqueue-after-commit.

Jobs are enqueued only after the database transaction that created their rows
has committed, so a worker never picks up an id it cannot see yet, and a
rolled-back request never leaves a job behind.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Callback, Queue
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_PENDING = "copydeck_pending_jobs"

# Jobs whose records must be closed when RQ gives up on them: a worker killed mid-job leaves the
# job abandoned, and RQ's registry cleanup then runs this callback (fail and refund, exactly once).
ON_FAILURE = {"app.generation.tasks.run_generation": "app.generation.tasks.on_job_failure"}


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
        return current_app._get_current_object()
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


def enqueue_after_commit(session: Session, func: str, *args: Any, job_id: str | None = None) -> None:
    """Schedule an RQ job for when `session` commits; dropped on rollback."""
    app = current_app._get_current_object()
    session.info.setdefault(_PENDING, []).append((app, func, args, job_id))


@event.listens_for(Session, "after_commit")
def _enqueue_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    for app, func, args, job_id in pending:
        job = queue(app).enqueue(
            func,
            *args,
            job_id=job_id,
            job_timeout=app.config["JOB_TIMEOUT"],
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
            on_failure=Callback(ON_FAILURE[func]) if func in ON_FAILURE else None,
            # No RQ Retry: the job retries the model itself within its deadline and refunds on
            # failure, so a second RQ run would only pay the model twice. A job interrupted by a
            # shutdown asks RQ for one more run by returning Retry (app/generation/tasks.py).
        )
        log.info("enqueued job %s (%s%r)", job.id, func, args)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested and previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
