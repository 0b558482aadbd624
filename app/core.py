"""Small helpers every feature uses, with no feature of their own.

Transactions have one rule (ARCHITECTURE.md, "Transactions"): the request or the job owns the
transaction, and services flush. A view, a CLI command or a job (views.py, *_views.py, views/,
editor.py, cli.py, tasks.py, recovery.py) commits once its unit of work is done, after the last
service call; a service only writes and flushes (when it needs an id or a constraint's verdict) and
raises a typed error, after which its caller rolls back. The few services that must commit in the
middle of their work say so with `commit_step(reason)`, below; tests/test_boundaries.py keeps it so.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Result
from sqlalchemy.orm import Session, scoped_session

# What helpers that write in the caller's transaction accept: a Session, or Flask-SQLAlchemy's `db.session`.
AnySession = Session | scoped_session[Any]
T = TypeVar("T")
log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Now in UTC as a naive datetime: how every timestamp column stores time (both databases)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class NotFound(LookupError):
    """A row that does not exist, or belongs to another workspace (which must look the same).

    Services raise it; the app answers 404 through the blueprint's own 404 handler (HTML or JSON)."""


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched. `Session.execute` is typed as returning `Result`,
    but for DML it is a `CursorResult`, the type that carries `rowcount`."""
    return cast("CursorResult[Any]", result).rowcount


def required(value: T | None, what: str) -> T:
    """`value`, which the caller knows exists (a row it has just read, written or locked; a built-in plan).
    A clear error naming `what` if it does not, instead of an AttributeError on None further on."""
    if value is None:
        raise RuntimeError(f"{what} does not exist")
    return value


def commit_step(reason: str) -> None:
    """Commit the current transaction now, as a named step of a workflow, from below its owner.

    It commits now because what follows must not run inside this transaction: an outside effect
    (Redis, the network) that must see this state, or work that is a unit of its own and must stand
    whatever the caller does next. `reason` says which, in the code and in the debug log. The uses are
    few and listed in ARCHITECTURE.md ("Transactions"); anything else leaves the commit to its caller.
    """
    from app.extensions import db

    log.debug("commit step: %s", reason)
    db.session.commit()
