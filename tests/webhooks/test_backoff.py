"""The retry schedule, with the clock frozen: attempts are due when the back-off says, then it gives up."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import time_machine
from sqlalchemy import select

from app.extensions import db
from app.webhooks import services
from app.webhooks.models import WebhookDelivery
from tests.webhooks.conftest import add_endpoint



def _start() -> datetime:
    """Frozen at the current second: the test client's login session stays valid."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def _delivery(app) -> WebhookDelivery:
    with app.app_context():
        row = db.session.scalars(select(WebhookDelivery)).one()
        db.session.expunge(row)
        return row


def _sweep(app) -> int:
    with app.app_context():
        try:
            due = services.sweep_due()
            db.session.commit()  # as the maintenance round does
            return due
        finally:
            db.session.remove()


def test_failing_endpoint_backs_off_exponentially_for_24_hours_then_fails(app, hooks_team, allow_loopback,
                                                                          receiver, run_worker):
    receiver.status, receiver.body = 500, b"boom"
    owner = hooks_team.client("owner@example.com")
    with time_machine.travel(_start(), tick=False) as clock:
        endpoint_id = add_endpoint(owner, receiver.url)
        owner.post(f"/workspace/webhooks/{endpoint_id}/test")
        run_worker()  # the first attempt, enqueued after the commit
        receiver.next()
        waits = []
        while True:
            delivery = _delivery(app)
            assert delivery.status_code == 500 and delivery.response_excerpt == "boom"
            if delivery.status == "failed":
                break
            assert delivery.status == "pending"
            current = datetime.now(timezone.utc).replace(tzinfo=None)
            wait = delivery.next_attempt_at - current
            waits.append(int(wait.total_seconds()))
            clock.shift(wait - timedelta(seconds=1))
            assert _sweep(app) == 0  # not due yet: nothing enqueued, nothing sent
            clock.shift(timedelta(seconds=1))
            assert _sweep(app) == 1
            run_worker()
            receiver.next()
            assert _delivery(app).attempts == len(waits) + 1

    minutes = [60, 180, 540, 1620, 4860, 14580, 28800, 28800]
    assert waits == minutes
    assert delivery.attempts == 9 and delivery.next_attempt_at is None
    assert "500" in delivery.error
    assert sum(waits) < 24 * 3600 and sum(waits) + 28800 > 24 * 3600  # the next wait would pass the window
    assert receiver.all() == []
    page = owner.get(f"/workspace/webhooks/{endpoint_id}").get_data(as_text=True)
    assert "Failed" in page and "Redeliver" in page


def test_an_attempt_whose_job_was_lost_is_tried_again_after_its_lease(app, hooks_team, allow_loopback, receiver,
                                                                      run_worker):
    owner = hooks_team.client("owner@example.com")
    with time_machine.travel(_start(), tick=False) as clock:
        endpoint_id = add_endpoint(owner, receiver.url)
        owner.post(f"/workspace/webhooks/{endpoint_id}/test")
        app.extensions["redis"].flushdb()  # the job is gone (Redis lost its data)
        run_worker()
        assert receiver.all() == []
        assert _sweep(app) == 0
        clock.shift(services.ATTEMPT_LEASE)
        assert _sweep(app) == 1
        run_worker()
    receiver.next()
    delivery = _delivery(app)
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


def test_events_older_than_the_retention_are_deleted_with_their_deliveries(app, hooks_team, allow_loopback):
    from app.webhooks.models import WebhookEvent

    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, "http://127.0.0.1:9/hook")
    with time_machine.travel(_start(), tick=False) as clock:
        owner.post(f"/workspace/webhooks/{endpoint_id}/test")
        clock.shift(timedelta(days=29))
        _sweep(app)
        with app.app_context():
            assert db.session.scalar(select(db.func.count(WebhookEvent.id))) == 1
        clock.shift(timedelta(days=1, seconds=1))
        _sweep(app)
    with app.app_context():
        assert db.session.scalar(select(db.func.count(WebhookEvent.id))) == 0
        assert db.session.scalar(select(db.func.count(WebhookDelivery.id))) == 0
