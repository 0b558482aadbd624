"""No page issues a query per row: each page issues the same number of statements
for 2 rows as for 50 (members, usage, a project, history, catalogue, the workspace
switcher in the header, the site template list).

Rows are written straight to the database (the pages only read them); each test
counts the page with 2 rows, adds 48 more, and counts it again.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.models import User

from app.core import utcnow
from app.catalog.models import Template, TemplateVersion
from app.extensions import db
from app.generation.models import Generation, Variant
from app.projects.models import Project, ProjectItem
from app.quota import services as quota
from app.quota.models import QuotaCharge, QuotaLedger
from app.workspaces.models import Membership, Workspace
from tests.querycount import count_statements


def _count(app, client, url: str) -> tuple[int, str]:
    assert client.get(url).status_code == 200  # warm: the session, lazily built caches
    with app.app_context():
        engine = db.engine
    with count_statements(engine) as counted:
        response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return counted.n, str(counted)


def _same_for_2_and_50(app, client, url: str, add_rows) -> None:
    add_rows(0, 2)
    small, small_log = _count(app, client, url)
    add_rows(2, 50)
    large, large_log = _count(app, client, url)
    assert large == small, f"{url}: {small} statements for 2 rows, {large} for 50\n--- 50 rows:\n{large_log}"


def _user(n: int, prefix: str = "m") -> User:
    user = User(email=f"{prefix}{n}@example.com", password_hash="x")
    db.session.add(user)
    db.session.flush()
    return user


def _templates() -> list[Template]:
    return list(db.session.scalars(select(Template).where(Template.published_version_id.is_not(None))
                                   .order_by(Template.id)))


def _generation(workspace_id: int, user_id: int, template: Template, n: int, charge_ledger=None) -> Generation:
    generation = Generation(
        workspace_id=workspace_id, user_id=user_id, template_id=template.id,
        template_version_id=template.published_version_id, inputs={"topic": f"Topic {n}"}, tone="Bold",
        language="English", variant_count=2, creativity=0.7, system_prompt="s", user_prompt="u",
        status="succeeded", search_document=f"topic {n} copy {n}", created_at=utcnow())
    generation.variants = [Variant(position=i, text=f"Copy {n}.{i}") for i in range(2)]
    db.session.add(generation)
    db.session.flush()
    if charge_ledger is not None:
        db.session.add(QuotaCharge(generation_id=generation.id, ledger_id=charge_ledger.id, amount=2, state="settled"))
    return generation


def _ledger(workspace: Workspace, user_id: int) -> QuotaLedger:
    period = quota.quota_period(workspace)
    subject = f"user:{user_id}"
    ledger = db.session.scalars(select(QuotaLedger).where(
        QuotaLedger.workspace_id == workspace.id, QuotaLedger.subject == subject)).first()
    if ledger is None:
        ledger = QuotaLedger(workspace_id=workspace.id, subject=subject, period_kind=period.kind,
                             period_start=period.start, allowance=10, used=0, reserved=0)
        db.session.add(ledger)
        db.session.flush()
    return ledger


@pytest.mark.parametrize("url", ["/workspace/members", "/workspace/usage"])
def test_members_and_usage(app, team, url):
    """Members, each with a generation of another template charged to their ledger."""
    def add(start, stop):
        with app.app_context():
            workspace = db.session.get(Workspace, team.workspace_id)
            templates = _templates()
            for n in range(start, stop):
                user = _user(n)
                db.session.add(Membership(workspace_id=workspace.id, user_id=user.id, role="member", quota_cap=5))
                _generation(workspace.id, user.id, templates[n % len(templates)], n, _ledger(workspace, user.id))
            db.session.commit()

    _same_for_2_and_50(app, team.client("owner@example.com"), url, add)


def test_history(app, team):
    """History's first page (20 rows at most), of generations by different members and templates."""
    def add(start, stop):
        with app.app_context():
            templates = _templates()
            for n in range(start, stop):
                _generation(team.workspace_id, _user(n).id, templates[n % len(templates)], n)
            db.session.commit()

    app.config["HISTORY_PAGE_SIZE"] = 60
    try:
        _same_for_2_and_50(app, team.client("owner@example.com"), "/history", add)
    finally:
        app.config["HISTORY_PAGE_SIZE"] = 20


def test_project(app, team):
    def add(start, stop):
        with app.app_context():
            project = db.session.scalars(select(Project).where(Project.workspace_id == team.workspace_id)).first()
            if project is None:
                project = Project(workspace_id=team.workspace_id, name="Launch")
                db.session.add(project)
                db.session.flush()
            templates = _templates()
            for n in range(start, stop):
                generation = _generation(team.workspace_id, _user(n).id, templates[n % len(templates)], n)
                db.session.add(ProjectItem(project_id=project.id, variant_id=generation.variants[0].id))
            db.session.commit()

    add(0, 0)
    with app.app_context():
        project_id = db.session.scalars(select(Project.id)).one()
    client = team.client("owner@example.com")
    add(0, 2)
    small, _ = _count(app, client, f"/projects/{project_id}")
    add(2, 50)
    large, log = _count(app, client, f"/projects/{project_id}")
    assert large == small, f"{small} statements for 2 items, {large} for 50\n{log}"


def _workspace_template(workspace_id: int | None, n: int) -> None:
    template = Template(slug=f"scale-{n}", name=f"Scale {n}", category="Ads", description="d", icon="rocket",
                        source="workspace" if workspace_id else "admin", workspace_id=workspace_id)
    db.session.add(template)
    db.session.flush()
    version = TemplateVersion(template_id=template.id, number=1, fields=[], system_prompt="s", user_prompt="u",
                              output={"variants": 2})
    db.session.add(version)
    db.session.flush()
    template.published_version_id = version.id


def test_catalogue(app, team):
    def add(start, stop):
        with app.app_context():
            for n in range(start, stop):
                _workspace_template(team.workspace_id, n)
            db.session.commit()

    _same_for_2_and_50(app, team.client("owner@example.com"), "/templates", add)


def test_admin_templates(app, admin_client):
    def add(start, stop):
        with app.app_context():
            for n in range(start, stop):
                _workspace_template(None, n)
                db.session.flush()
                template = db.session.scalars(select(Template).where(Template.slug == f"scale-{n}")).one()
                db.session.add(TemplateVersion(template_id=template.id, number=2, fields=[], system_prompt="s",
                                               user_prompt="u", output={"variants": 2}))
            db.session.commit()

    _same_for_2_and_50(app, admin_client, "/admin/templates", add)


def test_header_workspace_switcher(app, team):
    """The owner belongs to 2, then 50, other workspaces: the switcher lists them all."""
    owner_id = None
    with app.app_context():
        owner_id = db.session.scalars(select(User.id).where(User.email == "owner@example.com")).one()

    def add(start, stop):
        with app.app_context():
            for n in range(start, stop):
                workspace = Workspace(name=f"Client {n}", plan="free", seats=1, generations_per_seat=0)
                db.session.add(workspace)
                db.session.flush()
                db.session.add(Membership(workspace_id=workspace.id, user_id=owner_id, role="admin"))
            db.session.commit()

    _same_for_2_and_50(app, team.client("owner@example.com"), "/projects", add)
