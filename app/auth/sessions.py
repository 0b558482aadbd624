"""Login sessions kept on the server, so that ending a session really ends it.

Flask's session cookie is signed, not stored: without a server-side record, a copy of it taken
before /logout keeps working. Each login therefore gets a random key; the browser's cookies
(the session, and the remember-me cookie when asked for) carry "<user id>:<key>" as the
Flask-Login id, and `login_sessions` stores the key's SHA-256 with an expiry. A request is
logged in only while that row exists, has not expired and the account is not suspended.

- /logout deletes this login's row.
- "Log out of all other sessions" deletes every other row of the user.
- A password reset and a suspension delete every row of the user.

The functions here touch only the database; Flask-Login's cookies are the views' business.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from app.auth.models import LoginSession, User

from app.core import rowcount, utcnow
from app.bounds import whole_number
from app.extensions import db


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _split(identity: str) -> tuple[int, str] | None:
    """(user id, key hash) of a "<user id>:<key>" identity, or None if it is not one."""
    user_part, sep, key = str(identity).partition(":")
    try:
        user_id = whole_number(user_part)
    except ValueError:
        return None
    if not sep or not 20 <= len(key) <= 100:
        return None
    return user_id, _hash(key)


def lifetime() -> timedelta:
    """How long any login lasts at most, remembered or not (REMEMBER_COOKIE_DURATION)."""
    return current_app.config["REMEMBER_COOKIE_DURATION"]


def start(user: User, *, remember: bool, user_agent: str = "") -> None:
    """Record a new login of this user and give the object its identity (flushed: the caller commits).

    The caller then commits and hands the user to Flask-Login's `login_user`, which stores the identity.
    Expired rows of every user are deleted on the way, so the table holds live logins only.
    """
    now = utcnow()
    db.session.execute(delete(LoginSession).where(LoginSession.expires_at <= now))
    key = secrets.token_urlsafe(32)
    printable = "".join(ch for ch in user_agent[:400] if ch.isprintable())  # no NUL or control bytes in the DB
    row = LoginSession(user_id=user.id, key_hash=_hash(key), remember=remember, user_agent=printable[:200],
                       created_at=now, expires_at=now + lifetime())
    db.session.add(row)
    db.session.flush()  # its id names this login on the account page
    user.login_identity, user.login_session_id = f"{user.id}:{key}", row.id


def load(identity: str) -> User | None:
    """The user of a live login session, with its identity set; None for anything else."""
    parts = _split(identity)
    if parts is None:
        return None
    user_id, key_hash = parts
    found = db.session.execute(
        select(User, LoginSession.id).join(LoginSession, LoginSession.user_id == User.id)
        .where(User.id == user_id, LoginSession.key_hash == key_hash, LoginSession.expires_at > utcnow())
    ).first()
    if found is None or not found[0].is_active:
        return None
    user, session_id = found
    user.login_identity, user.login_session_id = identity, session_id
    return user


def still_valid(identity: str) -> bool:
    """Is this login still live? One indexed query on its own connection, for long-lived
    responses (SSE) that have released the request's session: False once the user logged out,
    was logged out everywhere, reset their password or was suspended."""
    parts = _split(identity)
    if parts is None:
        return False
    user_id, key_hash = parts
    with db.engine.connect() as conn:
        return conn.execute(
            select(LoginSession.id).join(User, User.id == LoginSession.user_id)
            .where(User.id == user_id, LoginSession.key_hash == key_hash, LoginSession.expires_at > utcnow(),
                   User.is_suspended.is_(False))
        ).first() is not None


def end(user: User) -> None:
    """End this login (the one `user` was loaded with); flushes, the caller commits."""
    if user.login_session_id is not None:
        db.session.execute(delete(LoginSession).where(LoginSession.id == user.login_session_id))


def end_all(user: User, *, keep_current: bool = False) -> int:
    """End every login of the user (optionally all but the current one); flushes, the caller commits.

    Returns how many were ended.
    """
    stmt = delete(LoginSession).where(LoginSession.user_id == user.id)
    if keep_current and user.login_session_id is not None:
        stmt = stmt.where(LoginSession.id != user.login_session_id)
    return rowcount(db.session.execute(stmt)) or 0


def active(user: User) -> list[LoginSession]:
    """The user's live logins, newest first."""
    return list(db.session.scalars(
        select(LoginSession).where(LoginSession.user_id == user.id, LoginSession.expires_at > utcnow())
        .order_by(LoginSession.created_at.desc(), LoginSession.id.desc())))

