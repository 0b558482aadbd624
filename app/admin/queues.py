"""Queue health: RQ's registries per queue, a failed job's error, requeue."""
from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import (DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry,
                         StartedJobRegistry)

from app.admin import audit
from app.auth.models import User
from app.extensions import db


@dataclass
class QueueFigures:
    name: str
    queued: int
    started: int
    failed: int
    finished: int
    deferred: int
    scheduled: int


def queue_names(redis: Redis, *ours: str) -> list[str]:
    """The app's own queues (interactive generations, bulk rows), listed even before their first job,
    plus any other queue RQ knows of on this Redis."""
    return sorted({q.name for q in Queue.all(connection=redis)} | set(ours))


def figures(redis: Redis, name: str) -> QueueFigures:
    queue = Queue(name, connection=redis)
    return QueueFigures(
        name=name, queued=queue.count,
        started=StartedJobRegistry(queue=queue).count,
        failed=FailedJobRegistry(queue=queue).count,
        finished=FinishedJobRegistry(queue=queue).count,
        deferred=DeferredJobRegistry(queue=queue).count,
        scheduled=ScheduledJobRegistry(queue=queue).count,
    )


def failed_jobs(redis: Redis, name: str, limit: int = 50) -> list[Job]:
    registry = FailedJobRegistry(queue=Queue(name, connection=redis))
    ids = registry.get_job_ids(0, limit - 1)
    return [job for job in Job.fetch_many(ids, connection=redis) if job is not None]


def failed_job(redis: Redis, name: str, job_id: str) -> Job | None:
    """A job of this queue's failed registry, or None."""
    registry = FailedJobRegistry(queue=Queue(name, connection=redis))
    if job_id not in registry:
        return None
    try:
        return Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None


def exc_text(job: Job) -> str:
    """The traceback of the job's latest (failed) run."""
    result = job.latest_result()
    return (result.exc_string or "") if result is not None else ""


def error_summary(job: Job) -> str:
    """The last line of the traceback: the exception and its message."""
    info = exc_text(job)
    lines = [line for line in info.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no error recorded"


def requeue(redis: Redis, name: str, job: Job, actor: User) -> None:
    """Put a failed job back on its queue (audited; the caller commits)."""
    audit.record(actor, "job.requeue", "job", job.id, {"queue": name, "status": "failed",
                                                      "error": error_summary(job)[:500]}, {"status": "queued"})
    db.session.flush()
    FailedJobRegistry(queue=Queue(name, connection=redis)).requeue(job.id)
