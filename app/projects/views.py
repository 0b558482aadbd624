"""Projects: folders of favourite variants that the whole workspace sees."""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.bounds import whole_number
from app.extensions import db
from app.generation.models import Generation, Variant
from app.projects.models import Project, ProjectItem
from app.projects.services import projects_of
from app.web import is_htmx, workspace_required
from app.workspaces.services import get_in_workspace_or_404, variant_in_workspace_or_404

bp = Blueprint("projects", __name__)


@bp.route("/projects", methods=["GET", "POST"])
@workspace_required
def index():
    status = 200
    if request.method == "POST":
        name = (request.form.get("name") or "").strip()
        if not name or len(name) > 80:
            flash("A project needs a name of at most 80 characters.", "error")
            status = 422
        else:
            project = Project(workspace_id=g.workspace.id, name=name, created_by_id=current_user.id)
            db.session.add(project)
            db.session.commit()
            flash(f"Project “{name}” created. File favourites into it from any result.", "success")
            return redirect(url_for("projects.show", project_id=project.id))
    return render_template("projects/index.html", projects=projects_of(g.workspace.id)), status


@bp.route("/projects/<int:project_id>")
@workspace_required
def show(project_id: int):
    project = get_in_workspace_or_404(Project, project_id, g.workspace.id)
    # One query per list: each item's variant, its generation, template and author come with it.
    items = db.session.scalars(
        select(ProjectItem).where(ProjectItem.project_id == project.id)
        .options(joinedload(ProjectItem.variant).joinedload(Variant.generation)
                 .options(joinedload(Generation.template), joinedload(Generation.user)))
        .order_by(ProjectItem.created_at.desc())
    ).all()
    return render_template("projects/show.html", project=project, items=items)


@bp.route("/projects/<int:project_id>/delete", methods=["POST"])
@workspace_required
def delete(project_id: int):
    project = get_in_workspace_or_404(Project, project_id, g.workspace.id)
    if not (g.membership.can_manage or project.created_by_id == current_user.id):
        abort(403)
    db.session.delete(project)
    db.session.commit()
    flash(f"Project “{project.name}” deleted; its variants stay in History.", "info")
    return redirect(url_for("projects.index"))


@bp.route("/variants/<int:variant_id>/file", methods=["POST"])
@workspace_required
def file_variant(variant_id: int):
    """File a variant into a project (it becomes a favourite)."""
    variant = variant_in_workspace_or_404(variant_id, g.workspace.id)
    project = get_in_workspace_or_404(Project, request.form.get("project_id", type=whole_number) or 0, g.workspace.id)
    variant.is_favourite = True
    try:
        with db.session.begin_nested():
            db.session.add(ProjectItem(project_id=project.id, variant_id=variant.id))
    except IntegrityError:
        pass  # already filed there
    db.session.commit()
    if is_htmx():
        return render_template("generation/_variant.html", variant=variant,
                               version=variant.generation.template_version, filed_in=project.name)
    flash(f"Filed in {project.name}.", "success")
    return redirect(url_for("projects.show", project_id=project.id))


@bp.route("/projects/<int:project_id>/items/<int:item_id>/remove", methods=["POST"])
@workspace_required
def remove_item(project_id: int, item_id: int):
    project = get_in_workspace_or_404(Project, project_id, g.workspace.id)
    item = db.session.get(ProjectItem, item_id)
    if item is None or item.project_id != project.id:
        abort(404)
    db.session.delete(item)
    db.session.commit()
    flash("Removed from the project; the variant stays in History.", "info")
    return redirect(url_for("projects.show", project_id=project.id))
