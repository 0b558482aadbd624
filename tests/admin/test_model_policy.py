"""Workspace templates may use only the operator's allowed models, within each one's max-tokens ceiling.

Issue 9: a workspace template could name any model on the operator's account with up to
16,000 max tokens, and real generations used them.
"""
from __future__ import annotations

import re

from sqlalchemy import func, select

from app.admin.models import AuditEntry, SiteSetting
from app.catalog.models import Template
from app.extensions import db
from app.generation.models import Generation
from app.quota.models import QuotaCharge
from tests.admin.conftest import editor_form, template_by_slug
from tests.generation.helpers import form_data, submit


def _allow(admin_client, text: str):
    return admin_client.post("/admin/llm/workspace-models", data={"models": text})


def _count(app, column) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(column)))


def test_the_operator_manages_the_allow_list(app, admin_client):
    for bad, message in (("cheap-model", "write a model name and its max tokens"),
                         ("cheap-model 0", "from 1 to 16,000"), ("cheap-model ١٠٠", "write a model name"),
                         ("cheap-model 100\ncheap-model 200", "listed twice"), ("bad name! 100", "line 1")):
        response = _allow(admin_client, bad)
        assert response.status_code == 422 and message in response.get_data(as_text=True), bad
    assert _count(app, SiteSetting.key) == 0
    assert _allow(admin_client, "cheap-model 1000\n\nmid-model 400\n").status_code == 302
    page = admin_client.get("/admin/llm").get_data(as_text=True)
    assert "cheap-model 1000\nmid-model 400" in page
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "settings.change")).one()
        assert entry.target_id == "llm.workspace_models"
    assert _allow(admin_client, "").status_code == 302  # back to the site default only
    assert _count(app, SiteSetting.key) == 0


def test_workspace_template_save_refuses_other_models_and_tokens_over_the_ceiling(app, team, admin_client):
    _allow(admin_client, "cheap-model 500")
    owner = team.client("owner@example.com")
    for llm, message in (({"llm-model": "gpt-4-most-expensive"}, "not available to workspace templates"),
                         ({"llm-model": "cheap-model", "llm-max_tokens": "501"}, "at most 500"),
                         ({"llm-max_tokens": "16000"}, "at most 800")):  # the site default's ceiling
        response = owner.post("/workspace/templates/new", data=editor_form("team-tweet", **llm))
        body = response.get_data(as_text=True)
        assert response.status_code == 422 and message in body, llm
    assert template_by_slug(app, "team-tweet") is None
    editor = owner.get("/workspace/templates/new").get_data(as_text=True)
    assert re.search(r'data-testid="allowed-models">.*cheap-model \(up to 500\)', editor)
    response = owner.post("/workspace/templates/new", data=editor_form(
        "team-tweet", publish="1", **{"llm-model": "cheap-model", "llm-max_tokens": "500"}))
    assert response.status_code == 302
    # The same rule for a later version of it, and for a draft's test run (no model call).
    template = template_by_slug(app, "team-tweet")
    response = owner.post(f"/workspace/templates/{template.id}/edit",
                          data=editor_form("team-tweet", **{"llm-model": "gpt-4-most-expensive"}))
    assert response.status_code == 422 and "not available" in response.get_data(as_text=True)
    body = owner.post("/workspace/templates/test-run",
                      data=editor_form("team-tweet", **{"llm-model": "gpt-4-most-expensive"})).get_data(as_text=True)
    assert "not available to workspace templates" in body


def test_site_templates_may_use_any_model(app, admin_client):
    _allow(admin_client, "cheap-model 500")
    response = admin_client.post("/admin/templates/new", data=editor_form(
        "site-tweet", **{"llm-model": "gpt-4-most-expensive", "llm-max_tokens": "4000"}))
    assert response.status_code == 302


def test_generation_time_clamps_tokens_and_refuses_a_model_that_left_the_list(app, team, admin_client,
                                                                              run_worker, fake_llm):
    _allow(admin_client, "cheap-model 500")
    owner = team.client("owner@example.com")
    owner.post("/workspace/templates/new", data=editor_form(
        "team-tweet", publish="1", **{"llm-model": "cheap-model", "llm-max_tokens": "500"}))
    _allow(admin_client, "cheap-model 120")  # the ceiling was lowered after the save: clamped
    submit(owner, app, "team-tweet", 1)
    run_worker()
    sent = fake_llm.chat_requests[-1]["json"]
    assert sent["model"] == "cheap-model" and sent["max_tokens"] == 120

    _allow(admin_client, "mid-model 300")  # the model left the list: refused, nothing written or charged
    generations = _count(app, Generation.id)
    response = owner.post("/write/team-tweet", data=form_data(app, "team-tweet", 1))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "cheap-model" in body and "not available to workspace templates" in body
    assert _count(app, Generation.id) == generations and _count(app, QuotaCharge.id) == generations
    # Regenerating an earlier result of it is refused the same way.
    with app.app_context():
        first = db.session.scalars(select(Generation.id)).first()
    response = owner.post(f"/generations/{first}/regenerate", follow_redirects=True)
    assert "not available to workspace templates" in response.get_data(as_text=True)
    assert _count(app, Generation.id) == generations
    # Publishing an older version that names it is refused too.
    template = template_by_slug(app, "team-tweet")
    owner.post(f"/workspace/templates/{template.id}/edit", data=editor_form("team-tweet", publish="1"))
    response = owner.post(f"/workspace/templates/{template.id}/versions/1/publish", follow_redirects=True)
    assert "not available to workspace templates" in response.get_data(as_text=True)
    assert template_by_slug(app, "team-tweet").published_version.number == 2
    with app.app_context():
        assert db.session.get(Template, template.id).published_version.model is None


def test_a_workspace_test_run_with_the_default_model_stays_within_its_ceiling(app, team, admin_client, run_worker,
                                                                              fake_llm):
    _allow(admin_client, "fake-model 64")  # the site default model (OPENAI_MODEL in tests), listed lower
    owner = team.client("owner@example.com")
    owner.post("/workspace/templates/test-run", data=editor_form())
    run_worker()
    assert {r["json"]["max_tokens"] for r in fake_llm.chat_requests} == {64}
