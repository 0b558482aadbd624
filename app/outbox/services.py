"""Write side effects in the transaction, deliver them after commit, sweep what was left behind.

Why: a generation that commits must always get its job, and a Stripe event that is stored must always be
applied, even when Redis fails between our COMMIT and our RQ enqueue, or the process dies right there.
So the job is first a row in the same transaction (`enqueue_after_commit`). After the commit succeeds
the session hook delivers it to Redis and deletes the row; if Redis is down the row stays, marked with the
error, and `sweep()` (run periodically by workers/maintenance.py under a Redis lock, one host at a time)
delivers it when Redis is back. A rolled-back transaction takes its rows with it: nothing to deliver.

Delivery is idempotent, so the hook and the sweep may both try a row without running a job twice:
- a job has a deterministic id (`generation-12`); if RQ already has it (queued, started, finished,
  scheduled), it is not enqueued again;
- a stream's final entry is not appended if the stream already ends with one.

A job may carry an expiry (`expire_after` seconds, `on_expire` a dotted function taking the job's args):
a row that could not be delivered in time is not enqueued late; `on_expire` settles it instead (a
generation is failed and refunded with a message that says why).
"""
from __future__ import annotations

import importlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from flask import Flask, current_app
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from rq import Callback, Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import delete, event, select, update
from sqlalchemy.orm import Session

from app.core import AnySession, commit_step, utcnow
from app.extensions import db
from app.outbox.models import OutboxMessage

log = logging.getLogger(__name__)

_PENDING = "copydeck_outbox_pending"
_COMMITTED = "copydeck_outbox_committed"
# Jobs in these states are over: a requeue must replace them.
_DEAD_STATES = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
_QUEUE_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(frozen=True)
class Message:
    """A row's content, detached from the session so it can be delivered after commit."""

    id: int
    kind: str
    target: str
    payload: dict[str, Any]


# Jobs whose records must be closed when RQ gives up on them: a worker killed mid-job leaves the
# job abandoned, and RQ's registry cleanup then runs this callback (fail and refund, exactly once).
ON_FAILURE = {"app.generation.tasks.run_generation": "app.generation.tasks.on_job_failure",
              "app.bulk.tasks.run_row": "app.bulk.tasks.on_row_job_failure"}


def enqueue_after_commit(session: AnySession, func: str, *args: Any, job_id: str | None = None,
                         expire_after: int | None = None, on_expire: str | None = None,
                         job_timeout: int | None = None, retry: tuple[int, list[int]] | None = None,
                         meta: dict[str, Any] | None = None, result_ttl: int = 3600,
                         failure_ttl: int = 7 * 24 * 3600, queue: str | None = None) -> OutboxMessage:
    """Record an RQ job in `session`'s transaction; it is enqueued once that transaction commits.

    `args` must be JSON values (ids, not objects). The row is flushed now so its id is known.
    `retry` is RQ's (max retries, intervals in seconds) for a job that raises or is abandoned by a dead
    worker; intervals need RQ's scheduler, which the pool of `python -m workers` runs.
    `queue`: the RQ queue (default RQ_QUEUE; bulk rows go to BULK_QUEUE, which workers take after it).
    """
    config = current_app.config
    payload = {
        "func": func, "args": list(args),
        "timeout": job_timeout or config["JOB_TIMEOUT"], "result_ttl": result_ttl, "failure_ttl": failure_ttl,
        "retry": list(retry) if retry else None, "meta": meta,
        "expire_after": expire_after, "on_expire": on_expire, "on_failure": ON_FAILURE.get(func),
    }
    if queue:
        payload["queue"] = queue
    return _add(session, "job", job_id or f"job-{uuid.uuid4().hex}", payload)


def stream_end_after_commit(session: AnySession, generation_id: int, kind: str, **data: Any) -> OutboxMessage:
    """Record the final entry (`done`/`failed`) of a generation's stream, appended once the transaction commits.

    Open tabs wait on that stream: writing the entry through the outbox means it is appended even when
    Redis blinks at the moment the generation is settled.
    """
    from app.generation.streams import stream_key

    return _add(session, "stream", stream_key(generation_id), {"type": kind, "data": data})


def _add(session: AnySession, kind: str, target: str, payload: dict[str, Any]) -> OutboxMessage:
    grace = current_app.config["OUTBOX_SWEEP_GRACE"]
    row = OutboxMessage(kind=kind, target=target, payload=payload,
                        available_at=utcnow() + timedelta(seconds=grace))
    session.add(row)
    session.flush()
    session.info.setdefault(_PENDING, []).append(
        (current_app._get_current_object(), Message(row.id, kind, target, payload)))  # type: ignore[attr-defined]  # proxy method, untyped
    return row


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    """The rows are committed: deliver them once the transaction has let go of its connection.

    after_commit runs while the session still holds its connection, and delivery opens one of its own
    to delete the delivered rows: doing it here would need two connections per thread, and with every
    pooled connection held by a thread waiting for a second one the pool deadlocks under load.
    A savepoint's commit fires this event too: only the outermost commit releases the rows.
    """
    if _PENDING in session.info and not session.in_nested_transaction():
        session.info[_COMMITTED] = session.info.pop(_PENDING)


