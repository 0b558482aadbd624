"""RQ jobs of billing: apply a stored Stripe event by re-syncing its customer."""
from __future__ import annotations

import logging

from app.core import utcnow
from app.billing import services
from app.billing.models import StripeEvent
from app.extensions import db

log = logging.getLogger(__name__)


def apply_event(event_id: str) -> str:
    from app.jobs import job_app

    with job_app().app_context():
        try:
            return _apply(event_id)
        finally:
            db.session.remove()


def _apply(event_id: str) -> str:
    event = db.session.get(StripeEvent, event_id)
    if event is None or event.status == "applied":
        return "skipped"
    if not event.customer_id:
        event.status, event.note = "ignored", "no customer on this event"
        db.session.commit()
        return event.status
    workspace = services.sync(event.customer_id)
    db.session.commit()  # what Stripe grants now, whatever happens to the event below
    event = db.session.get(StripeEvent, event_id)
    if event is None:  # deleted while the subscription was synced
        return "skipped"
    if workspace is None:
        event.status, event.note = "ignored", f"unknown customer {event.customer_id}"
        log.warning("stripe event %s for unknown customer %s", event_id, event.customer_id)
    else:
        event.status, event.note = "applied", f"workspace {workspace.id}: {workspace.plan} x {workspace.seats}"
    event.applied_at = utcnow()
    db.session.commit()
    return event.status
