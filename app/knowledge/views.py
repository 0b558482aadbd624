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


def _save(store, message: str):
    """Run a service that stores an item: commit and go to the item with `message`, or roll back and
    return the reason it was refused (nothing stored). Returns (response, error)."""
    try:
        item = store()
    except services.KnowledgeError as exc:
        db.session.rollback()
        return None, str(exc)
    db.session.commit()
    count = len(item.passages)
    flash(message.format(title=item.title, passages=f"{count} passage{'s' if count != 1 else ''}"), "success")
    return redirect(url_for("knowledge.show", item_id=item.id)), None


@bp.route("/knowledge/new", methods=["GET", "POST"])
@workspace_required
@manager_required
def create():
    if not has_feature(g.workspace, services.FEATURE):
        return _upgrade_needed()
    form = ItemForm()
    done, error = None, None
    if form.validate_on_submit():
        done, error = _save(lambda: services.create_item(
            g.workspace, current_user, kind=form.kind.data, title=form.title.data, body=form.body.data,
            tags=services.parse_tags(form.tags.data)), "“{title}” saved as {passages}.")
    return done or (render_template("knowledge/form.html", form=form, item=None, error=error),
                    422 if (form.errors or error) else 200)


def _read_upload(upload) -> bytes:
    """At most one byte past the plan's file limit (enough to refuse it), then the spooled file is closed."""
    with upload.stream:
        return upload.read(services.limits_for(g.workspace)["file_bytes"] + 1)


@bp.route("/knowledge/upload", methods=["GET", "POST"])
@workspace_required
@manager_required
def upload():
    if not has_feature(g.workspace, services.FEATURE):
        return _upgrade_needed()
    form = UploadForm()
    done, error = None, None
    if form.validate_on_submit():
        done, error = _save(lambda: services.upload_item(
            g.workspace, current_user, kind=form.kind.data, title=form.title.data or "",
            tags=services.parse_tags(form.tags.data), filename=form.file.data.filename or "",
            data=_read_upload(form.file.data)), "“{title}” uploaded: {passages}.")
    size = services.size_label(services.limits_for(g.workspace)["file_bytes"])
    return done or (render_template("knowledge/upload.html", form=form, error=error, size_label=size),
                    422 if (form.errors or error) else 200)


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
    done, error = None, None
    if form.validate_on_submit():
        def store():
            services.update_item(g.workspace, item, kind=form.kind.data, title=form.title.data, body=form.body.data,
                                 tags=services.parse_tags(form.tags.data))
            return item
        done, error = _save(store, "Saved: {passages}.")
    return done or (render_template("knowledge/form.html", form=form, item=item, error=error),
                    422 if (form.errors or error) else 200)


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
