"""A real delivery: a generation finishes in a real RQ worker, which calls a real receiver on 127.0.0.1."""
from __future__ import annotations

import json

from sqlalchemy import select

from app.admin.models import AuditEntry
from app.extensions import db
from app.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.fakes.openai_server import error
from tests.generation.helpers import submit
from tests.webhooks.conftest import add_endpoint
from tests.webhooks.helpers import readme_verify


def _secret(app, endpoint_id: int) -> str:
    with app.app_context():
        return db.session.get(WebhookEndpoint, endpoint_id).secret


def _deliveries(app) -> list[WebhookDelivery]:
    with app.app_context():
        rows = list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        db.session.expunge_all()
        return rows


def test_generation_completed_is_delivered_signed_by_the_worker(app, hooks_team, allow_loopback, receiver,
                                                                   run_worker):
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url, ["generation.completed", "generation.failed"])
    receiver.body = b'{"thanks": "got it"}'

    generation_id = submit(owner, app, "x-post", variants=2)
    run_worker()  # the generation job, then (enqueued after its commit) the delivery job

    got = receiver.next()
    assert got.path == "/hooks/copydeck"
    assert readme_verify()(_secret(app, endpoint_id), got.body, got.headers["Copydeck-Signature"])
    assert not readme_verify()(_secret(app, endpoint_id), got.body + b" ", got.headers["Copydeck-Signature"])
    event = json.loads(got.body)
    assert event["type"] == "generation.completed"
    assert event["id"].startswith("evt_") and got.headers["Copydeck-Event-Id"] == event["id"]
    generation = event["data"]["generation"]
    assert generation["id"] == generation_id and generation["status"] == "succeeded"
    assert len(generation["variants"]) == 2
    assert all(v["characters"] == len(v["text"]) > 0 for v in generation["variants"])

    [delivery] = _deliveries(app)
    assert (delivery.status, delivery.attempts, delivery.status_code) == ("succeeded", 1, 200)
    assert delivery.response_ms is not None and delivery.response_excerpt == '{"thanks": "got it"}'
    assert delivery.next_attempt_at is None and delivery.error is None

    page = owner.get(f"/workspace/webhooks/{endpoint_id}").get_data(as_text=True)
    assert event["id"] in page and "Delivered" in page and ">200<" in page and "got it" in page


def test_generation_failed_is_delivered(app, hooks_team, allow_loopback, receiver, run_worker, fake_llm):
    owner = hooks_team.client("owner@example.com")
    add_endpoint(owner, receiver.url, ["generation.failed"])
    fake_llm.script(error(400, "bad request"))
    generation_id = submit(owner, app, "x-post", variants=1)
    run_worker()

    event = json.loads(receiver.next().body)
    assert event["type"] == "generation.failed"
    assert event["data"]["generation"]["id"] == generation_id
    assert event["data"]["generation"]["status"] == "failed" and event["data"]["generation"]["error_message"]


def test_quota_threshold_and_exhaustion(app, hooks_team, allow_loopback, receiver, run_worker):
    owner = hooks_team.client("owner@example.com")
    add_endpoint(owner, receiver.url, ["quota.threshold_reached", "quota.exhausted"])
    submit(owner, app, "x-post", variants=3)
    submit(owner, app, "x-post", variants=3)  # 6 of 10: no threshold yet
    run_worker()
    submit(owner, app, "x-post", variants=2)  # 8 of 10: 80%
    run_worker()
    first = json.loads(receiver.next().body)
    assert first["type"] == "quota.threshold_reached"
    assert first["data"]["quota"]["threshold_percent"] == 80 and first["data"]["quota"]["used"] == 8
    submit(owner, app, "x-post", variants=2)  # 10 of 10
    run_worker()
    second = json.loads(receiver.next().body)
    assert second["type"] == "quota.exhausted" and second["data"]["quota"]["remaining"] == 0
    assert receiver.all() == []  # one event per threshold, no generation events (not subscribed)


