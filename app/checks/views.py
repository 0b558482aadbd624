"""Team → Style guide (owners and admins edit, members read) and "Mark checked" on held variants."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from app.brand.models import BrandVoice
from app.checks import services
from app.checks.forms import EntryForm, SettingsForm, VoiceGradeForm
from app.extensions import db
from app.web import manager_required, workspace_required
from app.workspaces.services import variant_in_workspace_or_404

bp = Blueprint("checks", __name__)


def _page(entry_form=None, settings_form=None, status=200):
    workspace_id = g.workspace.id
    guide = services.get_guide(workspace_id)
    if settings_form is None:
        settings_form = SettingsForm(prefix="s", data={
            "ai_tells": guide.ai_tells_enabled if guide else True,
            "claims": guide.claims_enabled if guide else True,
            "flag_action": guide.flag_action if guide else "show",
            "max_grade": guide.max_grade if guide else None})
    voices = db.session.scalars(select(BrandVoice).where(BrandVoice.workspace_id == workspace_id)
                                .order_by(BrandVoice.name)).all()
    return render_template("checks/style_guide.html", guide=guide, entries=services.entries(workspace_id),
                           entry_form=entry_form or EntryForm(prefix="e"), settings_form=settings_form,
                           voices=voices, grades=services.voice_grades(workspace_id),
                           grade_form=VoiceGradeForm(prefix="v")), status


@bp.route("/workspace/style-guide")
@workspace_required
def style_guide():
    return _page()


def _save(action, success: str, refused_page):
    """Run a service change and commit it: on success flash and go back to the page; a refusal re-renders
    it (422), with nothing written."""
    try:
        action()
        db.session.commit()
    except LookupError:
        abort(404)
    except services.StyleGuideError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return refused_page()
    flash(success, "success")
    return redirect(url_for("checks.style_guide"))


@bp.route("/workspace/style-guide/entries", methods=["POST"])
@workspace_required
@manager_required
def add_entry():
    form = EntryForm(prefix="e")
    if not form.validate_on_submit():
        flash("Choose a kind of entry and try again.", "error")
        return _page(form, status=422)
    return _save(lambda: services.add_entry(g.workspace.id, current_user.id, form.kind.data, form.phrase.data,
                                            form.replacement.data),
                 "Added to the style guide.", lambda: _page(form, status=422))


@bp.route("/workspace/style-guide/entries/<int:entry_id>/delete", methods=["POST"])
@workspace_required
@manager_required
def remove_entry(entry_id: int):
    return _save(lambda: services.remove_entry(g.workspace.id, current_user.id, entry_id),
                 "Removed from the style guide.", lambda: _page(status=422))


@bp.route("/workspace/style-guide/settings", methods=["POST"])
@workspace_required
@manager_required
def save_settings():
    form = SettingsForm(prefix="s")
    if not form.validate_on_submit():
        flash(" ".join(e for errors in form.errors.values() for e in errors) or "Check the settings.", "error")
        return _page(settings_form=form, status=422)
    return _save(lambda: services.save_settings(
        g.workspace.id, current_user.id, ai_tells=form.ai_tells.data, claims=form.claims.data,
        flag_action=form.flag_action.data, max_grade=form.max_grade.data),
        "Saved.", lambda: _page(settings_form=form, status=422))


@bp.route("/workspace/style-guide/voices/<int:voice_id>", methods=["POST"])
@workspace_required
@manager_required
def voice_grade(voice_id: int):
    try:
        services.workspace_voice(g.workspace.id, voice_id)
    except LookupError:
        abort(404)
    form = VoiceGradeForm(prefix="v")
    if not form.validate_on_submit():
        flash(f"A reading level is a grade from {services.MIN_GRADE} to {services.MAX_GRADE}.", "error")
        return _page(status=422)
    return _save(lambda: services.set_voice_grade(g.workspace.id, current_user.id, voice_id, form.max_grade.data),
                 "Saved.", lambda: _page(status=422))


@bp.route("/variants/<int:variant_id>/checked", methods=["POST"])
@workspace_required
def mark_checked(variant_id: int):
    """Any member may release a held variant after reading it; who and when are kept."""
    variant = variant_in_workspace_or_404(variant_id, g.workspace.id)
    try:
        services.mark_checked(variant, current_user.id)
        db.session.commit()
    except services.NotHeld:
        pass  # already released (another member, another tab): show the card as it is
    return render_template("generation/_variant.html", variant=variant,
                           version=variant.generation.template_version)


@bp.app_template_filter("marked")
def marked(variant):
    """The variant text with its findings marked; escaped segment by segment (app/checks/markup.py)."""
    from app.checks.markup import highlight
    return highlight(variant.text, variant.findings)


@bp.app_template_filter("marked_findings")
def marked_findings(variant) -> list[dict]:
    """The findings to list under the text: every one still true of the text, and the whole-text ones."""
    from app.checks.markup import spans
    whole = [f for f in variant.findings or [] if f.get("start") == f.get("end")]
    return spans(variant.text, variant.findings) + whole
