"""Engine tuning per database.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every
transaction starts with BEGIN IMMEDIATE: a transaction that reads and then
writes would otherwise fail with "database is locked" when another writer
committed in between, instead of waiting its turn. PostgreSQL needs nothing.
"""
from __future__ import annotations

from flask import Flask
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
        connection.exec_driver_sql("BEGIN IMMEDIATE")
