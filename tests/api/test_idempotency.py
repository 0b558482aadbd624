"""Idempotency-Key: a retried create returns the first result and is never charged twice."""
from __future__ import annotations

import threading

from sqlalchemy import select

from app.extensions import db
from tests.api.conftest import counts
from tests.api.test_bad_input import problem


def test_retry_replays_the_first_response_and_charges_once(api, app):
    headers = {"Idempotency-Key": "order-42"}
    first = api.post("/api/v1/generations", api.body(variants=2), headers=headers)
    assert first.status_code == 202
    after_first = counts(app)
    again = api.post("/api/v1/generations", api.body(variants=2), headers=headers)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json() and again.headers["Location"] == first.headers["Location"]
    assert counts(app) == after_first
    assert after_first["generations"] == 1 and after_first["reserved"] == 2


def test_same_key_other_body_is_422_and_writes_nothing(api, app):
    headers = {"Idempotency-Key": "order-43"}
    assert api.post("/api/v1/generations", api.body(variants=2), headers=headers).status_code == 202
    before = counts(app)
    problem(api.post("/api/v1/generations", api.body(variants=3), headers=headers), 422, "idempotency-key-reused")
    assert counts(app) == before


def test_a_refused_request_is_not_remembered(api, app):
    from sqlalchemy import update

    from app.workspaces.models import Workspace
    with app.app_context():
        db.session.execute(update(Workspace).values(generations_per_seat=1))
        db.session.commit()
    headers = {"Idempotency-Key": "order-44"}
    problem(api.post("/api/v1/generations", api.body(variants=2), headers=headers), 402, "quota-exhausted")
    assert counts(app)["idempotency"] == 0
    # Still refused on retry (nothing was remembered, so it is evaluated again), then a smaller ask works.
    assert api.post("/api/v1/generations", api.body(variants=1), headers={"Idempotency-Key": "order-45"}).status_code == 202


def test_keys_are_per_api_key(api, app):
    other = api.make_key()
    headers = {"Idempotency-Key": "shared-name"}
    a = api.post("/api/v1/generations", api.body(variants=1), headers=headers).get_json()["id"]
    b = api.post("/api/v1/generations", api.body(variants=1), headers=headers, key=other).get_json()["id"]
    assert a != b


def test_racing_retries_create_one_generation(api, app):
    """Parallel requests with one key: one generation, one charge; the others replay it or are told to retry."""
    body, headers = api.body(variants=1), {"Idempotency-Key": "race-1"}
    barrier = threading.Barrier(4)
    results = []

    def call():
        client = app.test_client()
        barrier.wait()
        results.append(client.post("/api/v1/generations", json=body, headers=api.headers(**headers)))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {202, 409} and 202 in statuses, statuses
    ids = {r.get_json()["id"] for r in results if r.status_code == 202}
    assert len(ids) == 1
    state = counts(app)
    assert state["generations"] == 1 and state["reserved"] == 1 and state["charges"] == 1


def test_variant_actions_honour_the_key(api, app, run_worker):
    generation_id = api.post("/api/v1/generations", api.body(variants=1)).get_json()["id"]
    run_worker()
    variant_id = api.get(f"/api/v1/generations/{generation_id}").get_json()["variants"][0]["id"]
    headers = {"Idempotency-Key": "edit-1"}
    first = api.post(f"/api/v1/variants/{variant_id}/text", {"text": "One"}, headers=headers)
    assert first.status_code == 200
    problem(api.post(f"/api/v1/variants/{variant_id}/text", {"text": "Two"}, headers=headers), 422,
            "idempotency-key-reused")
    replay = api.post(f"/api/v1/variants/{variant_id}/text", {"text": "One"}, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json() == first.get_json()
    from app.generation.models import Variant
    with app.app_context():
        assert db.session.scalar(select(Variant.text).where(Variant.id == variant_id)) == "One"


def test_expired_records_are_forgotten(api, app):
    import time_machine
    from datetime import datetime, timedelta, timezone
    headers = {"Idempotency-Key": "old-1"}
    first = api.post("/api/v1/generations", api.body(variants=1), headers=headers).get_json()["id"]
    later = datetime.now(timezone.utc) + timedelta(hours=app.config["API_IDEMPOTENCY_TTL_HOURS"], minutes=1)
    with time_machine.travel(later, tick=False):
        second = api.post("/api/v1/generations", api.body(variants=1), headers=headers)
    assert second.status_code == 202 and second.get_json()["id"] != first
