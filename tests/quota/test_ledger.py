"""The quota ledger: atomic reservations, and settle/refund that act once."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.auth.models import User
from app.catalog.services import get_published
from app.extensions import db
from app.generation import services
from app.generation.models import Generation
from app.quota import services as quota
from app.quota.models import QuotaLedger
from app.workspaces.models import Membership


def _user_and_workspace(user_id):
    user = db.session.get(User, user_id)
    membership = db.session.scalars(select(Membership).where(Membership.user_id == user_id)).one()
    return user, membership.workspace


def _start(user_id, variants=1):
    """Start a generation as the write view does: commit it, or roll a refusal back."""
    user, workspace = _user_and_workspace(user_id)
    template = get_published("x-post")
    try:
        generation = services.start(workspace=workspace, user=user, template=template,
                                    values={"topic": "Launch day", "details": "", "link": ""},
                                    tone="Bold", language="English", variant_count=variants, creativity="balanced")
    except quota.QuotaExceeded:
        db.session.rollback()
        raise
    db.session.commit()
    return generation


def test_reserve_settle_refund_move_the_ledger_once(app_ctx, make_user):
    user_id = make_user()
    generation = _start(user_id, variants=3)
    ledger = db.session.scalars(select(QuotaLedger)).one()
    assert (ledger.allowance, ledger.used, ledger.reserved) == (20, 0, 3)
    assert quota.settle(generation.id) == [ledger.id]
    assert quota.settle(generation.id) == []
    assert quota.refund(generation.id) == []  # settled charges are not refunded
    db.session.commit()
    db.session.refresh(ledger)
    assert (ledger.used, ledger.reserved) == (3, 0)

    other = _start(user_id, variants=2)
    assert quota.refund(other.id) == [ledger.id] and quota.refund(other.id) == []
    db.session.commit()
    db.session.refresh(ledger)
    assert (ledger.used, ledger.reserved) == (3, 0)
    assert quota.remaining(_user_and_workspace(user_id)[1], user_id).remaining == 17


def test_reservation_beyond_the_allowance_is_refused_and_writes_nothing(app_ctx, make_user):
    user_id = make_user()
    _start(user_id, variants=5)
    _start(user_id, variants=5)
    _start(user_id, variants=5)
    with pytest.raises(quota.QuotaExceeded) as caught:
        _start(user_id, variants=6)
    assert caught.value.remaining == 5
    assert db.session.scalar(select(func.count(Generation.id))) == 3


def test_fifty_parallel_submits_against_ten_credits_accept_exactly_ten(app, make_user):
    """Runs on PostgreSQL under CI (DATABASE_URL) and on SQLite locally."""
    user_id = make_user()
    with app.app_context():
        _user, workspace = _user_and_workspace(user_id)
        ledger = quota.ledger_for(workspace, quota.subject_for(user_id), 20)
        ledger.used = 10  # 10 of 20 left
        db.session.commit()

    barrier = threading.Barrier(50, timeout=60)
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit():
        with app.app_context():
            barrier.wait()
            try:
                _start(user_id, variants=1)
                result = "accepted"
            except quota.QuotaExceeded:
                result = "refused"
            except Exception as exc:  # noqa: BLE001 - any other outcome fails the test below
                result = f"error: {exc!r}"
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=submit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(set(outcomes)) == ["accepted", "refused"], outcomes
    assert outcomes.count("accepted") == 10
    with app.app_context():
        ledger = db.session.scalars(select(QuotaLedger)).one()
        assert (ledger.used, ledger.reserved) == (10, 10)
        assert db.session.scalar(select(func.count(Generation.id))) == 10
        import workers
        assert workers.queue(app).count == 10  # one job per accepted submit, none for refusals


def test_ledger_creation_tolerates_a_parallel_creator(app, make_user):
    user_id = make_user()
    barrier = threading.Barrier(8, timeout=60)
    ids, lock = [], threading.Lock()

    def create():
        with app.app_context():
            _user, workspace = _user_and_workspace(user_id)
            db.session.commit()  # end the read transaction before racing
            barrier.wait()
            ledger = quota.ledger_for(workspace, quota.subject_for(user_id), 20)
            db.session.commit()
            with lock:
                ids.append(ledger.id)
            db.session.remove()

    threads = [threading.Thread(target=create) for _ in range(8)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert len(ids) == 8 and len(set(ids)) == 1


def test_rolled_back_submit_enqueues_nothing(app_ctx, make_user):
    import workers
    user_id = make_user()
    user, workspace = _user_and_workspace(user_id)
    workers.enqueue_after_commit(db.session, "app.generation.tasks.run_generation", 999)
    db.session.rollback()
    db.session.commit()
    assert workers.queue(app_ctx).count == 0
