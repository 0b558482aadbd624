"""Brand voices: listed for everyone in the workspace, managed by owners and admins."""
from flask import Blueprint, flash, g, redirect, render_template, url_for
from sqlalchemy import select

from app.billing.services import has_feature
from app.brand.forms import BrandVoiceForm
from app.brand.models import BrandVoice
from app.extensions import db
from app.web import manager_required, workspace_required
from app.workspaces.services import get_in_workspace_or_404

bp = Blueprint("brand", __name__)

FIELDS = ("name", "description", "tone_rules", "words_to_use", "words_to_avoid", "audience", "key_facts")


def voices_of(workspace_id: int) -> list[BrandVoice]:
    return list(db.session.scalars(select(BrandVoice).where(BrandVoice.workspace_id == workspace_id)
                                   .order_by(BrandVoice.name)))


@bp.route("/brand-voices")
@workspace_required
def index():
    return render_template("brand/index.html", voices=voices_of(g.workspace.id),
                           unlocked=has_feature(g.workspace, "brand_voices"))


def _upgrade_needed():
    return render_template("brand/upgrade.html"), 402


@bp.route("/brand-voices/new", methods=["GET", "POST"])
@workspace_required
@manager_required
def create():
    if not has_feature(g.workspace, "brand_voices"):
        return _upgrade_needed()
    form = BrandVoiceForm()
    if form.validate_on_submit():
        voice = BrandVoice(workspace_id=g.workspace.id, **{f: (getattr(form, f).data or "").strip() for f in FIELDS})
        db.session.add(voice)
        db.session.commit()
        flash(f"Brand voice “{voice.name}” saved. Pick it on any template's form.", "success")
        return redirect(url_for("brand.index"))
    return render_template("brand/form.html", form=form, voice=None), 422 if form.errors else 200


@bp.route("/brand-voices/<int:voice_id>/edit", methods=["GET", "POST"])
@workspace_required
@manager_required
def edit(voice_id: int):
    voice = get_in_workspace_or_404(BrandVoice, voice_id, g.workspace.id)
    if not has_feature(g.workspace, "brand_voices"):
        return _upgrade_needed()
    form = BrandVoiceForm(obj=voice)
    if form.validate_on_submit():
        for field in FIELDS:
            setattr(voice, field, (getattr(form, field).data or "").strip())
        db.session.commit()
        flash("Brand voice saved.", "success")
        return redirect(url_for("brand.index"))
    return render_template("brand/form.html", form=form, voice=voice), 422 if form.errors else 200


@bp.route("/brand-voices/<int:voice_id>/delete", methods=["POST"])
@workspace_required
@manager_required
def delete(voice_id: int):
    voice = get_in_workspace_or_404(BrandVoice, voice_id, g.workspace.id)
    db.session.delete(voice)
    db.session.commit()
    flash(f"Brand voice “{voice.name}” deleted.", "info")
    return redirect(url_for("brand.index"))
