"""User accounts."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from app.core import utcnow
from app.extensions import db


class User(UserMixin, db.Model):
    """An account. Its Flask-Login id is the identity of one login session (see app.auth.sessions)."""

    __tablename__ = "users"
    # Set on the logged-in user's object by app.auth.sessions (not a column): "<user id>:<session key>".
    if TYPE_CHECKING:  # annotated for mypy only: SQLAlchemy would take an annotation for a column
        login_identity: str | None
        login_session_id: int | None
    login_identity = None
    login_session_id = None

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_site_admin: Mapped[bool] = mapped_column(default=False)
    is_suspended: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login: suspended users cannot log in
        return not self.is_suspended

    def get_id(self) -> str:
        """What Flask-Login stores in the session and the remember cookie: this login's identity."""
        if self.login_identity is None:
            raise RuntimeError("log users in with app.auth.sessions.start(), which gives them a login identity")
        return self.login_identity

    def __eq__(self, other: object) -> bool:  # UserMixin compares get_id(), which is per login
        return self is other or (isinstance(other, User) and self.id is not None and self.id == other.id)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class LoginSession(db.Model):
    """One login of one browser. The cookie holds a random key; only its SHA-256 is stored here.

    A session or remember-me cookie is honoured only while its row exists and has not expired, so
    logging out, "log out of all other sessions", a password reset and a suspension end sessions on
    the server, and a copied cookie replayed later is anonymous.
    """

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    remember: Mapped[bool] = mapped_column(default=False)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
