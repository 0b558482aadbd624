"""Generations whose job is gone: requeue them, or fail and refund them, exactly once.

`recover()` runs periodically on a worker host (workers/maintenance.py, one host at a time). It does not
guess from age: it asks RQ. First RQ's own abandoned-job detection (`StartedJobRegistry.cleanup`: a job
whose worker stopped heart-beating is moved to the failed registry, or retried if it has retries left),
then, for every unfinished generation that has no job waiting in the outbox, the state of its job:

- alive (queued, started, scheduled, deferred): nothing to do;
- stuck in RQ's intermediate queue (dequeued by a worker that died before starting it; RQ's own rule:
  seen there by two rounds a minute apart, and not in the started registry): dead;
- missing or dead while the generation is still `queued` (Redis lost it, or its worker died before the
  job marked it running, so nothing was spent): requeued through the outbox, at most MAX_REQUEUES
  times (a job that keeps killing its worker is then failed and refunded);
- missing while `running`, once no job could still be running it (JOB_TIMEOUT after it started; the
  worker enforces that limit itself): failed and refunded;
- dead while `running` (failed, stopped, canceled, abandoned, or finished without storing): failed and
  refunded. The model was already paid once; running it again is the user's call (Regenerate).

Failing is one conditional UPDATE (`status in (queued, running)`), so a job that finishes at that moment
keeps its result, and refunds are once per generation (app/quota). The stream's final `failed` entry goes
through the outbox too, so open tabs stop waiting even if Redis blinks right then.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import select, update

from app.core import rowcount, utcnow
from app.extensions import db
from app.generation.models import Generation
from app.generation.services import JOB_PREFIX, job_id, schedule_job
from app.outbox import services as outbox
from app.outbox.models import OutboxMessage
from app.quota import services as quota

log = logging.getLogger(__name__)

INTERRUPTED = "This generation was interrupted while the service restarted. Your quota was not used; please try again."
QUEUE_UNAVAILABLE = ("Our job queue was unavailable, so this generation could not start in time. "
                     "Your quota was not used; please try again.")
ALIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.CREATED)
MAX_REQUEUES = 2
# A generation younger than this is left alone: its after-commit delivery may still be under way.
MIN_AGE_SECONDS = 30


def mark_failed(generation_id: int, message: str, from_states: tuple[str, ...] = ("queued", "running")) -> bool:
    """Move the row from one of `from_states` to failed and refund it; False if another caller already did.

    One conditional UPDATE decides, so of two racing callers (the job, RQ's abandoned-job callback,
    this recovery) only one refunds. Does not commit and does not touch the stream.
    """
    updated = rowcount(db.session.execute(
        update(Generation)
        .where(Generation.id == generation_id, Generation.status.in_(from_states))
        .values(status="failed", finished_at=utcnow(), error_message=message)
        .execution_options(synchronize_session=False)
    ))
    if updated:
        quota.refund(generation_id)
        from app.webhooks import events as webhook_events
        webhook_events.generation_failed(db.session, generation_id, message)
    return bool(updated)


def fail_and_refund(generation_id: int, message: str) -> bool:
    """Fail an unfinished generation, refund it and close its stream; False if it had already finished.

    Does not commit: the caller's transaction carries the change, the refund and the stream's final entry.
    """
    if not mark_failed(generation_id, message):
        return False
    outbox.stream_end_after_commit(db.session, generation_id, "failed", message=message)
    log.warning("generation %s failed and refunded: %s", generation_id, message)
    return True


def fail_unstarted(generation_id: int) -> None:
    """The outbox's expiry for a generation job: the queue stayed down too long to start it."""
    fail_and_refund(generation_id, QUEUE_UNAVAILABLE)


@dataclass
class Report:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed)


def _stuck_in_intermediate_queue(queue: Queue, jobs: list[Job]) -> set[str]:
    """Jobs a worker took off the queue but never started (it died in between), by RQ's rule."""
    intermediate = IntermediateQueue(queue.key, connection=queue.connection)
    waiting = set(intermediate.get_job_ids())
    if not waiting:
        return set()
    started = set(queue.started_job_registry.get_job_ids(cleanup=False))
    stuck = set()
    for job in jobs:
        if job.id not in waiting or job.id in started or intermediate.set_first_seen(job.id):
            continue
        if intermediate.should_be_cleaned_up(job.id):
            intermediate.remove(job.id)
            stuck.add(job.id)
    return stuck


def recover() -> Report:
    """One recovery round (see the module docstring). Runs in an app context; commits per generation."""
    config = current_app.config
    redis = current_app.extensions["redis"]
    queue = Queue(config["RQ_QUEUE"], connection=redis)
    StartedJobRegistry(queue=queue).cleanup()  # RQ's abandoned-job detection: expired heartbeats
    now = utcnow()
    candidates = db.session.execute(
        select(Generation.id, Generation.status, Generation.started_at).where(
            Generation.status.in_(("queued", "running")),
            Generation.created_at < now - timedelta(seconds=MIN_AGE_SECONDS),
            ~select(OutboxMessage.id).where(
                OutboxMessage.target == JOB_PREFIX + Generation.id.cast(db.String)).exists(),
        ).order_by(Generation.id)
    ).all()
    db.session.commit()
    if not candidates:
        return Report()
    jobs = Job.fetch_many([job_id(c.id) for c in candidates], connection=redis)
    stuck = _stuck_in_intermediate_queue(queue, [job for job in jobs if job is not None])
    report = Report()
    running_limit = now - timedelta(seconds=config["JOB_TIMEOUT"] + 60)
    for candidate, job in zip(candidates, jobs, strict=False):
        status = job.get_status(refresh=False) if job is not None else None
        if status in ALIVE and (job is None or job.id not in stuck):
            continue
        if job is None and candidate.status == "running" and (candidate.started_at or now) > running_limit:
            continue  # its worker may still be running it
        requeues = int(job.meta.get("requeues", 0)) if job is not None else 0
        if candidate.status == "queued" and requeues < MAX_REQUEUES:
            if job is not None:
                job.delete()  # dead or stuck: its replacement takes the same id
            schedule_job(candidate.id, requeues=requeues + 1)
            report.requeued.append(candidate.id)
        elif fail_and_refund(candidate.id, INTERRUPTED):
            report.failed.append(candidate.id)
        db.session.commit()
    if report:
        log.warning("recovery: requeued %s, failed and refunded %s", report.requeued, report.failed)
    return report
