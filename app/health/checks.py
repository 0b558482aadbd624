"""What the health endpoints, `flask workers health` and /metrics measure.

Live workers. RQ keeps a worker's registration (a hash plus a set member) for WORKER_TTL + 60 s
after its last heartbeat, and the set member until a maintenance pass, so `Worker.count` still
counts a worker minutes after it was SIGKILLed. A worker is counted live here only when its hash
exists, it has not registered its death, its last heartbeat is within WORKER_TTL, and, when it
runs on this host, its process still exists (and is not a zombie).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask
from redis import Redis
from rq import Queue, Worker
from rq.worker import BaseWorker
from sqlalchemy import func, select

from app.observability import ERRORS_KEY, TTFT_BUCKETS, TTFT_KEY


@dataclass
class WorkerReport:
    registered: int
    live: list[BaseWorker]

    @property
    def live_count(self) -> int:
        return len(self.live)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # a killed child its parent has not reaped yet is a zombie: dead
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_live(worker: BaseWorker, redis: Redis, ttl_seconds: int, now: datetime | None = None) -> bool:
    now = now or datetime.now(timezone.utc)
    beat = worker.last_heartbeat
    if beat is None or redis.hexists(worker.key, "death"):
        return False
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=timezone.utc)
    if (now - beat).total_seconds() > ttl_seconds:
        return False
    if worker.hostname == socket.gethostname() and worker.pid:
        return _process_exists(worker.pid)
    return True


def worker_report(redis: Redis, ttl_seconds: int) -> WorkerReport:
    registered = len(Worker.all_keys(connection=redis))
    live = [w for w in Worker.all(connection=redis) if is_live(w, redis, ttl_seconds)]
    return WorkerReport(registered=registered, live=live)


def live_worker_count(redis: Redis, ttl_seconds: int) -> int:
    return worker_report(redis, ttl_seconds).live_count


class CopydeckCollector:
    """Gauges computed at scrape time, and the shared TTFT/error counters kept in Redis."""

    def __init__(self, app: Flask):
        self.app = app

    def describe(self):
        return []  # names are only known at collect time; nothing to check at registration

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        from app.extensions import db
        from app.generation.models import Generation

        redis: Redis = self.app.extensions["redis"]
        by_status = dict(db.session.execute(
            select(Generation.status, func.count()).where(Generation.status.in_(("queued", "running")))
            .group_by(Generation.status)).all())
        db.session.rollback()  # end the read; the scrape must not hold a transaction open
        yield GaugeMetricFamily("copydeck_generations_in_flight", "Generations running now (database rows)",
                                value=by_status.get("running", 0))
        yield GaugeMetricFamily("copydeck_generations_queued", "Generations waiting for a worker (database rows)",
                                value=by_status.get("queued", 0))
        depth = GaugeMetricFamily("copydeck_queue_depth", "Jobs waiting in each RQ queue", labels=["queue"])
        names = {queue.name for queue in Queue.all(connection=redis)} | {self.app.config["RQ_QUEUE"]}
        for name in sorted(names):
            depth.add_metric([name], Queue(name, connection=redis).count)
        yield depth
        yield GaugeMetricFamily("copydeck_workers_live", "RQ workers with a recent heartbeat",
                                value=live_worker_count(redis, self.app.config["WORKER_TTL"]))

        raw = {k.decode(): v.decode() for k, v in redis.hgetall(TTFT_KEY).items()}
        cumulative, buckets = 0, []
        for bound in (*map(str, TTFT_BUCKETS), "+Inf"):
            cumulative += int(raw.get(bound, 0))
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily("copydeck_time_to_first_token_seconds",
                                    "From submit to the first token of a generation (queue wait included)",
                                    buckets=buckets, sum_value=float(raw.get("sum", 0)))
        errors = CounterMetricFamily("copydeck_errors", "Errors by kind, across every web and worker process",
                                     labels=["kind"])
        for kind, count in sorted(redis.hgetall(ERRORS_KEY).items()):
            errors.add_metric([kind.decode()], int(count))
        yield errors


def metrics_registry(app: Flask):
    from prometheus_client import CollectorRegistry
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CopydeckCollector(app))
    return registry
