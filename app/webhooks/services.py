"""Webhook rules: register endpoints, emit events, sign them, schedule attempts, redeliver.

Why the pieces are where they are:
- `emit()` writes the event and its deliveries in the caller's transaction and records each first attempt
  in the outbox (`enqueue_after_commit`), so an event exists exactly when the change it reports committed,
  and its first attempt is enqueued right after the commit (or by the outbox sweep if Redis blinked).
- Retries are not RQ's: a pending delivery carries `next_attempt_at` in the database and the maintenance
  round (`sweep_due`) enqueues the attempts that are due. The schedule is then visible on the endpoint's
  page, survives a Redis flush, needs no RQ scheduler (single-process workers run without one), and
  disabling an endpoint or redelivering is a row update. The cost is precision: an attempt starts within
  MAINTENANCE_INTERVAL (15 s) of its time, which is nothing next to minutes of back-off.
- Each attempt is one job `webhook-<delivery>-<attempt>`; it first claims its attempt with a conditional
  UPDATE (`attempts = n`), so a job run twice sends and records once (see tasks.py).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.orm import joinedload

from app.admin import audit
from app.auth.models import User
from app.core import AnySession, rowcount, utcnow
from app.extensions import db
from app.outbox.services import enqueue_after_commit
from app.webhooks import guard
from app.webhooks.models import EVENT_TYPES, TEST_EVENT, WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.workspaces.models import Workspace

FEATURE = "api_access"
MAX_ENDPOINTS = 20  # per workspace
MAX_DESCRIPTION = 200
DELIVERY_JOB = "app.webhooks.tasks.deliver"
# An attempt's job lease: if its job is lost, the sweep tries again after this. Longer than any attempt.
ATTEMPT_LEASE = timedelta(minutes=5)
ROTATION_GRACE = timedelta(hours=24)


class WebhookError(Exception):
    """A request the rules refuse; the message is for the user."""


class InvalidEndpoint(WebhookError):
    def __init__(self, message: str, field: str = "url"):
        super().__init__(message)
        self.field = field


class NotAvailable(WebhookError):
    """The workspace's plan has no api_access."""


# --- endpoints -------------------------------------------------------------------------------------------

def _settings() -> dict[str, Any]:
    config = current_app.config
    return {"allowed_hosts": frozenset(config["WEBHOOK_ALLOWED_HOSTS"]),
            "require_https": config["WEBHOOK_REQUIRE_HTTPS"]}


def check_url(url: str) -> guard.Target:
    """The SSRF guard with this app's settings; raises guard.UnsafeURL."""
    return guard.check(url, **_settings())


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _clean_events(events: list[str]) -> list[str]:
    chosen = [e for e in EVENT_TYPES if e in set(events or [])]
    unknown = set(events or []) - set(EVENT_TYPES)
    if unknown:
        raise InvalidEndpoint(f"Unknown event: {sorted(unknown)[0][:40]}.", "events")
    if not chosen:
        raise InvalidEndpoint("Choose at least one event to send.", "events")
    return chosen


def _validated_url(url: str) -> str:
    try:
        check_url(url)
    except guard.UnsafeURL as exc:
        raise InvalidEndpoint(str(exc), "url") from None
    return url.strip()


def endpoints_of(workspace_id: int) -> list[WebhookEndpoint]:
    return list(db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.workspace_id == workspace_id)
                                   .order_by(WebhookEndpoint.id)))


def create_endpoint(workspace: Workspace, actor: User | None, url: str, events: list[str],
                    description: str = "") -> WebhookEndpoint:
    """Register an endpoint (URL checked by the SSRF guard, events known). Caller commits."""
    from app.billing.services import has_feature

    if not has_feature(workspace, FEATURE):
        raise NotAvailable("Webhooks come with the Business plan.")
    count = db.session.scalar(select(db.func.count(WebhookEndpoint.id))
                              .where(WebhookEndpoint.workspace_id == workspace.id)) or 0
    if count >= MAX_ENDPOINTS:
        raise InvalidEndpoint(f"A workspace can have at most {MAX_ENDPOINTS} webhook endpoints.")
    endpoint = WebhookEndpoint(workspace_id=workspace.id, url=_validated_url(url), events=_clean_events(events),
                               description=(description or "").strip()[:MAX_DESCRIPTION], secret=new_secret(),
                               enabled=True)
    db.session.add(endpoint)
    db.session.flush()
    audit.record(actor, "webhook.create", "webhook_endpoint", endpoint.id,
                 after={"url": endpoint.url, "events": endpoint.events, "workspace_id": workspace.id})
    return endpoint


