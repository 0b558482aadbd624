"""Knowledge base pages: everyone in the workspace reads it, owners and admins manage it (like brand voices)."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from app.billing.services import has_feature
from app.extensions import db
from app.knowledge import services
from app.knowledge.forms import ItemForm, UploadForm
from app.knowledge.models import KnowledgeItem
from app.web import manager_required, workspace_required
from app.workspaces.services import get_in_workspace_or_404

bp = Blueprint("knowledge", __name__)


def _item_or_404(item_id: int) -> KnowledgeItem:
    return get_in_workspace_or_404(KnowledgeItem, item_id, g.workspace.id)


def _upgrade_needed():
    return render_template("knowledge/upgrade.html", limits=services.KNOWLEDGE_LIMITS), 402


def options_for(workspace) -> tuple[list[KnowledgeItem], list[str]] | None:
    """(active items, their tags) for the generate form, or None without the feature or without items."""
    if not has_feature(workspace, services.FEATURE):
        return None
    items = services.items_of(workspace.id)
    return (items, services.tags_of(items)) if items else None


@bp.route("/knowledge")
@workspace_required
def index():
    show_archived = request.args.get("archived") == "1"
    items = services.items_of(g.workspace.id, archived=show_archived)
    tag = (request.args.get("tag") or "")[:services.MAX_TAG_CHARS]
    shown = [item for item in items if tag in (item.tags or [])] if tag else items
    unlocked = has_feature(g.workspace, services.FEATURE)
    return render_template("knowledge/index.html", items=shown, tags=services.tags_of(items), tag=tag,
                           show_archived=show_archived, unlocked=unlocked,
                           limits=services.limits_for(g.workspace) if unlocked else None,
                           stored=services.stored_chars(g.workspace.id) if unlocked else 0)


@bp.route("/knowledge/new", methods=["GET", "POST"])
@workspace_required
@manager_required
def create():
    if not has_feature(g.workspace, services.FEATURE):
        return _upgrade_needed()
    form = ItemForm()
    error = None
    if form.validate_on_submit():
        try:
            item = services.create_item(g.workspace, current_user, kind=form.kind.data, title=form.title.data,
                                        body=form.body.data, tags=services.parse_tags(form.tags.data))
        except services.KnowledgeError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            db.session.commit()
            flash(f"“{item.title}” saved as {len(item.passages)} passage{'s' if len(item.passages) != 1 else ''}.",
                  "success")
            return redirect(url_for("knowledge.show", item_id=item.id))
    return render_template("knowledge/form.html", form=form, item=None, error=error), \
        422 if (form.errors or error) else 200


@bp.route("/knowledge/upload", methods=["GET", "POST"])
@workspace_required
@manager_required
def upload():
    if not has_feature(g.workspace, services.FEATURE):
        return _upgrade_needed()
    form = UploadForm()
    error = None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            with upload.stream:  # read at most one byte past the plan's limit, then let the spooled file go
                data = upload.read(services.limits_for(g.workspace)["file_bytes"] + 1)
            item = services.upload_item(
                g.workspace, current_user, kind=form.kind.data, title=form.title.data or "",
                tags=services.parse_tags(form.tags.data), filename=upload.filename or "", data=data)
        except services.KnowledgeError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            db.session.commit()
            flash(f"“{item.title}” uploaded: {len(item.passages)} passage{'s' if len(item.passages) != 1 else ''}.",
                  "success")
            return redirect(url_for("knowledge.show", item_id=item.id))
    limits = services.limits_for(g.workspace)
    return render_template("knowledge/upload.html", form=form, error=error,
                           size_label=services.size_label(limits["file_bytes"])), \
        422 if (form.errors or error) else 200


@bp.route("/knowledge/<int:item_id>")
@workspace_required
def show(item_id: int):
    return render_template("knowledge/show.html", item=_item_or_404(item_id))


@bp.route("/knowledge/<int:item_id>/edit", methods=["GET", "POST"])
@workspace_required
@manager_required
def edit(item_id: int):
    item = _item_or_404(item_id)
    if not has_feature(g.workspace, services.FEATURE):
        return _upgrade_needed()
    form = ItemForm(data={"kind": item.kind, "title": item.title, "body": item.body,
                          "tags": ", ".join(item.tags or [])})
    error = None
    if form.validate_on_submit():
        try:
            services.update_item(g.workspace, item, kind=form.kind.data, title=form.title.data, body=form.body.data,
                                 tags=services.parse_tags(form.tags.data))
        except services.KnowledgeError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            db.session.commit()
            flash("Saved.", "success")
            return redirect(url_for("knowledge.show", item_id=item.id))
    return render_template("knowledge/form.html", form=form, item=item, error=error), \
        422 if (form.errors or error) else 200


@bp.route("/knowledge/<int:item_id>/archive", methods=["POST"])
@workspace_required
@manager_required
def archive(item_id: int):
    item = _item_or_404(item_id)
    services.set_archived(item, not item.archived)
    db.session.commit()
    flash(f"“{item.title}” {'archived: it is no longer used in prompts' if item.archived else 'restored'}.", "info")
    return redirect(url_for("knowledge.show", item_id=item.id))


@bp.route("/knowledge/<int:item_id>/delete", methods=["POST"])
@workspace_required
@manager_required
def delete(item_id: int):
    item = _item_or_404(item_id)
    title = item.title
    services.delete_item(item)
    db.session.commit()
    flash(f"“{title}” deleted. Generations that used it keep the facts they were given.", "info")
    return redirect(url_for("knowledge.index"))
