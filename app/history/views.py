"""History: every generation of the workspace, newest first, searchable."""
from flask import Blueprint, current_app, g, render_template, request
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import selectinload

from app.bounds import page_arg, whole_number
from app.bulk import services as bulk_services
from app.catalog.models import Template
from app.extensions import db
from app.generation.models import Generation, Variant
from app.web import is_htmx, workspace_required

bp = Blueprint("history", __name__)


def bulk_run_arg() -> int | None:
    """?run=<id>: only that bulk run's generations (the query stays scoped to the workspace)."""
    try:
        return whole_number(request.args["run"]) if request.args.get("run") else None
    except ValueError:
        return None


def search_terms(query: str) -> list[str]:
    return [term for term in query.lower().split() if term][:8]


@bp.route("/history")
@workspace_required
def index():
    query = request.args.get("q", "")[:200]
    template_slug = request.args.get("template", "")
    favourites = request.args.get("favourites") == "1"
    run_id = bulk_run_arg()
    page = page_arg()

    stmt = (
        select(Generation)
        .where(Generation.workspace_id == g.workspace.id)
        .options(selectinload(Generation.variants), selectinload(Generation.template))
        .order_by(Generation.created_at.desc(), Generation.id.desc())
    )
    if template_slug:
        stmt = stmt.join(Template, Template.id == Generation.template_id).where(Template.slug == template_slug)
    if favourites:
        stmt = stmt.where(exists().where(and_(Variant.generation_id == Generation.id, Variant.is_favourite.is_(True))))
    if run_id:
        stmt = bulk_services.only_run(stmt, run_id)
    for term in search_terms(query):
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Generation.search_document.like(f"%{escaped}%", escape="\\"))
    pagination = db.paginate(stmt, page=max(page, 1), per_page=current_app.config["HISTORY_PAGE_SIZE"],
                             error_out=False)
    used_templates = db.session.scalars(
        select(Template).where(Template.id.in_(
            select(Generation.template_id).where(Generation.workspace_id == g.workspace.id)
        )).order_by(Template.name)
    ).all()
    context = dict(pagination=pagination, query=query, template_slug=template_slug,
                   favourites=favourites, used_templates=used_templates,
                   run_id=run_id, bulk_runs=bulk_services.runs_of(pagination.items))
    if is_htmx():
        return render_template("history/_list.html", **context)
    return render_template("history/index.html", **context)
