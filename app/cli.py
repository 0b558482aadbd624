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
        db.session.commit()
        click.echo(f"templates: {counts['created']} created, {counts['updated']} updated, "
                   f"{counts['unchanged']} unchanged")

    @app.cli.command("demo-user")
    def demo_user() -> None:
        """Create the demo login printed by `make run` (idempotent)."""
        from app.auth import services
        from app.workspaces.services import create_personal_workspace, memberships_of
        user = services.find_by_email(DEMO_EMAIL)
        if user is None:
            services.sign_up(DEMO_EMAIL, DEMO_PASSWORD)
        elif not memberships_of(user):  # e.g. they left or deleted their workspace
            create_personal_workspace(user)
        db.session.commit()
        click.echo(f"demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")

    @app.cli.command("recover")
    def recover() -> None:
        """One maintenance round now (what worker hosts do every MAINTENANCE_INTERVAL): deliver the outbox,
        requeue or fail and refund generations whose job is gone, refund lost test runs. Takes the same lock as
        worker hosts."""
        from flask import current_app

        from workers.maintenance import run_once
        done = run_once(current_app._get_current_object())  # type: ignore[attr-defined]  # proxy method, untyped
        if done is None:
            raise click.ClickException("a worker host is running a maintenance round right now; try again")
        click.echo(f"outbox: {done.delivered} delivered or settled; generations requeued: "
                   f"{len(done.recovered.requeued)}, failed and refunded: {len(done.recovered.failed)}; "
                   f"test runs refunded: {done.test_runs_refunded}")

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
        db.session.commit()
        click.echo(f"{workspace.name}: {workspace.seats} seats x {workspace.generations_per_seat} generations "
                   f"({workspace.plan})")

    @app.cli.command("workspaces")
    def list_workspaces() -> None:
        """List workspaces with their seats, so operators can find ids."""
        from sqlalchemy import select

        from app.workspaces.models import Workspace
        for ws in db.session.scalars(select(Workspace).order_by(Workspace.id)):
            click.echo(f"{ws.id}\t{ws.name}\t{ws.plan}\t{ws.seats} seats\t{ws.generations_per_seat}/seat\t{ws.quota_mode}")

    @app.cli.group("users")
    def users() -> None:
        """Manage accounts (site admins)."""

    @users.command("create")
    @click.argument("email")
    @click.option("--admin", is_flag=True, help="make the account a site admin")
    @click.option("--password", help="the password (prompted for, hidden, when left out)")
    def create_user(email: str, admin: bool, password: str | None) -> None:
        """Create an account (with its personal workspace); --admin makes it a site admin.

        An existing account is not changed, except that --admin grants it the role.
        """
        from app.admin.services import AdminError, set_site_admin
        from app.auth import services
        user = services.find_by_email(email)
        if user is None:
            if "@" not in email:
                raise click.ClickException("give an email address")
            if password is None:
                password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
            if len(password) < 8:
                raise click.ClickException("the password needs at least 8 characters")
            user = services.sign_up(email, password)
            db.session.commit()
            click.echo(f"created {user.email}")
        elif not admin:
            raise click.ClickException(f"{user.email} already exists")
        if admin:
            try:
                set_site_admin(None, user, True)
            except AdminError:
                click.echo(f"{user.email} is already a site admin")
            else:
                db.session.commit()
                click.echo(f"{user.email} is now a site admin")
