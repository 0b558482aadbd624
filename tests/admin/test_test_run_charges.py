"""Workspace authors' test runs are paid from their seat, like generations; site admins' stay free.

Issue 9: a Free user at 0 left ran 3 test runs of 5 variants each.
"""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select, update

import workers
from app.core import utcnow
from app.catalog.models import TestRun
from app.catalog.tasks import recover_stale_test_runs
from app.extensions import db
from app.quota import services as quota
from app.quota.models import QuotaCharge
from app.workspaces.models import Membership, Workspace
from tests.admin.conftest import editor_form
from tests.fakes.openai_server import error, reply
from tests.generation.helpers import submit


def _job_id(body: str) -> str:
    return re.search(r"/test-runs/(test-run-[0-9a-f]{32})", body).group(1)


def _left(app, user_id: int) -> tuple[int, int, int]:
    """(remaining, used, reserved) of the user's seat in their personal workspace."""
    with app.app_context():
        workspace = db.session.scalars(select(Workspace).join(Membership).where(Membership.user_id == user_id)).one()
        allowance = quota.remaining(workspace, user_id)
        return allowance.remaining, allowance.used, allowance.reserved


def test_a_workspace_test_run_is_announced_then_charged_to_its_author(app, client, login, run_worker, fake_llm):
    user_id = login("author@example.com")
    editor = client.get("/workspace/templates/new").get_data(as_text=True)
    assert re.search(r'data-testid="test-run-cost">\s*This test run uses 3 of your 20 remaining generations', editor)
    # The note follows the draft's variant count as the live preview refreshes.
    preview = client.post("/workspace/templates/preview", data=editor_form(**{"output-variants": "4"}))
    assert re.search(r'id="test-run-cost"[^>]*hx-swap-oob="true"[^>]*>\s*This test run uses 4 of your 20',
                     preview.get_data(as_text=True))

    fake_llm.script(reply("One."), reply("Two."))
    response = client.post("/workspace/templates/test-run", data=editor_form(), headers={"HX-Request": "true"})
    assert response.status_code == 202
    assert _left(app, user_id) == (18, 0, 2)  # held while it runs
    job_id = _job_id(response.get_data(as_text=True))
    run_worker()
    body = client.get(f"/workspace/templates/test-runs/{job_id}").get_data(as_text=True)
    assert "One." in body and 'data-testid="test-run-charged">charged 2 generations' in body
    assert _left(app, user_id) == (18, 2, 0)
    usage = client.get("/workspace/usage").get_data(as_text=True)
    assert "Template editor test runs" in usage and 'data-testid="usage-total">2' in usage

    # Variants that fail are not charged; a run where all fail costs nothing.
    fake_llm.script(reply("Three."), *[error(500, "down")] * 10)
    run_worker_job = _job_id(client.post("/workspace/templates/test-run", data=editor_form()).get_data(as_text=True))
    run_worker()
    assert "charged 1 generation<" in client.get(f"/workspace/templates/test-runs/{run_worker_job}").get_data(as_text=True)
    assert _left(app, user_id) == (17, 3, 0)
    fake_llm.script(*[error(500, "down")] * 20)
    client.post("/workspace/templates/test-run", data=editor_form())
    run_worker()
    assert _left(app, user_id) == (17, 3, 0)
    with app.app_context():
        assert [r.status for r in db.session.scalars(select(TestRun).order_by(TestRun.id))] == [
            "succeeded", "succeeded", "failed"]


def test_a_free_user_at_zero_left_is_refused_without_a_model_call(app, client, login, fake_llm):
    user_id = login("broke@example.com")
    for _ in range(4):
        submit(client, app, "x-post", 5)  # all 20 reserved (the worker never runs here)
    assert _left(app, user_id)[0] == 0
    assert "you have 0 left" in client.get("/workspace/templates/new").get_data(as_text=True)
    for _ in range(3):
        response = client.post("/workspace/templates/test-run", data=editor_form(**{"output-variants": "5"}),
                               headers={"HX-Request": "true"})
        body = response.get_data(as_text=True)
        assert response.status_code == 402
        assert "no generations left this period" in body and "needs 5" in body
    with app.app_context():
        assert db.session.scalar(select(func.count(TestRun.id))) == 0
        assert len(workers.queue(app)) == 4  # the generations only
    assert fake_llm.chat_requests == []


def test_a_lost_test_run_is_refunded_once_and_never_reaches_the_model(app, client, login, run_worker, fake_llm):
    user_id = login("author@example.com")
    job_id = _job_id(client.post("/workspace/templates/test-run", data=editor_form()).get_data(as_text=True))
    assert _left(app, user_id) == (18, 0, 2)
    with app.app_context():
        db.session.execute(update(TestRun).values(created_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        assert recover_stale_test_runs(900) == 1
        assert recover_stale_test_runs(900) == 0
    assert _left(app, user_id) == (20, 0, 0)
    run_worker()  # the job finally runs: it finds its run closed and does nothing
    assert fake_llm.chat_requests == []
    assert "stopped before it reached the model" in client.get(
        f"/workspace/templates/test-runs/{job_id}").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(QuotaCharge.state)) == "refunded"


def test_site_admin_test_runs_of_site_templates_stay_free(app, admin_client, run_worker, fake_llm):
    page = admin_client.get("/admin/templates/new").get_data(as_text=True)
    assert "test runs of site templates are free" in page
    job_id = _job_id(admin_client.post("/admin/templates/test-run", data=editor_form()).get_data(as_text=True))
    run_worker()
    assert "not charged (site template)" in admin_client.get(f"/admin/templates/test-runs/{job_id}").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count(QuotaCharge.id))) == 0
        assert db.session.scalar(select(func.count(TestRun.id))) == 0
