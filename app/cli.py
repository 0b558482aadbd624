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
        from app.billing.services import seed_plans
        from app.catalog.services import seed_templates
        seed_plans()
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

    @app.cli.command("set-seats")
    @click.argument("workspace_id", type=int)
    @click.argument("seats", type=int)
    @click.option("--generations", type=int, help="generations per seat per period")
    @click.option("--plan", help="plan name to show (e.g. pro)")
    @click.option("--force", is_flag=True, help="allow fewer seats than members + pending invitations")
    def set_seats(workspace_id: int, seats: int, generations: int | None, plan: str | None, force: bool) -> None:
        """Size a workspace by hand (self-hosted, or until billing does it)."""
        from app.workspaces.services import TeamError, set_seats as apply
        try:
            workspace = apply(workspace_id, seats, generations, plan, force)
        except TeamError as exc:
            raise click.ClickException(str(exc)) from exc
        except Exception as exc:  # NoResultFound: an unknown id
            raise click.ClickException(f"no workspace {workspace_id}") from exc
        click.echo(f"{workspace.name}: {workspace.seats} seats x {workspace.generations_per_seat} generations "
                   f"({workspace.plan})")

    @app.cli.command("workspaces")
    def list_workspaces() -> None:
        """List workspaces with their seats, so operators can find ids."""
        from sqlalchemy import select

        from app.workspaces.models import Workspace
        for ws in db.session.scalars(select(Workspace).order_by(Workspace.id)):
            click.echo(f"{ws.id}\t{ws.name}\t{ws.plan}\t{ws.seats} seats\t{ws.generations_per_seat}/seat\t{ws.quota_mode}")

    @app.cli.command("create-db")
    def create_db() -> None:
        """Create tables directly (tests); production uses `flask db upgrade`."""
        db.create_all()
