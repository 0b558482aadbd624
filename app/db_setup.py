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
from sqlalchemy.orm import Session

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


_WROTE = "copydeck.flushed"


@event.listens_for(Session, "after_flush")
def _mark_written(session: Session, _context) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _clear_written(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)


def release_write_lock() -> bool:
    """End the session's transaction when it has written nothing, so slow work runs without its locks.

    On SQLite a POST request's first statement takes the database's write lock
    (BEGIN IMMEDIATE), held until commit; rendering an untrusted template may take
    seconds, and every other writer in the site would wait. Loaded objects are
    kept (not expired): the next statement simply begins a new transaction.
    A transaction that already wrote is left alone (False): committing it early
    would break its all-or-nothing promise.
    """
    session = db.session()
    if not session.in_transaction():
        return True
    if session.new or session.dirty or session.deleted or session.info.get(_WROTE):
        return False
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire
    return True
