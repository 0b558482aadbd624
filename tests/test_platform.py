"""Catalogue pages and the mail layer."""
from __future__ import annotations


def test_catalogue_search_and_category_filter(client, login):
    login()
    page = client.get("/templates").get_data(as_text=True)
    assert page.count('class="template-card"') >= 20
    ads = client.get("/templates?category=Ads").get_data(as_text=True)
    assert "Google Ads headlines" in ads and "Press release" not in ads
    search = client.get("/templates?q=google", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in search and "Google Ads headlines" in search and "Cold email" not in search
    none = client.get("/templates?q=zzzz").get_data(as_text=True)
    assert "No template matches" in none


def test_local_draft_banner(app, client, login):
    login()
    assert "small practice model" not in client.get("/templates").get_data(as_text=True)
    app.config["LLM_LOCAL_DRAFT"] = True
    try:
        assert "small practice model" in client.get("/templates").get_data(as_text=True)
    finally:
        app.config["LLM_LOCAL_DRAFT"] = False


def test_demo_user_command_is_idempotent_and_repairs_a_missing_workspace(app):
    from sqlalchemy import delete, func, select

    from app.extensions import db
    from app.workspaces.models import Membership
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo-user"]).exit_code == 0
    assert runner.invoke(args=["demo-user"]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(Membership.id))) == 1
        db.session.execute(delete(Membership))
        db.session.commit()
    assert runner.invoke(args=["demo-user"]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(Membership.id))) == 1
