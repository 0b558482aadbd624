"""Worker entry point: `python -m workers [--workers N] [--burst]`.

The app (Flask, SQLAlchemy, openai) is imported once here; with N > 1 an RQ
WorkerPool forks N SimpleWorker processes from this warm parent, so no
process forks per job (SimpleWorker runs jobs in its own process) and start-up
is paid once. Each worker runs one generation at a time, and a generation's
variants run in threads, so N is the number of generations in flight.
"""
from __future__ import annotations

import argparse
import logging
import os
import time

from redis.exceptions import ConnectionError as RedisConnectionError

from rq import SimpleWorker
from rq.worker_pool import WorkerPool

from app import create_app
from app.extensions import db


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


def main() -> None:
    parser = argparse.ArgumentParser(description="Copydeck RQ workers")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("RQ_WORKERS", "8")))
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    args = parser.parse_args()

    app = create_app()
    import app.generation.tasks as tasks  # preload the job code before forking
    import workers
    from workers import maintenance

    workers.set_job_app(app)
    redis = app.extensions["redis"]
    _wait_for_redis(redis)
    queue_name = app.config["RQ_QUEUE"]
    with app.app_context():
        engine = db.engine
    # A forked child must not share the parent's database connections.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    maintenance.start(app)  # outbox sweep + lost-job recovery, every MAINTENANCE_INTERVAL, one host at a time

    logging.getLogger("rq").setLevel(logging.INFO)
    if args.workers <= 1:
        SimpleWorker([queue_name], connection=redis).work(burst=args.burst, with_scheduler=False)
        return
    pool = WorkerPool([queue_name], connection=redis, num_workers=args.workers, worker_class=SimpleWorker)
    pool.start(burst=args.burst)


if __name__ == "__main__":
    main()
