"""Periodic maintenance on worker hosts: sweep the outbox, recover generations whose job is gone.

Every worker host runs `start(app)` (one line in the entry point); each round takes a Redis lock first,
so with M worker hosts one of them does the round, and if that host dies its lock expires and another
takes over. A round:
1. `app.outbox.services.sweep()`: jobs and stream endings that could not be delivered after their commit
   (Redis was down, or the process died in between) are delivered now, or settled if too late;
2. `app.generation.recovery.recover()`: generations whose RQ job is gone or dead are requeued, or failed
   and refunded, exactly once, with the final `failed` entry in their stream;
3. `app.webhooks.services.sweep_due()`: webhook attempts whose back-off time has come are enqueued;
4. `app.bulk.services.expire_drafts()`: bulk uploads never started are deleted after BULK_DRAFT_HOURS
   (each keeps its file, up to 10 MB).

It runs in a child process of the worker host (see `start`); it only waits on the database and Redis.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.process import BaseProcess
from typing import Callable

from flask import Flask
from redis.exceptions import RedisError

from app.catalog.tasks import recover_stale_test_runs
from app.extensions import db
from app.generation import recovery
from app.generation.recovery import Report
from app.outbox import services as outbox
from app.webhooks import services as webhooks

log = logging.getLogger(__name__)

LOCK_KEY = "copydeck:maintenance"


@dataclass
class Round:
    """What one round did: outbox rows delivered (or settled), generations requeued and failed,
    and charged template test runs refunded because their job was lost."""

    delivered: int
    recovered: Report
    test_runs_refunded: int = 0
    webhook_attempts: int = 0
    bulk_rows_reconciled: int = 0
    bulk_drafts_expired: int = 0


def run_once(app: Flask) -> Round | None:
    """One round, unless another host holds the lock (then None)."""
    interval = app.config["MAINTENANCE_INTERVAL"]
    redis = app.extensions["redis"]
    # The lock outlives a normal round by far; a host that dies holding it frees it by expiry.
    lock = redis.lock(LOCK_KEY, timeout=max(60, int(interval * 4)), blocking=False)
    if not lock.acquire():
        return None
    try:
        with app.app_context():
            try:
                # A test run's job cannot outlive 2 x JOB_TIMEOUT + 60 s: older ones were lost.
                lost_after = 2 * app.config["JOB_TIMEOUT"] + 60
                from app.bulk import services as bulk_services, tasks as bulk_tasks
                delivered, recovered = outbox.sweep(), recovery.recover()
                test_runs_refunded = recover_stale_test_runs(lost_after)
                webhook_attempts = webhooks.sweep_due()  # webhook retries that are due
                drafts_expired = bulk_services.expire_drafts(timedelta(hours=app.config["BULK_DRAFT_HOURS"]))
                db.session.commit()  # the round owns the transaction: the retries' jobs are enqueued after it
                return Round(delivered, recovered, test_runs_refunded, webhook_attempts=webhook_attempts,
                             bulk_rows_reconciled=bulk_tasks.recover(), bulk_drafts_expired=drafts_expired)
            finally:
                db.session.remove()
    finally:
        try:
            lock.release()
        except RedisError:  # expired or Redis gone: the next round starts afresh
            pass


def run_forever(app: Flask, stopping: Callable[[], bool]) -> None:
    """Rounds every MAINTENANCE_INTERVAL seconds until `stopping()`; a failed round (Redis or the database
    down) is logged and tried again next time."""
    interval = app.config["MAINTENANCE_INTERVAL"]
    while not stopping():
        try:
            run_once(app)
        except Exception:
            log.exception("maintenance round failed")
        next_round = time.monotonic() + interval
        while time.monotonic() < next_round and not stopping():
            time.sleep(min(0.5, interval))


def start(app: Flask) -> BaseProcess:
    """Run this host's rounds in a child process, forked now.

    A process, not a thread: the worker pool forks its workers after this (and again when it respawns
    one), and a fork taken while another thread holds a lock (an import, a connection pool) can leave the
    child deadlocked. The child ends with its parent: SIGKILL to the host's process group, the pool's
    exit (multiprocessing stops daemon children), or, failing both, when it sees it was orphaned.
    """
    parent = os.getpid()
    process = multiprocessing.get_context("fork").Process(
        target=_child, args=(app, parent), name="copydeck-maintenance", daemon=True)
    process.start()
    return process


def _child(app: Flask, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent's exit ends us
    with app.app_context():
        db.engine.dispose(close=False)  # the parent's connections stay the parent's
    run_forever(app, lambda: os.getppid() != parent)