@event.listens_for(Session, "after_transaction_end")
def _deliver_committed(session: Session, transaction) -> None:
    if transaction.parent is not None or transaction.nested or _COMMITTED not in session.info:
        return
    pending = session.info.pop(_COMMITTED)
    by_app: dict[Flask, list[Message]] = {}
    for app, message in pending:
        by_app.setdefault(app, []).append(message)
    for app, messages in by_app.items():
        deliver(app, messages)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested and previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def deliver(app: Flask, messages: list[Message]) -> int:
    """Deliver messages to Redis, then delete the delivered rows and mark the others. Never raises:
    it runs after a commit that already succeeded, and whatever is left is the sweep's.
    Returns how many were delivered."""
    delivered: list[int] = []
    failed: dict[int, str] = {}
    down: str | None = None
    for message in messages:
        if down is not None:  # Redis is unreachable: do not wait for it once per message
            failed[message.id] = down
            continue
        try:
            _DELIVERERS[message.kind](app, message)
            delivered.append(message.id)
        except _QUEUE_DOWN as exc:
            down = failed[message.id] = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("outbox %s (%s): Redis unavailable, left for the sweep: %s", message.id, message.target, exc)
        except Exception as exc:  # a bug in one message must not block the others
            failed[message.id] = f"{type(exc).__name__}: {exc}"[:300]
            log.exception("outbox %s (%s): delivery failed", message.id, message.target)
    _record(app, delivered, failed)
    return len(delivered)


def _record(app: Flask, delivered: list[int], failed: dict[int, str]) -> None:
    """Delete delivered rows; failed ones become due for the sweep at once (own short transaction)."""
    if not delivered and not failed:
        return
    try:
        with app.app_context(), db.engine.begin() as conn:
            if delivered:
                conn.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(delivered)))
            for message_id, error in failed.items():
                conn.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(
                    attempts=OutboxMessage.attempts + 1, last_error=error, available_at=utcnow()))
    except Exception:
        # The rows stay as they were; delivery is idempotent, so the sweep may safely try them again.
        log.exception("outbox: could not record the delivery of %s / failures of %s", delivered, list(failed))


def _fetch_job(app: Flask, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=app.extensions["redis"])
    except NoSuchJobError:
        return None


def _job_alive(app: Flask, job_id: str) -> bool:
    job = _fetch_job(app, job_id)
    return job is not None and job.get_status(refresh=False) not in _DEAD_STATES


def _deliver_job(app: Flask, message: Message) -> None:
    redis = app.extensions["redis"]
    payload = message.payload
    existing = _fetch_job(app, message.target)
    if existing is not None:
        if existing.get_status(refresh=False) not in _DEAD_STATES:
            log.info("outbox %s: job %s already in RQ", message.id, message.target)
            return
        existing.delete()  # a requeue after the job died: replace it, registries included
    max_retries, intervals = payload.get("retry") or (0, 0)
    queue = Queue(payload.get("queue") or app.config["RQ_QUEUE"], connection=redis)
    queue.enqueue(
        payload["func"], *payload["args"], job_id=message.target, job_timeout=payload["timeout"],
        result_ttl=payload["result_ttl"], failure_ttl=payload["failure_ttl"],
        retry=Retry(max=max_retries, interval=intervals) if max_retries else None, meta=payload.get("meta"),
        on_failure=Callback(payload["on_failure"]) if payload.get("on_failure") else None,
    )
    log.info("enqueued job %s (%s%r)", message.target, payload["func"], tuple(payload["args"]))


def _deliver_stream_end(app: Flask, message: Message) -> None:
    from app.generation.streams import FINAL_TYPES

    redis = app.extensions["redis"]
    last = redis.xrevrange(message.target, count=1)
    if last and last[0][1].get(b"type", b"").decode() in FINAL_TYPES:
        return
    pipe = redis.pipeline()
    pipe.xadd(message.target, {"type": message.payload["type"], "data": json.dumps(message.payload["data"])})
    pipe.expire(message.target, app.config["STREAM_TTL_SECONDS"])
    pipe.execute()


_DELIVERERS: dict[str, Callable[[Flask, Message], None]] = {"job": _deliver_job, "stream": _deliver_stream_end}


def is_pending(target: str) -> bool:
    """True while a side effect for this target (a job id) waits in the outbox."""
    return db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.target == target).limit(1)) is not None


def sweep(limit: int = 500) -> int:
    """Deliver rows left behind (a failed or interrupted after-commit delivery); settle expired ones.

    Runs in an app context, from the maintenance loop. Returns the number of rows delivered or settled.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # proxy method, untyped
    now = utcnow()
    rows = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.available_at <= now).order_by(OutboxMessage.id).limit(limit)
    ).all()
    messages, settled = [], 0
    for row in rows:
        expire_after, on_expire = row.payload.get("expire_after"), row.payload.get("on_expire")
        if row.kind == "job" and expire_after and on_expire and row.created_at + timedelta(seconds=expire_after) < now:
            if not _job_alive(app, row.target):  # delivered after all, only the row's delete was lost
                _resolve(on_expire)(*row.payload["args"])
            db.session.delete(row)
            settled += 1
        else:
            messages.append(Message(row.id, row.kind, row.target, row.payload))
    commit_step("the outbox sweep: expired rows settled and the read ended before talking to Redis")
    return settled + (deliver(app, messages) if messages else 0)


def _resolve(dotted: str) -> Callable[..., Any]:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)
