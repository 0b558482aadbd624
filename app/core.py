"""Small helpers every feature uses, with no feature of their own."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Result
from sqlalchemy.orm import Session, scoped_session

# What helpers that write in the caller's transaction accept: a Session, or Flask-SQLAlchemy's `db.session`.
AnySession = Session | scoped_session[Any]
T = TypeVar("T")


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
