"""Account rules: sign-up, sign-in and password reset tokens."""
from __future__ import annotations

import functools
import hashlib
import secrets

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.models import User
from app.extensions import db
from app.workspaces.services import create_personal_workspace


class EmailTaken(Exception):
    """An account with this email exists already."""


class InvalidResetToken(Exception):
    """A reset link that is forged, expired or already used; the message says which."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_by_email(email: str) -> User | None:
    return db.session.scalars(select(User).where(func.lower(User.email) == normalise_email(email))).first()


def sign_up(email: str, password: str, *, personal_workspace: bool = True) -> User:
    """Create the account and its personal Free workspace (flushed: the caller commits).

    Someone signing up through an invitation joins that workspace instead (personal_workspace=False):
    an empty personal workspace would only sit in their switcher. Teams' invitation view gives them
    one after all if the invitation cannot be accepted, so nobody is left without a workspace.
    """
    email = normalise_email(email)
    if find_by_email(email) is not None:
        raise EmailTaken(email)
    user = User(email=email)
    user.set_password(password)
    try:
        with db.session.begin_nested():  # a racing sign-up with this email undoes only this insert
            db.session.add(user)
    except IntegrityError as exc:
        raise EmailTaken(email) from exc
    if personal_workspace:
        create_personal_workspace(user)
        db.session.flush()
    return user


@functools.cache
def _decoy_hash() -> str:
    return generate_password_hash(secrets.token_hex(16))


def authenticate(email: str, password: str) -> User | None:
    user = find_by_email(email)
    if user is None:
        check_password_hash(_decoy_hash(), password)  # as slow as a real check: timing does not tell who exists
        return None
    return user if user.check_password(password) else None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="copydeck.password-reset")


def _password_fingerprint(user: User) -> str:
    # Changing the password changes the fingerprint, which makes every earlier link single-use.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def make_reset_token(user: User) -> str:
    return _serializer().dumps({"uid": user.id, "pw": _password_fingerprint(user)})


def user_for_reset_token(token: str) -> User:
    try:
        data = _serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"])
    except SignatureExpired as exc:
        raise InvalidResetToken("This reset link has expired. Ask for a new one.") from exc
    except BadSignature as exc:
        raise InvalidResetToken("This reset link is not valid. Ask for a new one.") from exc
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or data.get("pw") != _password_fingerprint(user):
        raise InvalidResetToken("This reset link has already been used. Ask for a new one.")
    return user


def reset_password(user: User, password: str) -> None:
    """Set the new password and end every login session of the account (remember-me cookies too);
    the caller commits."""
    from app.auth import sessions
    user.set_password(password)
    sessions.end_all(user)
