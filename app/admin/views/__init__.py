"""The site admin console (/admin): site admins only, every change audited.

Split by area: users and workspaces, catalogue (import/export, figures),
system (LLM settings, queues) and the audit log. The template editor itself is
app/catalog/editor.py, shared with workspace templates.
"""
from flask import Blueprint, redirect, url_for

from app.web import site_admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("")
@site_admin_required
def index():
    return redirect(url_for("template_admin.index"))


from app.admin.views import audit, catalog, system, users  # noqa: E402,F401  (routes on bp)
