"""The template catalogue: browse, search by name, filter by category."""
from flask import Blueprint, g, render_template, request

from app.catalog.models import CATEGORIES
from app.catalog.services import list_templates
from app.web import is_htmx, workspace_required

bp = Blueprint("catalog", __name__)


@bp.route("/templates")
@workspace_required
def index():
    query = request.args.get("q", "")[:100]
    category = request.args.get("category", "")
    templates = list_templates(query, category, g.workspace.id)
    context = dict(templates=templates, query=query, category=category, categories=CATEGORIES)
    if is_htmx():
        return render_template("catalog/_grid.html", **context)
    return render_template("catalog/index.html", **context)