def update_endpoint(endpoint: WebhookEndpoint, actor: User | None, url: str, events: list[str],
                    description: str, enabled: bool) -> None:
    before = {"url": endpoint.url, "events": endpoint.events, "enabled": endpoint.enabled}
    new_url = _validated_url(url) if url.strip() != endpoint.url else endpoint.url
    endpoint.events = _clean_events(events)
    endpoint.url = new_url
    endpoint.description = (description or "").strip()[:MAX_DESCRIPTION]
    endpoint.enabled = bool(enabled)
    audit.record(actor, "webhook.update", "webhook_endpoint", endpoint.id, before=before,
                 after={"url": endpoint.url, "events": endpoint.events, "enabled": endpoint.enabled})


def rotate_secret(endpoint: WebhookEndpoint, actor: User | None) -> None:
    """A new secret at once; the old one keeps signing beside it for ROTATION_GRACE."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = utcnow() + ROTATION_GRACE
    endpoint.secret = new_secret()
    audit.record(actor, "webhook.rotate_secret", "webhook_endpoint", endpoint.id)


def delete_endpoint(endpoint: WebhookEndpoint, actor: User | None) -> None:
    audit.record(actor, "webhook.delete", "webhook_endpoint", endpoint.id, before={"url": endpoint.url})
    db.session.delete(endpoint)


# --- events and deliveries ----------------------------------------------------------------------------

def _new_delivery(session: AnySession, event: WebhookEvent, endpoint: WebhookEndpoint,
                  redelivery_of: int | None = None) -> WebhookDelivery:
    delivery = WebhookDelivery(workspace_id=event.workspace_id, event=event, endpoint=endpoint, status="pending",
                               attempts=0, next_attempt_at=utcnow() + ATTEMPT_LEASE, redelivery_of_id=redelivery_of)
    session.add(delivery)
    session.flush()
    _schedule(session, delivery)
    return delivery


def _schedule(session: AnySession, delivery: WebhookDelivery) -> None:
    """The delivery's next attempt, as an RQ job recorded in the outbox (enqueued after commit)."""
    enqueue_after_commit(session, DELIVERY_JOB, delivery.id, delivery.attempts,
                         job_id=f"webhook-{delivery.id}-{delivery.attempts}",
                         job_timeout=current_app.config["WEBHOOK_DEADLINE"] + 30, result_ttl=600)


def _record_event(session: AnySession, workspace_id: int, event_type: str, payload: dict[str, Any]) -> WebhookEvent:
    event = WebhookEvent(public_id="evt_" + secrets.token_hex(12), workspace_id=workspace_id, type=event_type,
                         payload=payload)
    session.add(event)
    return event