def test_no_subscribed_endpoint_records_nothing(app, hooks_team, allow_loopback, receiver, run_worker):
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url, ["bulk_run.completed"])
    submit(owner, app, "x-post", variants=1)
    run_worker()
    with app.app_context():
        assert db.session.scalar(select(db.func.count(WebhookEvent.id))) == 0
    owner.post(f"/workspace/webhooks/{endpoint_id}/settings", data={
        "url": receiver.url, "events": ["generation.completed"], "description": ""})  # enabled unticked
    submit(owner, app, "x-post", variants=1)
    run_worker()
    with app.app_context():
        assert db.session.get(WebhookEndpoint, endpoint_id).enabled is False
        assert db.session.scalar(select(db.func.count(WebhookEvent.id))) == 0


def test_redeliver_sends_the_same_event_again(app, hooks_team, allow_loopback, receiver, run_worker):
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url, ["generation.completed"])
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    run_worker()
    first = receiver.next()
    assert json.loads(first.body)["type"] == "webhook.test"
    [delivery] = _deliveries(app)

    response = owner.post(f"/workspace/webhooks/{endpoint_id}/deliveries/{delivery.id}/redeliver")
    assert response.status_code == 302
    run_worker()
    again = receiver.next()
    assert again.headers["Copydeck-Event-Id"] == first.headers["Copydeck-Event-Id"]
    assert again.headers["Copydeck-Delivery-Id"] != first.headers["Copydeck-Delivery-Id"]
    assert again.body == first.body
    deliveries = _deliveries(app)
    assert [d.status for d in deliveries] == ["succeeded", "succeeded"]
    assert deliveries[1].redelivery_of_id == delivery.id
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"webhook.create", "webhook.test", "webhook.redeliver"} <= actions


def test_a_job_run_twice_sends_and_records_once(app, hooks_team, allow_loopback, receiver):
    from app.webhooks import tasks

    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url, ["generation.completed"])
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    [delivery] = _deliveries(app)
    with app.app_context():
        assert tasks.deliver(delivery.id, 0) == "succeeded"
        assert tasks.deliver(delivery.id, 0) == "skipped"
    receiver.next()
    assert receiver.all() == []
    [delivery] = _deliveries(app)
    assert (delivery.attempts, delivery.status) == (1, "succeeded")


def test_rotation_signs_with_both_secrets_during_the_grace(app, hooks_team, allow_loopback, receiver, run_worker):
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url, ["generation.completed"])
    old = _secret(app, endpoint_id)
    owner.post(f"/workspace/webhooks/{endpoint_id}/rotate")
    new = _secret(app, endpoint_id)
    assert new != old and new.startswith("whsec_")
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    run_worker()
    got = receiver.next()
    verify = readme_verify()
    assert verify(new, got.body, got.headers["Copydeck-Signature"])
    assert verify(old, got.body, got.headers["Copydeck-Signature"])
    assert not verify("whsec_wrong", got.body, got.headers["Copydeck-Signature"])


def test_the_worker_process_delivers(app, base_env, hooks_team, allow_loopback, receiver):
    """`python -m workers`, the production entry point, as its own process: it picks up the attempt
    enqueued after the commit and calls the receiver, allow-listed through its environment."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url, ["quota.exhausted"])
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    env = {**os.environ, **base_env, "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", "workers", "--workers", "1", "--burst"], env=env,
                          cwd=str(Path(__file__).resolve().parents[2]), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    got = receiver.next()
    assert readme_verify()(_secret(app, endpoint_id), got.body, got.headers["Copydeck-Signature"])
    [delivery] = _deliveries(app)
    assert (delivery.status, delivery.status_code, delivery.attempts) == ("succeeded", 200, 1)


def test_bulk_run_completed_payload(app, hooks_team, allow_loopback, receiver, run_worker):
    """What bulk's finish function sends once the lead wires it (the README's table)."""
    from app.webhooks import events

    owner = hooks_team.client("owner@example.com")
    add_endpoint(owner, receiver.url, ["bulk_run.completed"])
    with app.app_context():
        events.bulk_run_completed(db.session, hooks_team.workspace_id, run_id=7, status="completed", rows=3,
                                  succeeded=2, failed=1, created_at=None, finished_at=None,
                                  results_path="/bulk/7/results.csv")
        db.session.commit()
    run_worker()
    event = json.loads(receiver.next().body)
    assert event["type"] == "bulk_run.completed"
    assert event["data"]["bulk_run"] == {"id": 7, "status": "completed", "rows": 3, "succeeded": 2, "failed": 1,
                                         "created_at": None, "finished_at": None,
                                         "results_path": "/bulk/7/results.csv"}
