"""Engine tuning per database.

SQLite (the embedded default) runs in WAL mode with a busy timeout. A
transaction that may write starts with BEGIN IMMEDIATE: one that reads and then
writes would otherwise fail with "database is locked" when another writer
committed in between, instead of waiting its turn. Transactions of GET requests
only read, so they start with a plain BEGIN and, thanks to WAL, never wait for
writers: pages and live streams stay fast while submits queue for the lock.
PostgreSQL needs nothing.
"""
from __future__ import annotations

from flask import Flask, has_request_context, request
from sqlalchemy import event

from app.extensions import db


def configure_engine(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN" if read_only_request() else "BEGIN IMMEDIATE")


def read_only_request() -> bool:
    """A GET (or HEAD) request: by HTTP's rules it does not change anything."""
    return has_request_context() and request.method in ("GET", "HEAD", "OPTIONS")
