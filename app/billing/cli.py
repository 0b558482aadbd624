"""`flask billing ...`: operators' tools."""
from __future__ import annotations

import click
from flask import Blueprint
from sqlalchemy import func, select

from app.billing import gateway, services
from app.billing.models import StripeEvent
from app.billing.tasks import apply_event
from app.extensions import db
from app.workspaces.models import Workspace

cli = Blueprint("billing_cli", __name__, cli_group="billing")


@cli.cli.command("sync")
@click.option("--workspace", "workspace_id", type=int, help="only this workspace")
def sync_command(workspace_id: int | None) -> None:
    """Reconcile subscriptions from Stripe and replay events that never arrived."""
    if not gateway.enabled():
        raise click.ClickException("billing is off: set STRIPE_SECRET_KEY")
    stmt = select(Workspace).where(Workspace.stripe_customer_id.is_not(None))
    if workspace_id:
        stmt = stmt.where(Workspace.id == workspace_id)
    customers = [w.stripe_customer_id for w in db.session.scalars(stmt) if w.stripe_customer_id]
    for customer in customers:
        workspace = services.sync(customer)
        if workspace is None:  # deleted since the query above
            click.echo(f"{customer}: no workspace")
            continue
        db.session.commit()
        click.echo(f"{customer}: workspace {workspace.id} {workspace.plan} x {workspace.seats} "
                   f"({workspace.subscription_status or 'no subscription'})")
    if workspace_id:
        return
    since = db.session.scalar(select(func.max(StripeEvent.created))) or 0
    replayed, starting_after = 0, None
    while True:
        page = gateway.list_events(max(since - 3600, 0), starting_after)
        for event in (e.to_dict() for e in page.data):
            if db.session.get(StripeEvent, event["id"]) is not None:
                continue
            obj = event["data"]["object"]
            db.session.add(StripeEvent(id=event["id"], type=event["type"], created=int(event["created"]),
                                       customer_id=obj.get("customer"), payload=event))
            db.session.commit()
            apply_event(event["id"])
            replayed += 1
        if not page.has_more or not page.data:
            break
        starting_after = page.data[-1]["id"]
    click.echo(f"replayed {replayed} undelivered event(s)")


@cli.cli.command("set-plan")
@click.argument("workspace_id", type=int)
@click.argument("plan_key")
@click.option("--seats", type=int)
def set_plan_command(workspace_id: int, plan_key: str, seats: int | None) -> None:
    """Assign a plan (and seats) by hand: for self-hosted use with billing off."""
    workspace = db.session.get(Workspace, workspace_id)
    if workspace is None:
        raise click.ClickException(f"no workspace {workspace_id}")
    try:
        services.apply_plan(workspace, plan_key, seats)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"{workspace.name}: {workspace.plan} x {workspace.seats} seats, "
               f"{workspace.generations_per_seat} generations per seat")
