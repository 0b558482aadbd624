"""The audit log: browse and filter every admin action."""
from __future__ import annotations

from datetime import date

from flask import render_template, request

from app.bounds import page_arg
from app.admin import audit as log
from app.admin.views import bp
from app.web import is_htmx, site_admin_required


def _date(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


@bp.route("/audit")
@site_admin_required
def audit():
    flt = log.AuditFilter(actor=request.args.get("actor", "")[:254], action=request.args.get("action", "")[:60],
                          target_type=request.args.get("target_type", "")[:40],
                          target_id=request.args.get("target_id", "")[:120],
                          since=_date("since"), until=_date("until"))
    page = log.browse(flt, page_arg())
    context = dict(page=page, flt=flt, actions=log.actions(), target_types=log.target_types())
    if is_htmx():
        return render_template("admin/_audit_list.html", **context)
    return render_template("admin/audit.html", **context)
