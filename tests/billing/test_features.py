"""Plan features: the one list (billing.models.FEATURES) that plans, code and the billing page share."""
from __future__ import annotations

import pytest

from app.billing import services as billing
from app.billing.models import FEATURES, Plan
from app.extensions import db
from app.workspaces.models import Workspace


def test_seeded_plans_list_only_known_features(app_ctx):
    for plan in billing.plans():
        assert set(plan.features) <= set(FEATURES), plan.key
    business = billing.plan("business")
    assert business.feature_labels == ["brand voices", "API access", "bulk runs", "knowledge base"]
    assert billing.plan("free").feature_labels == []


def test_asking_for_an_unknown_feature_is_a_bug_not_a_locked_feature(app_ctx, make_user):
    user_id = make_user()
    workspace = db.session.scalars(db.select(Workspace)).first()
    assert workspace is not None and user_id
    with pytest.raises(ValueError, match="unknown plan feature 'bulk_run'"):
        billing.has_feature(workspace, "bulk_run")
    with pytest.raises(ValueError, match="unknown plan feature"):
        Plan(key="x", features=["api_access"]).has("api-access")
    assert billing.has_feature(workspace, "api_access") is False  # a Free workspace


def test_a_plan_definition_with_an_unknown_feature_is_refused(app_ctx, monkeypatch):
    definitions = billing.plan_definitions(app_ctx.config)
    definitions[1]["features"] = ["brand_voices", "seo_magic"]
    monkeypatch.setattr(billing, "plan_definitions", lambda config: definitions)
    with pytest.raises(ValueError, match=r"plan 'pro' lists unknown features \['seo_magic'\]"):
        billing.seed_plans()
    db.session.rollback()
    assert billing.plan("pro").features == ["brand_voices", "knowledge"]


def test_the_billing_page_names_features_in_words(app, team, billing):
    page = team.client("owner@example.com").get("/billing").get_data(as_text=True)
    assert "brand voices, API access, bulk runs, knowledge base" in page
    assert "api access" not in page and "bulk_runs" not in page
