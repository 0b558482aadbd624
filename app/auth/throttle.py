"""Failed log-in limits per account, so that nobody can brute-force one account from many
addresses, and nobody can lock other people out by sharing their address.

Three counters, all of failed attempts only, in moving windows on the rate-limit Redis
(RATELIMIT_STORAGE_URI) through the `limits` library that Flask-Limiter is built on:

1. Per account and client (LOGIN_LIMIT_PER_CLIENT, default 5 per 15 minutes). The client is the
   browser's *device cookie* when it has one for this account, else its IP address. Guessing
   from one place stops after a few tries; other places are not affected.
2. Per account, across every client without a device cookie (LOGIN_LIMIT_PER_ACCOUNT, default
   20 per hour): guessing from many addresses is capped too. This is the only counter an attacker
   can fill for someone else's account, and it never locks out a browser that has logged in to
   the account before (it has the device cookie), nor anyone for longer than the window. A
   password reset by email clears it.
3. Per IP address, any account (LOGIN_LIMIT_PER_IP with Flask-Limiter in app/auth/views.py,
   default 30 failures per 10 minutes): credential stuffing from one address. Device-cookie
   holders are exempt, so a user behind the same office address as an attacker still gets in.

The device cookie (OWASP's "device cookie" pattern) is signed, names the account by a hash of
its email, and is set after each successful log-in; it grants nothing but its own counter.
While locked, the password is not checked at all, so a locked attacker learns nothing.
Counters are keyed by a hash of the normalised email, existing account or not, so the answers
do not reveal which emails have accounts. Behind a proxy the IP is the client's only once
ProxyFix is configured (see the runtime issue); until then every client shares the proxy's.
"""
from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

DEVICE_COOKIE = "copydeck_device"


@dataclass(frozen=True)
class Client:
    """Who is trying: a trusted device of this account, or an address."""

    account: str  # hash of the normalised email
    trusted: bool
    key: str  # "device:<nonce>" or "ip:<address>"


def _limiter(app: Flask | None = None) -> MovingWindowRateLimiter:
    app = app or current_app
    if "login_throttle" not in app.extensions:
        app.extensions["login_throttle"] = MovingWindowRateLimiter(
            storage_from_string(app.config["RATELIMIT_STORAGE_URI"]))
    return app.extensions["login_throttle"]


def _limit(setting: str) -> RateLimitItem:
    return parse(current_app.config[setting])


def account_key(email: str) -> str:
    from app.auth.services import normalise_email
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="copydeck.login-device")


def _device_nonce(account: str) -> str | None:
    """The nonce of this browser's device cookie if it was issued for this account."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie:
        return None
    max_age = current_app.config["LOGIN_DEVICE_DAYS"] * 86400
    try:
        data = _serializer().loads(cookie, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("a") != account or not isinstance(data.get("n"), str):
        return None
    return data["n"]


def client_for(email: str) -> Client:
    account = account_key(email)
    nonce = _device_nonce(account)
    if nonce is not None:
        return Client(account, True, f"device:{nonce}")
    return Client(account, False, f"ip:{request.remote_addr or 'unknown'}")


def has_device_cookie() -> bool:
    """For Flask-Limiter's per-IP limit: is this a known browser of the account in the form?"""
    email = request.form.get("email", "")
    return bool(email) and _device_nonce(account_key(email)) is not None


def _counters(client: Client) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
    counters: list[tuple[RateLimitItem, tuple[str, ...]]] = [
        (_limit("LOGIN_LIMIT_PER_CLIENT"), ("login-client", client.account, client.key))]
    if not client.trusted:
        counters.append((_limit("LOGIN_LIMIT_PER_ACCOUNT"), ("login-account", client.account)))
    return counters


def seconds_locked(client: Client) -> int:
    """0 if this client may try a password for the account now, else how long to wait."""
    limiter = _limiter()
    waits = [math.ceil(limiter.get_window_stats(item, *ids).reset_time - time.time())
             for item, ids in _counters(client) if not limiter.test(item, *ids)]
    return max([1, *waits]) if waits else 0


def failed(client: Client) -> None:
    limiter = _limiter()
    for item, ids in _counters(client):
        limiter.hit(item, *ids)


def succeeded(client: Client, response: Response) -> None:
    """Forget this client's failures and give the browser (a new) device cookie for the account."""
    item, ids = _counters(client)[0]
    _limiter().clear(item, *ids)
    value = _serializer().dumps({"a": client.account, "n": secrets.token_urlsafe(16)})
    response.set_cookie(DEVICE_COOKIE, value, max_age=current_app.config["LOGIN_DEVICE_DAYS"] * 86400,
                        httponly=True, samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])


def forget_account(email: str) -> None:
    """After a password reset by email: the account-wide lock no longer protects anything."""
    _limiter().clear(_limit("LOGIN_LIMIT_PER_ACCOUNT"), "login-account", account_key(email))
