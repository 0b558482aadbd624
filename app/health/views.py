"""GET /up: the state of the database, Redis and the workers."""
from flask import Blueprint, current_app, jsonify
from rq import Worker
from sqlalchemy import text

from app.extensions import db

bp = Blueprint("health", __name__)


@bp.route("/up")
def up():
    state = {"database": "down", "redis": "down", "workers": 0}
    try:
        db.session.execute(text("SELECT 1"))
        state["database"] = "up"
    except Exception as exc:  # noqa: BLE001 - any failure means down
        current_app.logger.warning("health: database down: %r", exc)
        db.session.rollback()
    redis = current_app.extensions["redis"]
    try:
        redis.ping()
        state["redis"] = "up"
        state["workers"] = Worker.count(connection=redis)
    except Exception as exc:  # noqa: BLE001
        current_app.logger.warning("health: redis down: %r", exc)
    healthy = state["database"] == "up" and state["redis"] == "up" and state["workers"] > 0
    state["status"] = "up" if healthy else "down"
    return jsonify(state), 200 if healthy else 503
