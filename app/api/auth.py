"""Who is calling /api/v1: the Bearer key, checked once per request and kept on `g`.

Cookies never authenticate the API: nothing here reads the session or Flask-Login, so a
logged-in browser without a key gets a 401 like anyone else (and the API needs no CSRF token).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import wraps

from flask import g, request
from sqlalchemy import and_, select

from app.api import keys
from app.api.problems import Problem
from app.auth.models import User
from app.billing.services import enforce_grace, has_feature
from app.core import required
from app.extensions import db
from app.workspaces.models import Membership, Workspace

_UNSET = object()


@dataclass(frozen=True)
class CallerKey:
    """The request's key as plain values: views release the database session (wait, stream) and
    commit, and must still know who is calling."""
    id: int
    workspace_id: int
    name: str
    display: str
    scopes: tuple[str, ...]
    charge_user_id: int | None
    last_used_at: datetime | None
    last_used_ip: str | None


def load() -> CallerKey | None:
    """The request's key, or None (the AuthError is kept in g.api_auth_error). Cached per request."""
    if getattr(g, "api_key", _UNSET) is _UNSET:
        g.api_key, g.api_auth_error = None, None
        try:
            key = keys.authenticate(request.headers.get("Authorization"))
        except keys.AuthError as exc:
            g.api_auth_error = exc
        else:
            g.api_key = CallerKey(key.id, key.workspace_id, key.name, key.display, tuple(key.scopes),
                                  key.charge_user_id, key.last_used_at, key.last_used_ip)
    return g.api_key


def require_key() -> None:
    """Before every API request: a usable key of a workspace whose plan has API access."""
    key = load()
    if key is None:
        exc = g.api_auth_error
        raise Problem(exc.code, exc.detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'
                                                     if exc.code != "missing-key" else "Bearer"})
    # One query for the workspace, the charged member and their user (every API request pays for it).
    found = db.session.execute(
        select(Workspace, Membership, User)
        .outerjoin(Membership, and_(Membership.workspace_id == Workspace.id, Membership.user_id == key.charge_user_id))
        .outerjoin(User, User.id == Membership.user_id)
        .where(Workspace.id == key.workspace_id)
    ).first()
    workspace, member, user = required(found, f"workspace {key.workspace_id}")
    enforce_grace(workspace)
    if not has_feature(workspace, "api_access"):
        raise Problem("plan-required", "This workspace's plan does not include API access. An owner can upgrade "
                      "in Billing; existing keys work again as soon as the plan includes it.")
    if member is None or user is None:
        raise Problem("invalid-key", "The member this key charges is no longer in the workspace. "
                      "Ask a workspace admin for a new key.", headers={"WWW-Authenticate": "Bearer"})
    g.api_workspace = workspace
    g.api_user = user


def note_use(response):
    """After an authenticated request: record the key's last use (keys.note_use)."""
    key = getattr(g, "api_key", None)
    if key is not None and getattr(g, "api_workspace", None) is not None:
        keys.note_use(key, request.remote_addr)
    return response


def scope(name: str):
    """The view needs this scope on the key: 403 insufficient-scope otherwise."""
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if name not in g.api_key.scopes:
                raise Problem("insufficient-scope", f"This key lacks the `{name}` scope. Create a key with it in "
                              "Team → API keys.", required_scope=name)
            return view(*args, **kwargs)
        wrapper._api_scope = name
        return wrapper
    return decorator
