"""Wire /api/v1 into the app: the OpenAPI document (flask-smorest), Bearer auth, rate limits,
problem+json errors, body limits and the offline docs page.

Later endpoint modules (bulk runs, webhook endpoints) add routes to `app.api.views.bp` before
`init_app` runs, decorated with `auth.scope(...)`; everything below applies to them unchanged.
"""
from __future__ import annotations

import http
import json
import logging
import os

from flask import Blueprint, Flask, render_template
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, default_exceptions

from app.api import auth, problems, ratelimit, schemas
from app.api.views import bp
from app.api import bulk_views  # noqa: F401  (registers /bulk-runs on bp)
from app.api import webhook_views  # noqa: F401  (registers /webhook-endpoints on bp)

log = logging.getLogger(__name__)

CONFIG_PREFIX = "API_V1_"
DEFAULTS = {
    "API_RATELIMIT_ENABLED": lambda: os.environ.get("API_RATELIMIT_ENABLED", "1") not in ("0", "false", "no"),
    "API_RATE_LIMIT_PER_KEY": lambda: os.environ.get("API_RATE_LIMIT_PER_KEY") or "120 per minute",
    "API_RATE_LIMIT_PER_WORKSPACE": lambda: os.environ.get("API_RATE_LIMIT_PER_WORKSPACE") or "600 per minute",
    "API_MAX_BODY_BYTES": lambda: int(os.environ.get("API_MAX_BODY_BYTES") or 64 * 1024),
    "API_IDEMPOTENCY_TTL_HOURS": lambda: int(os.environ.get("API_IDEMPOTENCY_TTL_HOURS") or 24),
}


class CopydeckApi(Api):
    """flask-smorest's Api, documenting errors as problem+json and leaving the app's own error pages alone."""

    ERROR_SCHEMA = schemas.ProblemSchema

    def _register_error_handlers(self):
        """The blueprint answers its own errors (below); the browser's pages keep theirs."""

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["content"] = {problems.CONTENT_TYPE: {"schema": self.ERROR_SCHEMA}}
            self.spec.components.response(status.name, response, lazy=True)
        self.spec.components.response("DEFAULT_ERROR", {
            "description": "Any other problem", "content": {problems.CONTENT_TYPE: {"schema": self.ERROR_SCHEMA}}},
            lazy=True)


def _problem_for_http(exc: HTTPException):
    if exc.code == 429:
        return problems.response("rate-limited", f"Rate limit reached ({exc.description}). Retry after the "
                                 "Retry-After seconds.", headers={"Retry-After": str(ratelimit.retry_after())})
    data = getattr(exc, "data", None)  # webargs/marshmallow validation errors ride on the exception
    if exc.code == 422 and data:
        messages = data.get("messages", {})
        errors: dict[str, list[str]] = {}
        for fields in messages.values():
            for name, value in _flatten(fields):
                errors[name] = value
        names = ", ".join(sorted(errors)) or "the request"
        return problems.response("validation-failed", f"Check {names}.", errors=errors)
    status = exc.code or 400
    code = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 413: "body-too-large",
            415: "unsupported-media-type"}.get(status)
    if code is None:
        return problems.response("bad-request", exc.description or "Bad request.", status=status)
    detail = {413: "The request body is over the API's limit.",
              415: "Send a JSON body with Content-Type: application/json."}.get(status, exc.description or "")
    return problems.response(code, detail)


def _flatten(fields, prefix: str = ""):
    """marshmallow's nested messages as (dotted.name, [messages])."""
    if isinstance(fields, list):
        yield prefix or "body", [str(m) for m in fields]
        return
    for name, value in fields.items():
        name = "fields" if name == "fields_" else str(name)
        dotted = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict) and set(value) == {"value"}:  # Dict field value errors
            value = value["value"]
        if isinstance(value, dict):
            yield from _flatten(value, dotted)
        else:
            yield dotted, [str(m) for m in value] if isinstance(value, list) else [str(value)]


def init_app(app: Flask) -> None:
    from app.extensions import csrf
    from app import security

    for name, default in DEFAULTS.items():
        app.config.setdefault(name, default())
    app.config.setdefault(CONFIG_PREFIX + "API_TITLE", "Copydeck API")
    app.config.setdefault(CONFIG_PREFIX + "API_VERSION", "v1")
    app.config.setdefault(CONFIG_PREFIX + "OPENAPI_VERSION", "3.1.0")
    app.config.setdefault(CONFIG_PREFIX + "OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault(CONFIG_PREFIX + "OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault(CONFIG_PREFIX + "API_SPEC_OPTIONS", {
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "cd_live_… or cd_test_… API key"}}},
        "security": [{"bearer": []}],
        "servers": [{"url": "/"}],
        "info": {"description": "Write copy from your own tools. See the docs page at /api/v1/docs."},
    })

    if not getattr(bp, "_copydeck_wired", False):
        _wire_blueprint()
        bp._copydeck_wired = True
    api = CopydeckApi(app, config_prefix=CONFIG_PREFIX)
    api.register_blueprint(bp)
    app.extensions["copydeck_api"] = api
    csrf.exempt(bp)
    ratelimit.init_app(app)
    for endpoint in app.view_functions:
        if endpoint.startswith("api_v1."):
            security.BODY_LIMITS.setdefault(endpoint, "API_MAX_BODY_BYTES")
    app.register_blueprint(docs_bp)
    from app.api.team_views import bp as keys_page_bp
    app.register_blueprint(keys_page_bp)
    app.register_blueprint(fallback_bp)
    csrf.exempt(fallback_bp)


def _wire_blueprint() -> None:
    """Hooks and handlers of the API blueprint (once per process: the blueprint object is shared)."""
    ratelimit.limit_blueprint(bp)

    @bp.before_request
    def _authenticate():
        auth.require_key()
        return None

    bp.after_request(ratelimit.headers)
    bp.after_request(auth.note_use)

    @bp.errorhandler(problems.Problem)
    def _problem(exc: problems.Problem):
        return problems.from_problem(exc)

    # By code as well as by class: Flask prefers an app-level handler for the code (the browser's
    # error pages) over a blueprint's handler for the class.
    for code in default_exceptions:
        bp.register_error_handler(code, _problem_for_http)
    bp.register_error_handler(HTTPException, _problem_for_http)

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("API request failed")
        return problems.response("internal", "Something went wrong on our side; nothing you sent was at fault. "
                                 "Retry later with the same Idempotency-Key.")



docs_bp = Blueprint("api_docs", __name__)


@docs_bp.route("/api/v1/docs")
def docs():
    """The API reference, rendered on the server from the OpenAPI document (works offline, no script)."""
    from flask import current_app
    spec = current_app.extensions["copydeck_api"].spec.to_dict()
    operations = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                operations.append({"method": method.upper(), "path": path, **op})
    return render_template("api/docs.html", spec=spec, operations=operations,
                           problem_types=problems.TYPES, schemas=spec.get("components", {}).get("schemas", {}),
                           dumps=lambda v: json.dumps(v, indent=2, ensure_ascii=False))


# Unknown paths under /api/v1 are problem+json 404s too (not the browser's HTML page); undocumented.
fallback_bp = Blueprint("api_v1_fallback", __name__, url_prefix="/api/v1")


@fallback_bp.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(path: str):
    return problems.response("not-found", "There is no such API endpoint. See /api/v1/openapi.json.")
