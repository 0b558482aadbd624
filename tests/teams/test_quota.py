"""Per-seat and pooled quotas, caps, period roll-over, alerts and usage reports."""
from __future__ import annotations

import csv
import io
import threading
from datetime import date, datetime, time, timedelta, timezone

import pytest
import time_machine

from sqlalchemy import select

from app.extensions import db
from app.quota import services as quota
from app.quota.models import QuotaLedger
from app.workspaces.models import Membership, Workspace
from tests.fakes.openai_server import error
from tests.generation.helpers import form_data, submit


def _set(app, team, **values):
    with app.app_context():
        workspace = db.session.get(Workspace, team.workspace_id)
        for key, value in values.items():
            setattr(workspace, key, value)
        db.session.commit()


def _cap(app, team, address, cap):
    with app.app_context():
        db.session.get(Membership, team.membership_id(address)).quota_cap = cap
        db.session.commit()


def _remaining(client) -> int:
    import re
    page = client.get("/templates").get_data(as_text=True)
    return int(re.search(r'data-testid="quota-remaining">(\d+)<', page).group(1))


def test_per_seat_mode_gives_every_member_the_seat_quota(app, team, run_worker):
    team.add("a@example.com")
    owner, member = team.client("owner@example.com"), team.client("a@example.com")
    submit(owner, app, "x-post", 4)
    run_worker()
    assert _remaining(owner) == 6 and _remaining(member) == 10


def test_pooled_mode_shares_seats_times_quota(app, team, run_worker):
    _set(app, team, quota_mode="pooled", seats=2)
    team.add("a@example.com")
    owner, member = team.client("owner@example.com"), team.client("a@example.com")
    submit(owner, app, "x-post", 5)
    submit(member, app, "x-post", 5)
    submit(member, app, "x-post", 5)
    run_worker()
    assert _remaining(owner) == 5 and _remaining(member) == 5
    refused = member.post("/write/x-post", data=form_data(app, "x-post", 5, variant_count="5"))
    assert refused.status_code == 302  # exactly the 5 left
    blocked = owner.post("/write/x-post", data=form_data(app, "x-post", 1))
    assert blocked.status_code == 402 and "shared pool" in blocked.get_data(as_text=True)


def test_a_cap_limits_a_member_in_both_modes(app, team, run_worker):
    team.add("capped@example.com")
    _cap(app, team, "capped@example.com", 3)
    member = team.client("capped@example.com")
    assert _remaining(member) == 3
    assert member.post("/write/x-post", data=form_data(app, "x-post", 4)).status_code == 402
    _set(app, team, quota_mode="pooled")
    assert _remaining(member) == 3
    submit(member, app, "x-post", 3)
    assert member.post("/write/x-post", data=form_data(app, "x-post", 1)).status_code == 402
    run_worker()
    with app.app_context():
        ledgers = {row.subject: (row.used, row.reserved) for row in db.session.scalars(select(QuotaLedger))}
    member_id = team.membership_id("capped@example.com")
    assert ledgers["pool"] == (3, 0)
    assert sum(1 for s in ledgers if s.startswith("user:")) == 1 and member_id


def _race(app, clients) -> list[int]:
    barrier = threading.Barrier(len(clients), timeout=60)
    statuses, lock = [], threading.Lock()

    def go(client):
        barrier.wait()
        response = client.post("/write/x-post", data=form_data(app, "x-post", 1))
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert set(statuses) <= {302, 402}, statuses
    return statuses


def test_parallel_submits_cannot_exceed_a_cap(app, team):
    """Concurrent requests, on PostgreSQL under CI."""
    team.add("racer@example.com")
    _set(app, team, quota_mode="pooled", seats=2)  # pool of 20
    _cap(app, team, "racer@example.com", 4)
    statuses = _race(app, [team.client("racer@example.com")] * 8)
    assert statuses.count(302) == 4


def test_parallel_submits_cannot_exceed_the_pool(app, team):
    team.add("b@example.com")
    _set(app, team, quota_mode="pooled", seats=1)  # pool of 10
    statuses = _race(app, [team.client("owner@example.com"), team.client("b@example.com")] * 10)
    assert statuses.count(302) == 10
    with app.app_context():
        pool = db.session.scalars(select(QuotaLedger).where(QuotaLedger.subject == "pool")).one()
        assert pool.reserved == 10 and pool.used == 0


