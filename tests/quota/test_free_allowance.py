"""The Free allowance comes once per person: with the personal workspace made at sign-up.

Issue 9: three new workspaces gave a user at 0 left 15 more variants. A workspace
created later starts with no Free generations until it is on a paid plan.
"""
from __future__ import annotations

from sqlalchemy import func, select

from app.billing import services as billing
from app.extensions import db
from app.generation.models import Generation
from app.workspaces.models import Membership, Workspace
from tests.admin.conftest import admin_client  # noqa: F401  (a fixture)
from tests.generation.helpers import form_data, submit


def _new_workspace(client, app, user_id: int, name: str) -> int:
    assert client.post("/workspaces/new", data={"new-name": name}).status_code == 302
    with app.app_context():
        return db.session.scalars(select(Workspace.id).join(Membership).where(
            Membership.user_id == user_id, Workspace.name == name)).one()


def test_new_free_workspaces_start_empty(app, client, login, admin_client, run_worker):
    user_id = login("free@example.com")
    for _ in range(4):
        submit(client, app, "x-post", 5)  # the personal workspace's 20
    run_worker()
    for n in range(3):
        workspace_id = _new_workspace(client, app, user_id, f"Side project {n}")
        response = client.post("/write/x-post", data=form_data(app, "x-post", 5))
        assert response.status_code == 402
        assert "no Free generations" in response.get_data(as_text=True)
        page = client.get("/workspace/members").get_data(as_text=True)
        assert "0 generations per seat" in page
    with app.app_context():
        assert db.session.scalar(select(func.count(Generation.id))) == 4
    assert "none while on Free" in admin_client.get(f"/admin/workspaces/{workspace_id}").get_data(as_text=True)
    with app.app_context():
        # Falling back to Free (the way billing applies it) does not refill it either;
        # a paid plan brings the plan's quota.
        workspace = db.session.get(Workspace, workspace_id)
        billing._apply_grant(workspace, billing.Grant("free", 1, None, None, None))
        assert workspace.seat_quota == 0
        billing.apply_plan(workspace, "pro")
        db.session.commit()
    submit(client, app, "x-post", 5)


def test_the_personal_workspace_keeps_the_free_allowance(app, client, login):
    login("fresh@example.com")
    page = client.get("/workspace/members").get_data(as_text=True)
    assert f"{app.config['FREE_MONTHLY_GENERATIONS']} generations per seat" in page
    submit(client, app, "x-post", 5)
