"""Flask CLI commands: seed the catalogue, create the demo user, recover lost jobs."""
from __future__ import annotations

import click
from flask import Flask

from app.extensions import db

DEMO_EMAIL = "demo@copydeck.app"
DEMO_PASSWORD = "copydeck-demo"


def register_cli(app: Flask) -> None:
    @app.cli.command("seed")
    def seed() -> None:
        """Load the built-in templates from app/catalog/seed (idempotent)."""
        from app.catalog.services import seed_templates
        counts = seed_templates()
        click.echo(f"templates: {counts['created']} created, {counts['updated']} updated, "
                   f"{counts['unchanged']} unchanged")

    @app.cli.command("demo-user")
    def demo_user() -> None:
        """Create the demo login printed by `make run` (idempotent)."""
        from app.auth import services
        if services.find_by_email(DEMO_EMAIL) is None:
            services.sign_up(DEMO_EMAIL, DEMO_PASSWORD)
        click.echo(f"demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")

    @app.cli.command("recover")
    @click.option("--older-than", default=900, show_default=True, help="seconds")
    def recover(older_than: int) -> None:
        """Fail and refund generations whose job was lost (queued/running too long)."""
        from app.generation.tasks import recover_stale
        click.echo(f"recovered {recover_stale(older_than)} generation(s)")

    @app.cli.command("create-db")
    def create_db() -> None:
        """Create tables directly (tests); production uses `flask db upgrade`."""
        db.create_all()
