"""The delivery job: one signed attempt of one delivery, recorded once.

`deliver(delivery_id, attempt)` claims attempt number `attempt` with a conditional UPDATE
(`attempts = attempt` -> `attempt + 1`) and commits before any network I/O; a second run of the same job
(an RQ retry, the outbox sweep racing the after-commit hook) finds the attempt taken and does nothing.
The result is written by a second conditional UPDATE on that same attempt number.
"""
from __future__ import annotations

import logging
from datetime import timezone

from flask import current_app
from sqlalchemy import update

from app.core import required, rowcount, utcnow
from app.extensions import db
from app.webhooks import guard, services
from app.webhooks.models import WebhookDelivery
from app.jobs import job_app

log = logging.getLogger(__name__)

USER_AGENT = "Copydeck-Webhooks/1.0"


def deliver(delivery_id: int, attempt: int) -> str:
    """RQ entry point."""
    app = job_app()
    with app.app_context():
        try:
            return _attempt(delivery_id, attempt)
        finally:
            db.session.remove()


def _attempt(delivery_id: int, attempt: int) -> str:
    now = utcnow()
    claimed = rowcount(db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                                      WebhookDelivery.attempts == attempt)
        .values(attempts=attempt + 1, last_attempt_at=now, next_attempt_at=now + services.ATTEMPT_LEASE)
        .execution_options(synchronize_session=False)))
    if not claimed:
        db.session.rollback()
        log.info("webhook delivery %s: attempt %s already taken or delivery closed", delivery_id, attempt)
        return "skipped"
    delivery = required(db.session.get(WebhookDelivery, delivery_id), f"webhook delivery {delivery_id}")  # claimed above
    endpoint, event = delivery.endpoint, delivery.event
    if not endpoint.enabled:
        _finish(delivery_id, attempt + 1, "failed", guard.Answer(None, 0, "", "The endpoint is disabled."))
        return "failed"
    body = services.event_body(event)
    timestamp = int(now.replace(tzinfo=timezone.utc).timestamp())  # utcnow() is naive UTC
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Copydeck-Event-Id": event.public_id,
        "Copydeck-Event-Type": event.type,
        "Copydeck-Delivery-Id": str(delivery.id),
        "Copydeck-Signature": services.signature_header(endpoint, timestamp, body, now),
    }
    url, event_created = endpoint.url, event.created_at
    db.session.commit()  # the attempt is ours; hold no transaction (nor SQLite's write lock) over the network

    config = current_app.config
    try:
        target = services.check_url(url)
    except guard.UnsafeURL as exc:
        answer = guard.Answer(None, 0, "", f"Refused: {exc}"[:300])
    else:
        answer = guard.post(target, body, headers, timeout=config["WEBHOOK_TIMEOUT"],
                            deadline=config["WEBHOOK_DEADLINE"], max_bytes=config["WEBHOOK_MAX_RESPONSE_BYTES"])
    if answer.ok:
        _finish(delivery_id, attempt + 1, "succeeded", answer)
        return "succeeded"
    if answer.error is None:
        answer = guard.Answer(answer.status_code, answer.elapsed_ms, answer.excerpt,
                              f"The endpoint answered {answer.status_code}; only a 2xx counts as received.")
    retry_at = services.next_attempt_after_failure(event_created, attempt + 1, utcnow())
    _finish(delivery_id, attempt + 1, "pending" if retry_at else "failed", answer, retry_at)
    log.info("webhook delivery %s: attempt %s failed (%s)%s", delivery_id, attempt + 1, answer.error,
             f", next at {retry_at:%H:%M:%S}" if retry_at else ", giving up")
    return "retrying" if retry_at else "failed"


def _finish(delivery_id: int, attempts: int, status: str, answer: guard.Answer, retry_at=None) -> None:
    """Record the attempt's answer, only if the delivery is still at this attempt."""
    db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempts,
                                      WebhookDelivery.status == "pending")
        .values(status=status, next_attempt_at=retry_at, status_code=answer.status_code,
                response_ms=answer.elapsed_ms, response_excerpt=answer.excerpt[:500] or None,
                error=answer.error[:300] if answer.error else None)
        .execution_options(synchronize_session=False))
    db.session.commit()
