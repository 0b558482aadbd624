"""Running the site: users, sessions, workspaces, LLM settings, queues, the audit log, the CLI, CSRF."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from app.admin.models import AuditEntry, SiteSetting
from app.auth.models import User
from app.extensions import db
from app.workspaces.models import Membership, Workspace
from tests.generation.helpers import form_data


def _user_id(app, email: str) -> int:
    with app.app_context():
        return db.session.scalars(select(User.id).where(User.email == email)).one()


def _audit(app) -> list[AuditEntry]:
    with app.app_context():
        entries = list(db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        db.session.expunge_all()
        return entries


def test_search_users_and_view_one(app, admin_client, make_user):
    make_user("ada@example.com")
    make_user("grace@example.com")
    body = admin_client.get("/admin/users?q=ADA").get_data(as_text=True)
    assert "ada@example.com" in body and "grace@example.com" not in body
    body = admin_client.get(f"/admin/users/{_user_id(app, 'ada@example.com')}").get_data(as_text=True)
    assert "ada&#39;s workspace" in body and "owner" in body
    assert admin_client.get("/admin/users?q=%25").get_data(as_text=True).count('data-user="') == 0


def test_suspending_ends_existing_sessions_and_reactivating_restores_login(app, admin_client, client, login):
    user_id = login("ada@example.com")
    assert client.get("/templates").status_code == 200
    response = admin_client.post(f"/admin/users/{user_id}/suspend", follow_redirects=True)
    assert "is suspended and logged out everywhere" in response.get_data(as_text=True)
    response = client.get("/templates")  # the same session cookie as before
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    refused = client.post("/login", data={"email": "ada@example.com", "password": "correct-horse-battery"})
    assert "This account is suspended" in refused.get_data(as_text=True)
    admin_client.post(f"/admin/users/{user_id}/reactivate")
    assert client.post("/login", data={"email": "ada@example.com", "password": "correct-horse-battery"}).status_code == 302
    entries = _audit(app)
    assert [e.action for e in entries] == ["user.suspend", "user.reactivate"]
    assert entries[0].before == {"suspended": False, "site_admin": False}
    assert entries[0].after == {"suspended": True, "site_admin": False}
    assert entries[0].actor_email == "root@example.com" and entries[0].target_id == str(user_id)


def test_remember_me_cookie_of_a_suspended_user_is_refused(app, admin_client, make_user):
    user_id = make_user("ada@example.com")
    client = app.test_client()
    client.post("/login", data={"email": "ada@example.com", "password": "correct-horse-battery", "remember": "y"})
    admin_client.post(f"/admin/users/{user_id}/suspend")
    client.delete_cookie("session")
    assert client.get("/templates").status_code == 302


def test_site_admins_cannot_lock_themselves_out(app, admin_client):
    me = admin_client.user_id
    response = admin_client.post(f"/admin/users/{me}/suspend", follow_redirects=True)
    assert "You cannot suspend yourself" in response.get_data(as_text=True)
    response = admin_client.post(f"/admin/users/{me}/site-admin", data={"grant": "0"}, follow_redirects=True)
    assert "You cannot revoke your own site-admin role" in response.get_data(as_text=True)
    with app.app_context():
        user = db.session.get(User, me)
        assert user.is_site_admin and not user.is_suspended
    assert _audit(app) == []


def test_grant_and_revoke_the_site_admin_role(app, admin_client, make_user):
    other = make_user("ada@example.com")
    admin_client.post(f"/admin/users/{other}/site-admin", data={"grant": "1"})
    client = app.test_client()
    client.post("/login", data={"email": "ada@example.com", "password": "correct-horse-battery"})
    assert client.get("/admin/users").status_code == 200
    assert 'data-testid="admin-link"' in client.get("/templates").get_data(as_text=True)
    admin_client.post(f"/admin/users/{other}/site-admin", data={"grant": "0"})
    assert client.get("/admin/users").status_code == 403
    assert [e.action for e in _audit(app)] == ["user.grant_admin", "user.revoke_admin"]


def test_set_plan_and_seats_by_hand_while_billing_is_off(app, admin_client, make_user):
    owner = make_user("ada@example.com")
    with app.app_context():
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == owner)).one()
    assert "ada&#39;s workspace" in admin_client.get("/admin/workspaces?q=ada").get_data(as_text=True)
    response = admin_client.post(f"/admin/workspaces/{workspace_id}",
                                 data={"plan": "pro", "seats": "5", "generations_per_seat": "500"})
    assert response.status_code == 302
    with app.app_context():
        workspace = db.session.get(Workspace, workspace_id)
        assert (workspace.plan, workspace.seats, workspace.generations_per_seat) == ("pro", 5, 500)
    [entry] = _audit(app)
    assert entry.action == "workspace.size"
    assert entry.before == {"plan": "free", "seats": 1, "generations_per_seat": 20}
    assert entry.after == {"plan": "pro", "seats": 5, "generations_per_seat": 500}
    response = admin_client.post(f"/admin/workspaces/{workspace_id}",
                                 data={"plan": "pro", "seats": "0", "generations_per_seat": "500"})
    assert response.status_code == 422 and "From 1 to 10,000 seats" in response.get_data(as_text=True)
    assert len(_audit(app)) == 1


def test_plan_and_seats_are_not_editable_when_billing_is_on(app, admin_client, make_user):
    owner = make_user("ada@example.com")
    with app.app_context():
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == owner)).one()
    app.config["STRIPE_SECRET_KEY"] = "sk_test_x"
    try:
        assert "follow the workspace's Stripe subscription" in admin_client.get(
            f"/admin/workspaces/{workspace_id}").get_data(as_text=True)
        admin_client.post(f"/admin/workspaces/{workspace_id}", data={"plan": "pro", "seats": "5",
                                                                    "generations_per_seat": "1"})
    finally:
        app.config.pop("STRIPE_SECRET_KEY")
    with app.app_context():
        assert db.session.get(Workspace, workspace_id).seats == 1


def test_llm_settings_default_model_and_connection_test(app, admin_client, fake_llm):
    assert "fake-model" in admin_client.get("/admin/llm").get_data(as_text=True)
    admin_client.post("/admin/llm", data={"default_model": "bigger-model"})
    assert 'data-testid="default-model">bigger-model' in admin_client.get("/admin/llm").get_data(as_text=True)
    body = admin_client.post("/admin/llm/test", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Connected. Generations will use bigger-model." in body
    assert any(r["path"].endswith("/models") for r in fake_llm.requests)
    admin_client.post("/admin/llm", data={"default_model": ""})  # back to OPENAI_MODEL
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SiteSetting)) == 0
    assert [(e.before, e.after) for e in _audit(app)] == [({"value": None}, {"value": "bigger-model"}),
                                                           ({"value": "bigger-model"}, {"value": None})]


def test_connection_test_reports_a_server_that_is_down(app, admin_client):
    app.config["OPENAI_BASE_URL"], saved = "http://127.0.0.1:9/v1", app.config["OPENAI_BASE_URL"]
    try:
        body = admin_client.post("/admin/llm/test", headers={"HX-Request": "true"}).get_data(as_text=True)
    finally:
        app.config["OPENAI_BASE_URL"] = saved
    assert "flash-error" in body and "could not reach the AI service" in body


def test_queue_health_shows_a_failed_job_and_requeues_it(app, admin_client, run_worker):
    import workers
    with app.app_context():
        job = workers.queue().enqueue("app.generation.tasks.no_such_function", job_id="broken-1")
    run_worker()
    body = admin_client.get("/admin/queues").get_data(as_text=True)
    queue = app.config["RQ_QUEUE"]
    assert f'data-queue="{app.config["BULK_QUEUE"]}"' in body  # bulk rows' queue, listed before its first job
    assert re.search(rf'data-queue="{queue}">.*?class="num failed">1<', body, re.S)
    assert 'data-job="broken-1"' in body and "Invalid attribute name: no_such_function" in body
    detail = admin_client.get(f"/admin/queues/{queue}/failed/broken-1").get_data(as_text=True)
    assert "Traceback" in detail and "no_such_function" in detail
    assert admin_client.get("/admin/queues/other-queue/failed/broken-1").status_code == 404
    response = admin_client.post(f"/admin/queues/{queue}/failed/broken-1/requeue", follow_redirects=True)
    assert "is back on the" in response.get_data(as_text=True)
    assert re.search(rf'data-queue="{queue}">.*?class="num queued">1<.*?class="num failed">0<',
                     response.get_data(as_text=True), re.S)
    [entry] = _audit(app)
    assert entry.action == "job.requeue" and entry.target_id == job.id and "no_such_function" in entry.before["error"]


def test_audit_log_filters_and_pages(app, admin_client, make_user):
    from app.admin import audit
    victim = make_user("ada@example.com")
    with app.app_context():
        admin = db.session.get(User, admin_client.user_id)
        for n in range(60):
            audit.record(admin, "template.save", "template", n % 3, {"version": n}, {"version": n + 1})
        db.session.commit()
    admin_client.post(f"/admin/users/{victim}/suspend")
    body = admin_client.get("/admin/audit").get_data(as_text=True)
    assert body.count('<tr data-action=') == 50 and "Page 1 of 2" in body and "61 entries" in body
    assert 'data-action="user.suspend"' in body  # newest first
    body = admin_client.get("/admin/audit?action=user").get_data(as_text=True)
    assert body.count('<tr data-action=') == 1
    body = admin_client.get("/admin/audit?target_type=template&target_id=2").get_data(as_text=True)
    assert body.count('<tr data-action=') == 20
    body = admin_client.get("/admin/audit?actor=nobody").get_data(as_text=True)
    assert "No entry matches" in body
    body = admin_client.get("/admin/audit?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert body.count('<tr data-action=') == 11 and "<html" not in body


def test_cli_creates_the_first_site_admin(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "--admin", "boss@example.com"],
                           input="a-long-password\na-long-password\n")
    assert result.exit_code == 0, result.output
    assert "is now a site admin" in result.output
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == "boss@example.com")).one()
        assert user.is_site_admin and user.check_password("a-long-password")
    result = runner.invoke(args=["users", "create", "boss@example.com", "--password", "whatever-else"])
    assert result.exit_code != 0 and "already exists" in result.output
    result = runner.invoke(args=["users", "create", "plain@example.com", "--password", "another-password"])
    assert result.exit_code == 0
    with app.app_context():
        assert not db.session.scalars(select(User).where(User.email == "plain@example.com")).one().is_site_admin
    [entry] = _audit(app)
    assert entry.action == "user.grant_admin" and entry.actor_email == "command line"


def test_admin_changes_need_a_csrf_token(app, make_app, make_user):
    strict = make_app({"TESTING": True, "RATELIMIT_ENABLED": False})
    user_id = make_user("root@example.com")
    victim = make_user("ada@example.com")
    with app.app_context():
        db.session.get(User, user_id).is_site_admin = True
        db.session.commit()
    client = strict.test_client()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"email": "root@example.com", "password": "correct-horse-battery",
                                       "csrf_token": token}).status_code == 302
    for url, data in ((f"/admin/users/{victim}/suspend", {}),
                      ("/admin/templates/new", {"name": "x", "op": "save"}),
                      ("/admin/llm", {"default_model": "m"})):
        response = client.post(url, data=data)
        assert response.status_code == 400 and "form expired" in response.get_data(as_text=True).lower()
    page = client.get(f"/admin/users/{victim}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post(f"/admin/users/{victim}/suspend", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert db.session.get(User, victim).is_suspended
        assert db.session.scalar(select(func.count(AuditEntry.id))) == 1
    with strict.app_context():
        db.engine.dispose()


def test_non_admins_get_403_and_no_admin_link(client, login):
    login("ada@example.com")
    assert 'data-testid="admin-link"' not in client.get("/templates").get_data(as_text=True)
    assert client.get("/admin/users").status_code == 403
    assert client.post("/admin/llm", data={"default_model": "x"}).status_code == 403


def test_form_data_helper_still_matches(app):
    assert form_data(app, "x-post", 1)["variant_count"] == "1"
