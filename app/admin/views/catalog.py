"""The catalogue as content: import and export files, and per-template figures."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.bounds import whole_number
from app.admin.forms import ImportForm
from app.admin.views import bp
from app.core import utcnow
from app.extensions import db
from app.catalog import stats, transfer, versions
from app.web import site_admin_required


@bp.route("/templates/import", methods=["GET", "POST"])
@site_admin_required
def import_templates():
    form = ImportForm()
    problems: list[str] = []
    if form.validate_on_submit():
        upload = form.file.data
        filename = upload.filename or "upload"
        try:
            files = transfer.read_upload(filename, upload.read(transfer.MAX_FILES * transfer.MAX_FILE_BYTES + 1))
            plan = transfer.plan(files, allow_updates=form.update_existing.data)
            counts = transfer.apply(plan, actor=current_user, publish_now=form.publish.data, filename=filename)
        except transfer.ImportRefused as exc:
            problems = exc.problems
        else:
            db.session.commit()
            flash(f"Imported {filename}: {counts['created']} created, {counts['updated']} updated, "
                  f"{counts['unchanged']} unchanged.", "success")
            return redirect(url_for("template_admin.index"))
    status = 422 if problems or form.errors else 200
    return render_template("admin/import.html", form=form, problems=problems), status


@bp.route("/templates/export.zip")
@site_admin_required
def export_templates():
    body = transfer.export_zip(versions.templates_in_scope(None))
    name = f"copydeck-templates-{utcnow().date().isoformat()}.zip"
    return Response(body, mimetype="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _period() -> tuple[date, date]:
    today = utcnow().date()
    days = request.args.get("days", type=whole_number)
    if days in (7, 30, 90, 365):
        return today - timedelta(days=days - 1), today
    try:
        start = date.fromisoformat(request.args.get("from", ""))
        end = date.fromisoformat(request.args.get("to", ""))
    except ValueError:
        return today - timedelta(days=29), today
    if start > end:
        start, end = end, start
    return start, end


@bp.route("/templates/stats")
@site_admin_required
def template_stats():
    start, end = _period()
    rows = stats.figures(start, end)
    return render_template("admin/stats.html", rows=rows, start=start, end=end)
