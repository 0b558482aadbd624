"""Periodic maintenance on worker hosts: sweep the outbox, recover generations whose job is gone.

Every worker host runs `start(app)` (one line in the entry point); each round takes a Redis lock first,
so with M worker hosts one of them does the round, and if that host dies its lock expires and another
takes over. A round:
1. `app.outbox.services.sweep()`: jobs and stream endings that could not be delivered after their commit
   (Redis was down, or the process died in between) are delivered now, or settled if too late;
2. `app.generation.recovery.recover()`: generations whose RQ job is gone or dead are requeued, or failed
   and refunded, exactly once, with the final `failed` entry in their stream.

It runs in a daemon thread: it only waits on the database and Redis, and must never stop the worker.
"""
from __future__ import annotations

import logging
import threading

from flask import Flask
from redis.exceptions import RedisError

from app.extensions import db

log = logging.getLogger(__name__)

LOCK_KEY = "copydeck:maintenance"


def run_once(app: Flask) -> bool:
    """One round, if no other host holds the lock; returns whether this host ran it."""
    interval = app.config["MAINTENANCE_INTERVAL"]
    redis = app.extensions["redis"]
    # The lock outlives a normal round by far; a host that dies holding it frees it by expiry.
    lock = redis.lock(LOCK_KEY, timeout=max(60, int(interval * 4)), blocking=False)
    if not lock.acquire():
        return False
    try:
        from app.generation.recovery import recover
        from app.outbox.services import sweep

        with app.app_context():
            try:
                sweep()
                recover()
            finally:
                db.session.remove()
    finally:
        try:
            lock.release()
        except RedisError:  # expired or Redis gone: the next round starts afresh
            pass
    return True


class MaintenanceThread(threading.Thread):
    """Rounds every MAINTENANCE_INTERVAL seconds until stopped (a daemon: it never holds the worker up)."""

    def __init__(self, app: Flask):
        super().__init__(name="copydeck-maintenance", daemon=True)
        self.app = app
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                run_once(self.app)
            except Exception:  # Redis or the database down: try again next round
                log.exception("maintenance round failed")
            self.stopping.wait(self.app.config["MAINTENANCE_INTERVAL"])

    def stop(self, timeout: float | None = None) -> None:
        """Finish the round under way, then end."""
        self.stopping.set()
        self.join(timeout)


def start(app: Flask) -> MaintenanceThread:
    """Start the periodic rounds of this host."""
    thread = MaintenanceThread(app)
    thread.start()
    return thread
