"""The worker runtime: the entry point (`python -m workers`), the threaded RQ worker class, the
maintenance process, the parent-death lifeline and the embedded Redis for `make run`.

The app's side of jobs (the queue, the Redis connection, enqueue-after-commit, the app a job runs in)
lives in app/jobs.py; it is re-exported here for the runtime and the tests. The dependency points one
way: workers/ imports app/, never the reverse.
"""
from __future__ import annotations

from app.jobs import enqueue_after_commit, init_app, job_app, queue, redis_conn, set_job_app

__all__ = ["enqueue_after_commit", "init_app", "job_app", "queue", "redis_conn", "set_job_app"]