def test_refunds_and_settles_reach_both_ledgers(app, team, run_worker, fake_llm):
    team.add("capped@example.com")
    _set(app, team, quota_mode="pooled")
    _cap(app, team, "capped@example.com", 5)
    member = team.client("capped@example.com")
    fake_llm.script(*[error(500)] * 3)
    submit(member, app, "x-post", 1)
    run_worker()
    submit(member, app, "x-post", 2)
    run_worker()
    with app.app_context():
        ledgers = {row.subject.split(":")[0]: (row.used, row.reserved) for row in db.session.scalars(select(QuotaLedger))}
    assert ledgers == {"pool": (2, 0), "user": (2, 0)}


@pytest.fixture(params=[date(2026, 12, 1), date(2026, 12, 2), date(2027, 2, 28), date(2028, 2, 29),
                        date(2026, 11, 30), date(2026, 12, 31)], ids=str)
def today(request):
    """The clock frozen on a date edge, from before the team logs in (a session
    signed in the future would not be accepted)."""
    with time_machine.travel(datetime.combine(request.param, time(9), tzinfo=timezone.utc), tick=True):
        yield request.param


def test_quota_rolls_over_at_the_workspace_period(app, today, team):
    owner = team.client("owner@example.com")
    submit(owner, app, "x-post", 5)
    assert _remaining(owner) == 5
    _set(app, team, period_start=today, period_end=today + timedelta(days=30))  # billing moved the period
    assert _remaining(owner) == 10
    with app.app_context():
        workspace = db.session.get(Workspace, team.workspace_id)
        assert quota.current_period(workspace) == (today, today + timedelta(days=30))
        workspace.period_start, workspace.period_end = None, None
        assert quota.current_period(workspace, date(2026, 12, 31)) == (date(2026, 12, 1), date(2027, 1, 1))


def test_quota_emails_are_sent_once_per_threshold(app, team, run_worker):
    owner = team.client("owner@example.com")
    for _ in range(3):
        submit(owner, app, "x-post", 3)  # 3, 6, 9 of 10: crosses 80% once
    run_worker()
    subjects = [m["Subject"] for m in team.mails("owner@example.com")]
    assert sum("80%" in s for s in subjects) == 1
    submit(owner, app, "x-post", 1)
    run_worker()
    subjects = [m["Subject"] for m in team.mails("owner@example.com")]
    assert sum("80%" in s for s in subjects) == 1
    assert sum("all of" in s for s in subjects) == 1
    message = [m for m in team.mails("owner@example.com") if "all of" in m["Subject"]][0]
    assert message.get_body(("html",)) is not None


def test_usage_page_csv_and_chart(app, team, run_worker):
    team.add("a@example.com")
    owner, member = team.client("owner@example.com"), team.client("a@example.com")
    submit(owner, app, "x-post", 2)
    submit(member, app, "meta-description", 3)
    run_worker()
    page = owner.get("/workspace/usage").get_data(as_text=True)
    assert 'data-testid="usage-total">5' in page
    assert "<svg" in page and "<rect" in page
    assert 'data-member="a@example.com"' in page and "Meta description" in page
    # Members see only their own usage.
    mine = member.get("/workspace/usage").get_data(as_text=True)
    assert 'data-member="a@example.com"' in mine and 'data-member="owner@example.com"' not in mine
    assert member.get("/workspace/usage.csv").status_code == 403
    response = owner.get("/workspace/usage.csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    by_member = {row[2]: row for row in rows[1:] if len(row) == 8}
    assert by_member["a@example.com"][5] == "3" and by_member["owner@example.com"][5] == "2"
    # A past period is listed and readable.
    with app.app_context():
        ledger = db.session.scalars(select(QuotaLedger)).first()
        past = date(2025, 1, 1)
        db.session.add(QuotaLedger(workspace_id=ledger.workspace_id, subject="user:0", period_start=past,
                                   allowance=10, used=0, reserved=0))
        db.session.commit()
    assert "January 2025" in owner.get("/workspace/usage").get_data(as_text=True)
    assert owner.get("/workspace/usage?period=2025-01-01").status_code == 200
    assert owner.get("/workspace/usage?period=garbage").status_code == 200
