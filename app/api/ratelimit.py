"""Rate limits of /api/v1, per key and per workspace, with Flask-Limiter.

A Limiter of its own, so the API's limits and headers do not depend on the browser's settings
(tests switch the browser's limits off; the API's stay on, at API_RATE_LIMIT_* strings).
Requests whose key is unusable are limited per client address, which also slows key guessing.
Headers follow the IETF RateLimit draft: RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset
(seconds until the window resets) and RateLimit-Policy; a 429 adds Retry-After.
"""
from __future__ import annotations

import time

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.api import auth

api_limiter = Limiter(key_func=get_remote_address, headers_enabled=False, strategy="fixed-window")


def _key_identity() -> str:
    key = auth.load()
    return f"api-key:{key.id}" if key is not None else f"api-anon:{get_remote_address()}"


def _workspace_identity() -> str:
    key = auth.load()
    return f"api-ws:{key.workspace_id}" if key is not None else f"api-anon-ws:{get_remote_address()}"


def per_key() -> str:
    return current_app.config["API_RATE_LIMIT_PER_KEY"]


def per_workspace() -> str:
    return current_app.config["API_RATE_LIMIT_PER_WORKSPACE"]


def limit_blueprint(bp) -> None:
    api_limiter.limit(per_key, key_func=_key_identity, scope="api-key")(bp)
    api_limiter.limit(per_workspace, key_func=_workspace_identity, scope="api-workspace")(bp)


def init_app(app: Flask) -> None:
    """Bind the API limiter; enabled by API_RATELIMIT_ENABLED, whatever RATELIMIT_ENABLED says."""
    saved = app.config.get("RATELIMIT_ENABLED")
    app.config["RATELIMIT_ENABLED"] = app.config["API_RATELIMIT_ENABLED"]
    try:
        api_limiter.init_app(app)
    finally:
        app.config["RATELIMIT_ENABLED"] = saved


def headers(response):
    """Add the RateLimit-* headers of the limit closest to running out (after_request)."""
    current = api_limiter.current_limit if api_limiter.enabled and request.endpoint else None
    if current is None:
        return response
    reset_in = max(0, int(current.reset_at - time.time()))
    limit = current.limit
    response.headers["RateLimit-Limit"] = str(limit.amount)
    response.headers["RateLimit-Remaining"] = str(max(0, current.remaining))
    response.headers["RateLimit-Reset"] = str(reset_in)
    response.headers["RateLimit-Policy"] = f"{limit.amount};w={limit.get_expiry()}"
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, reset_in))
    return response


def retry_after() -> int:
    current = api_limiter.current_limit
    return max(1, int(current.reset_at - time.time())) if current is not None else 1


__all__ = ["api_limiter", "init_app", "headers", "limit_blueprint", "retry_after", "g"]
