"""Health and metrics endpoints for load balancers, orchestrators and Prometheus.

- GET /up        liveness: this web process answers. No dependency is touched, so an outage of
                 the database, Redis or the workers never takes the web tier out of rotation.
- GET /up/ready  readiness: the database and Redis answer (200, else 503). Live workers are
                 reported for information only; `flask workers health` is the workers' own check.
- GET /metrics   Prometheus text format; 404 unless the caller shows METRICS_TOKEN as a bearer
                 token, or (no token configured) calls from loopback without a proxy in between.
"""
from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import text

from app.extensions import db
from app.health import checks

bp = Blueprint("health", __name__)


@bp.route("/up")
def up():
    return jsonify(status="up")


@bp.route("/up/ready")
def ready():
    state = {"database": "down", "redis": "down"}
    try:
        db.session.execute(text("SELECT 1"))
        state["database"] = "up"
    except Exception as exc:  # noqa: BLE001 - any failure means down
        current_app.logger.warning("readiness: database down: %r", exc)
        db.session.rollback()
    redis = current_app.extensions["redis"]
    try:
        redis.ping()
        state["redis"] = "up"
        state["workers"] = checks.live_worker_count(redis, current_app.config["WORKER_TTL"])
    except Exception as exc:  # noqa: BLE001
        current_app.logger.warning("readiness: redis down: %r", exc)
    healthy = state["database"] == "up" and state["redis"] == "up"
    state["status"] = "up" if healthy else "down"
    return jsonify(state), 200 if healthy else 503


def _metrics_allowed() -> bool:
    token = current_app.config["METRICS_TOKEN"]
    if token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False  # came through a proxy: the loopback address is the proxy's, not the caller's
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.route("/metrics")
def metrics():
    if not _metrics_allowed():
        abort(404)
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    registry = checks.metrics_registry(current_app._get_current_object())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