def emit(session: AnySession, workspace_id: int, event_type: str, payload: dict[str, Any]) -> WebhookEvent | None:
    """Record `event_type` for the workspace's enabled endpoints that subscribe to it, in `session`'s
    transaction; each delivery's first attempt is enqueued after that transaction commits.

    Nothing is written when no endpoint wants the event (or the plan has no api_access), so workspaces
    without webhooks pay one indexed query. The caller commits (or rolls back: then nothing is sent).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event {event_type!r}")
    endpoints = [e for e in session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.workspace_id == workspace_id, WebhookEndpoint.enabled.is_(True))) if e.subscribes(event_type)]
    if not endpoints:
        return None
    from app.billing.services import has_feature

    workspace = session.get(Workspace, workspace_id)
    if workspace is None or not has_feature(workspace, FEATURE):
        return None
    event = _record_event(session, workspace_id, event_type, payload)
    for endpoint in endpoints:
        _new_delivery(session, event, endpoint)
    return event


def send_test(endpoint: WebhookEndpoint, actor: User | None) -> WebhookDelivery:
    """A `webhook.test` event to this endpoint only. Caller commits."""
    event = _record_event(db.session, endpoint.workspace_id, TEST_EVENT,
                          {"message": "A test event from Copydeck.", "endpoint_id": endpoint.id})
    audit.record(actor, "webhook.test", "webhook_endpoint", endpoint.id)
    return _new_delivery(db.session, event, endpoint)


def redeliver(delivery: WebhookDelivery, actor: User | None) -> WebhookDelivery:
    """Send the same event (same `evt_` id, so receivers can deduplicate) again, as a new delivery."""
    if not delivery.endpoint.enabled:
        raise WebhookError("This endpoint is disabled; enable it to redeliver.")
    audit.record(actor, "webhook.redeliver", "webhook_delivery", delivery.id,
                 after={"event": delivery.event.public_id})
    return _new_delivery(db.session, delivery.event, delivery.endpoint, redelivery_of=delivery.id)


def deliveries_of(endpoint: WebhookEndpoint, limit: int = 50) -> list[WebhookDelivery]:
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
                                   .options(joinedload(WebhookDelivery.event))
                                   .order_by(WebhookDelivery.id.desc()).limit(limit)))


# --- signing and the schedule ----------------------------------------------------------------------------

def event_body(event: WebhookEvent) -> bytes:
    """The JSON body every attempt of this event sends (the same bytes each time)."""
    created = event.created_at if event.created_at.tzinfo else event.created_at.replace(tzinfo=timezone.utc)
    document = {"id": event.public_id, "object": "event", "type": event.type, "created": int(created.timestamp()),
                "workspace_id": event.workspace_id, "data": event.payload}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of "<timestamp>.<body>", as Stripe signs its webhooks."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(endpoint: WebhookEndpoint, timestamp: int, body: bytes, now: datetime | None = None) -> str:
    """`t=<unix>,v1=<hex>`, with a second v1 for the previous secret while its rotation grace lasts."""
    parts = [f"t={timestamp}", f"v1={sign(endpoint.secret, timestamp, body)}"]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and (now or utcnow()) < expires:
        parts.append(f"v1={sign(endpoint.previous_secret, timestamp, body)}")
    return ",".join(parts)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: BASE x FACTOR^(attempts-1), capped.

    Defaults: 1 min, 3, 9, 27 min, 1 h 21, 4 h 03, then every 8 h: 9 attempts over about 22 h.
    """
    config = current_app.config
    seconds = config["WEBHOOK_RETRY_BASE"] * config["WEBHOOK_RETRY_FACTOR"] ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, config["WEBHOOK_RETRY_CAP"]))


def next_attempt_after_failure(event_created: datetime, attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed attempts, or None to give up: the next attempt would
    start more than WEBHOOK_RETRY_WINDOW (24 h) after the event."""
    at = now + retry_delay(attempts)
    if at > event_created + timedelta(seconds=current_app.config["WEBHOOK_RETRY_WINDOW"]):
        return None
    return at


def sweep_due(limit: int = 200) -> int:
    """Enqueue the pending attempts that are due (retries, and attempts whose job was lost).

    Runs in the maintenance round, which commits. Each is pushed a lease ahead and recorded in the outbox
    in that one commit, so two rounds cannot both schedule it, and its job claims the attempt before
    sending anyway.
    Events older than WEBHOOK_RETENTION_DAYS (30) go, with their deliveries (the foreign key cascades).
    """
    now = utcnow()
    due = list(db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at).limit(limit)))
    for delivery in due:
        moved = rowcount(db.session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "pending",
                                          WebhookDelivery.next_attempt_at == delivery.next_attempt_at)
            .values(next_attempt_at=now + ATTEMPT_LEASE).execution_options(synchronize_session=False)))
        if moved:
            _schedule(db.session, delivery)
    db.session.execute(delete(WebhookEvent).where(
        WebhookEvent.created_at < now - timedelta(days=current_app.config["WEBHOOK_RETENTION_DAYS"])))
    return len(due)
