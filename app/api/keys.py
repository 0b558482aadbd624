"""API key rules: create (the secret is returned once), revoke, and authenticate a Bearer token.

A key is `cd_live_` (production) or `cd_test_` (any other environment) followed by 40 base62
characters. Only its SHA-256 is stored: the secret is 238 random bits, so a fast hash is enough
(a slow password hash buys nothing against a guess space that size) and lookup is one indexed
query. A key of the other environment's kind is refused as malformed, so a staging key pasted
into production fails loudly rather than being looked up.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from app.admin import audit
from app.api.models import SCOPES, ApiKey
from app.auth.models import User
from app.core import commit_step, utcnow
from app.extensions import db
from app.workspaces.models import Membership, Workspace

log = logging.getLogger(__name__)
ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 40
TOKEN_RE = re.compile(r"^cd_(live|test)_([A-Za-z0-9]{%d})$" % SECRET_LENGTH)
NAME_MAX = 80
MAX_KEYS_PER_WORKSPACE = 50
MAX_EXPIRY_DAYS = 3650
LAST_USED_EVERY = timedelta(seconds=60)


class KeyError_(Exception):
    """A key rule was broken; the message says which (shown on the page)."""


class AuthError(Exception):
    """A request's key cannot be used: `code` is the problem type (missing-key, malformed-key, ...)."""

    def __init__(self, code: str, detail: str, status: int = 401):
        super().__init__(detail)
        self.code, self.detail, self.status = code, detail, status


@dataclass
class NewKey:
    key: ApiKey
    secret: str  # shown once, never stored


def mode() -> str:
    return "live" if current_app.config.get("ENV_NAME") == "production" else "test"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keys_of(workspace_id: int) -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).where(ApiKey.workspace_id == workspace_id)
                                   .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc())))


def create(workspace: Workspace, actor: User, *, name: str, scopes: list[str], charge_user_id: int,
           expires_at: datetime | None) -> NewKey:
    """Make a key; the audit entry is written in the same transaction, which the caller commits."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise KeyError_(f"Give the key a name of 1 to {NAME_MAX} characters.")
    scopes = [s for s in SCOPES if s in set(scopes)]
    if not scopes:
        raise KeyError_("Pick at least one scope.")
    if expires_at is not None and not utcnow() < expires_at <= utcnow() + timedelta(days=MAX_EXPIRY_DAYS):
        raise KeyError_("The expiry must be in the future (at most 10 years ahead).")
    member = db.session.scalar(select(Membership).where(Membership.workspace_id == workspace.id,
                                                        Membership.user_id == charge_user_id))
    if member is None:
        raise KeyError_("Pick a member of this workspace for the key to charge.")
    count = db.session.scalar(select(db.func.count()).select_from(ApiKey).where(
        ApiKey.workspace_id == workspace.id, ApiKey.revoked_at.is_(None))) or 0
    if count >= MAX_KEYS_PER_WORKSPACE:
        raise KeyError_(f"A workspace can have at most {MAX_KEYS_PER_WORKSPACE} active keys; revoke one first.")
    secret = f"cd_{mode()}_" + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH))
    key = ApiKey(workspace_id=workspace.id, name=name, display=secret[:16], secret_hash=digest(secret),
                 scopes=scopes, charge_user_id=charge_user_id, created_by_id=actor.id, expires_at=expires_at)
    db.session.add(key)
    db.session.flush()
    audit.record(actor, "api_key.create", "api_key", key.id, after=key.audit_state())
    return NewKey(key, secret)


def revoke(key: ApiKey, actor: User) -> None:
    """Revoke at once (the next request with it is refused, once the caller commits); audited."""
    if key.revoked_at is not None:
        return
    before = key.audit_state()
    key.revoked_at = utcnow()
    audit.record(actor, "api_key.revoke", "api_key", key.id, before=before, after=key.audit_state())


def authenticate(header: str | None) -> ApiKey:
    """The active key of an `Authorization: Bearer <key>` header, or AuthError saying what is wrong."""
    if not header:
        raise AuthError("missing-key", "Send your API key as `Authorization: Bearer <key>`.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("malformed-key", "The Authorization header must be `Bearer <key>`.")
    match = TOKEN_RE.match(token)
    if match is None:
        raise AuthError("malformed-key", "This is not a Copydeck API key: keys start with cd_live_ or cd_test_ "
                        f"followed by {SECRET_LENGTH} letters and digits.")
    if match.group(1) != mode():
        raise AuthError("malformed-key", f"This is a cd_{match.group(1)}_ key; this server takes cd_{mode()}_ keys.")
    key = db.session.scalar(select(ApiKey).where(ApiKey.secret_hash == digest(token)))
    if key is None:
        raise AuthError("invalid-key", "This API key does not exist. Check that it was copied whole.")
    if key.revoked_at is not None:
        raise AuthError("revoked-key", "This API key was revoked. Ask a workspace admin for a new one.")
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise AuthError("expired-key", "This API key has expired. Ask a workspace admin for a new one.")
    return key


def note_use(key, address: str | None) -> None:
    """Record when and from where a key was last used, at most once a minute per key (and address).

    In a transaction of its own, begun after the request's work ended: the view committed what it
    keeps, so whatever is left (a refused request's writes) is rolled back, never committed here. Its
    first statement is the write, so on SQLite it waits its turn for the lock like any writer. Never
    fails the response.
    """
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_EVERY and key.last_used_ip == address:
        return
    try:
        db.session.rollback()
        db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now,
                                                                            last_used_ip=(address or "")[:64]))
        commit_step("the key's last use: a unit of its own, after the request's")
    except Exception:
        db.session.rollback()
        log.warning("could not record the last use of API key %s", key.id, exc_info=True)
