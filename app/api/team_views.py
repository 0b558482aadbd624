"""Team → API keys: owners and admins create, list and revoke the workspace's keys."""
from __future__ import annotations

from datetime import datetime, time

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from app.api import keys
from app.api.forms import ApiKeyForm
from app.api.models import ApiKey
from app.auth.models import User
from app.billing.services import has_feature
from app.extensions import db
from app.web import manager_required, workspace_required
from app.workspaces.models import Membership

bp = Blueprint("apikeys", __name__)


def _form() -> ApiKeyForm:
    form = ApiKeyForm()
    members = db.session.execute(select(Membership.user_id, User.email).join(User, User.id == Membership.user_id)
                                 .where(Membership.workspace_id == g.workspace.id).order_by(User.email)).all()
    form.charge_user_id.choices = [SelectChoice(user_id, email) for user_id, email in members]
    if form.charge_user_id.data is None:
        form.charge_user_id.data = current_user.id
    return form


def _page(form: ApiKeyForm, status: int = 200, new_secret: str | None = None):
    return render_template("api/keys.html", form=form, api_keys=keys.keys_of(g.workspace.id), new_secret=new_secret,
                           pooled=g.workspace.quota_mode == "pooled", now=keys.utcnow()), status


@bp.route("/workspace/api-keys", methods=["GET", "POST"])
@workspace_required
@manager_required
def index():
    if not has_feature(g.workspace, "api_access"):
        return render_template("api/upgrade.html"), 402
    form = _form()
    if form.validate_on_submit():
        expires = datetime.combine(form.expires_on.data, time()) if form.expires_on.data else None
        try:
            made = keys.create(g.workspace, current_user, name=form.name.data, scopes=form.scopes.data or [],
                               charge_user_id=form.charge_user_id.data, expires_at=expires)
        except keys.KeyError_ as exc:
            flash(str(exc), "error")
            return _page(form, 422)
        db.session.commit()
        # Shown once, in this response only (never stored, never in a redirect or flash cookie).
        return _page(_form(), 201, new_secret=made.secret)
    return _page(form, 422 if form.is_submitted() else 200)


@bp.route("/workspace/api-keys/<int:key_id>/revoke", methods=["POST"])
@workspace_required
@manager_required
def revoke(key_id: int):
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.workspace_id == g.workspace.id))
    if key is None:
        abort(404)
    keys.revoke(key, current_user)
    db.session.commit()
    flash(f"Key “{key.name}” revoked; requests with it are refused from now on.", "info")
    return redirect(url_for("apikeys.index"))
