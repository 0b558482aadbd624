"""Team → API keys: owners and admins create (secret once), list and revoke keys; all audited."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from tests.api.test_bad_input import problem


def _create(client, **data):
    form = {"name": "Shop backend", "scopes": ["generate", "read"], "charge_user_id": data.pop("charge", None)}
    form.update(data)
    return client.post("/workspace/api-keys", data={k: v for k, v in form.items() if v is not None})


def test_owner_creates_uses_and_revokes_a_key(api, app, team):
    owner = team.client("owner@example.com")
    response = _create(owner, charge=str(api.owner_id))
    assert response.status_code == 201
    page = response.get_data(as_text=True)
    secret = re.search(r'id="new-api-key">(cd_test_[A-Za-z0-9]{40})<', page).group(1)
    # Shown once: the list shows only its start, and the database only its hash.
    again = owner.get("/workspace/api-keys").get_data(as_text=True)
    assert secret not in again and secret[:16] in again
    from app.api.models import ApiKey
    from app.admin.models import AuditEntry
    with app.app_context():
        key = db.session.scalars(select(ApiKey).where(ApiKey.name == "Shop backend")).one()
        assert secret not in (key.secret_hash, key.display) and key.display == secret[:16]
        key_id = key.id
    assert api.get("/api/v1/templates", key=secret).status_code == 200
    assert "from 127.0.0.1" in owner.get("/workspace/api-keys").get_data(as_text=True)
    assert owner.post(f"/workspace/api-keys/{key_id}/revoke").status_code == 302
    problem(api.get("/api/v1/templates", key=secret), 401, "revoked-key")
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(key_id))
                                     .order_by(AuditEntry.id)).all()
    assert actions == ["api_key.create", "api_key.revoke"]


def test_members_cannot_manage_keys(api, team):
    team.add("member@example.com")
    member = team.client("member@example.com")
    assert member.get("/workspace/api-keys").status_code == 403
    assert _create(member).status_code == 403


def test_another_workspaces_key_cannot_be_revoked(api, app, team, make_user):
    from app.api.models import ApiKey
    theirs = api.stranger_key(make_user)
    with app.app_context():
        key_id = db.session.scalars(select(ApiKey.id).order_by(ApiKey.id.desc())).first()
    assert team.client("owner@example.com").post(f"/workspace/api-keys/{key_id}/revoke").status_code == 404
    assert api.get("/api/v1/templates", key=theirs).status_code == 200


def test_bad_form_input_creates_nothing(api, app, team):
    from app.api.models import ApiKey
    owner = team.client("owner@example.com")
    with app.app_context():
        before = db.session.scalar(select(db.func.count()).select_from(ApiKey))
    assert _create(owner, name="", charge=str(api.owner_id)).status_code == 422
    assert _create(owner, scopes=[], charge=str(api.owner_id)).status_code == 422
    assert _create(owner, charge="999999").status_code == 422
    assert _create(owner, charge=str(api.owner_id), expires_on="2000-01-01").status_code == 422
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(ApiKey)) == before


def test_plan_without_api_access_shows_the_upgrade(app, team):
    owner = team.client("owner@example.com")
    response = owner.get("/workspace/api-keys")
    assert response.status_code == 402
    assert "Business plan" in response.get_data(as_text=True)
