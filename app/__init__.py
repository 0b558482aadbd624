"""Copydeck application factory."""
from __future__ import annotations

from typing import Any

from flask import Flask

from app import config as config_module
from app.extensions import csrf, db, limiter, login_manager, migrate


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, CLI — nothing else."""
    app = Flask(
        __name__,
        template_folder=str(config_module.ROOT / "templates"),
        static_folder=str(config_module.ROOT / "static"),
        instance_path=str(config_module.INSTANCE),
    )
    app.config.update(config_module.load())
    if overrides:
        app.config.update(overrides)
    _check_config(app)
    if app.instance_path:
        config_module.INSTANCE.mkdir(parents=True, exist_ok=True)
    from app import observability, security
    observability.configure_logging(app)
    security.init_app(app)
    observability.init_request_ids(app)

    db.init_app(app)
    from app import db_setup
    db_setup.configure_engine(app)
    migrate.init_app(app, db, directory=str(config_module.ROOT / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)

    from app import jobs
    jobs.init_app(app)
    from app import bounds
    bounds.install_converters(app)  # before any route exists: bounded <int:...> ids
    bounds.init_app(app)

    from app import models  # noqa: F401  (every model, for Alembic and relationships)
    from app.admin.views import bp as admin_bp
    from app.auth.views import bp as auth_bp
    from app.billing.cli import cli as billing_cli
    from app.billing.views import bp as billing_bp
    from app.brand.views import bp as brand_bp
    from app.bulk.views import bp as bulk_bp
    from app.catalog.editor import site_bp as template_admin_bp, workspace_bp as workspace_templates_bp
    from app.catalog.views import bp as catalog_bp
    from app.checks.views import bp as checks_bp
    from app.exports.views import bp as exports_bp
    from app.generation.views import bp as generation_bp
    from app.health.cli import cli as workers_cli
    from app.health.views import bp as health_bp
    from app.history.views import bp as history_bp
    from app.projects.views import bp as projects_bp
    from app.teams.views import bp as teams_bp
    from app.webhooks.views import bp as webhooks_bp
    from app.knowledge.views import bp as knowledge_bp

    for blueprint in (auth_bp, catalog_bp, generation_bp, history_bp, health_bp, teams_bp, brand_bp, projects_bp,
                      billing_bp, billing_cli, workers_cli, admin_bp, template_admin_bp, workspace_templates_bp,
                      checks_bp, exports_bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(bulk_bp)
    app.register_blueprint(knowledge_bp)
    csrf.exempt(health_bp)
    from app.api.setup import init_app as init_api
    init_api(app)  # /api/v1 (Bearer keys, no CSRF), its OpenAPI document and docs page

    from app import web
    web.init_app(app)
    from app.cli import register_cli
    register_cli(app)
    return app


def _check_config(app: Flask) -> None:
    """Refuse settings that would break the job's time budget."""
    deadline, job_timeout = app.config["LLM_DEADLINE"], app.config["JOB_TIMEOUT"]
    if deadline + 20 > job_timeout:
        raise RuntimeError(
            f"LLM_DEADLINE ({deadline}s) plus 20s for storing results must fit in JOB_TIMEOUT ({job_timeout}s)"
        )
