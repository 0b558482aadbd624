"""Worker entry point: `python -m workers [--workers N] [--threads T] [--burst]`.

The app (Flask, SQLAlchemy, openai) is imported once here. Each worker
process is a `ThreadPoolWorker` (workers/threaded.py) that runs up to T jobs
at once in threads, so N x T generations can be in flight. With N > 1 an RQ
WorkerPool forks the N processes from this warm parent (start-up is paid once,
memory shared copy-on-write) and starts a new one if one dies.

Defaults: N = RQ_WORKERS, else one process per core (at most 4: past that the
database pool, not the CPU, is the limit); T = WORKER_THREADS (150). On
SIGTERM/SIGINT the processes stop claiming jobs and give the ones in flight
WORKER_GRACE seconds (see workers/threaded.py). Every process asks Linux to
stop it when its parent exits, so none outlives its supervisor.
"""
from __future__ import annotations

import argparse
import logging
import os
import time

from redis.exceptions import ConnectionError as RedisConnectionError

from rq.worker_pool import WorkerPool

from app import create_app
from app.extensions import db
from workers.lifeline import die_with_parent
from workers.threaded import ThreadPoolWorker


def _wait_for_redis(redis, timeout: float = 30.0) -> None:
    """Redis may still be starting beside us under `make run`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            redis.ping()
            return
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def default_processes() -> int:
    return int(os.environ.get("RQ_WORKERS") or min(os.cpu_count() or 1, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description="Copydeck RQ workers")
    parser.add_argument("--workers", type=int, default=default_processes(), help="worker processes")
    parser.add_argument("--threads", type=int, default=None, help="jobs in flight per process (WORKER_THREADS)")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    args = parser.parse_args()
    die_with_parent()

    app = create_app()
    import app.generation.tasks as tasks  # noqa: F401  (preload the job code before forking)
    import app.bulk.tasks as bulk_tasks  # noqa: F401  (the bulk row job, preloaded too)
    import workers
    from workers import maintenance

    workers.set_job_app(app)
    redis = app.extensions["redis"]
    _wait_for_redis(redis)
    queue_name = app.config["RQ_QUEUE"]
    # Interactive generations first: RQ takes from the queues in this order, so bulk rows wait for them.
    queue_names = [queue_name, app.config["BULK_QUEUE"]]
    with app.app_context():
        engine = db.engine
    # A forked child must not share the parent's database connections, nor outlive its parent.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    os.register_at_fork(after_in_child=die_with_parent)
    maintenance.start(app)  # outbox sweep + lost-job recovery, every MAINTENANCE_INTERVAL, one host at a time

    # Class attributes, so the workers WorkerPool forks are built with them too.
    ThreadPoolWorker.threads = args.threads or app.config["WORKER_THREADS"]
    ThreadPoolWorker.grace = app.config["WORKER_GRACE"]
    logging.getLogger("rq").setLevel(logging.INFO)
    if args.workers <= 1:
        ThreadPoolWorker(queue_names, connection=redis).work(burst=args.burst, with_scheduler=False)
        return
    pool = WorkerPool(queue_names, connection=redis, num_workers=args.workers, worker_class=ThreadPoolWorker)
    pool.start(burst=args.burst)


if __name__ == "__main__":
    main()
