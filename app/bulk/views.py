"""Bulk run pages: upload, map, check, run (live progress), download. Views are thin: app/bulk/services.py
holds the rules."""
from __future__ import annotations

from typing import Any

from flask import (Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for)
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from app.bulk import export, parsing, services
from app.bulk.forms import ActionForm, UploadForm
from app.bulk.models import BulkRun
from app.catalog.services import get_published
from app.extensions import db, limiter
from app.generation.options import CREATIVITY, MAX_VARIANTS
from app.generation.services import LANGUAGES, TONES
from app.web import workspace_required
from app.workspaces.services import get_in_workspace_or_404

bp = Blueprint("bulk", __name__)

MAX_FIXED_VALUE = 4000


def _upsell():
    return render_template("bulk/upgrade.html"), 402


def _locked() -> bool:
    return not services.has_feature(g.workspace, services.FEATURE)


def _run_or_404(run_id: int) -> BulkRun:
    run = get_in_workspace_or_404(BulkRun, run_id, g.workspace.id)
    if not services.may_see(run, g.membership):
        abort(404)
    return run


def _draft(run_id: int) -> tuple[BulkRun, BaseResponse | tuple | None]:
    """The user's own draft run, or the response to send instead (upsell, or the run's page once started)."""
    run = _run_or_404(run_id)
    if _locked():
        return run, _upsell()
    if run.status != "draft":
        return run, redirect(url_for("bulk.show", run_id=run.id))
    if run.user_id != current_user.id:
        abort(404)
    return run, None


@bp.route("/bulk")
@workspace_required
def index():
    if _locked():
        return _upsell()
    return render_template("bulk/index.html", runs=services.visible_runs(g.workspace, g.membership),
                           progress={})


@bp.route("/bulk/new/<slug>", methods=["GET", "POST"])
@workspace_required
@limiter.limit("30 per minute", methods=["POST"])
def upload(slug: str):
    template = get_published(slug, g.workspace.id)
    if template is None:
        abort(404)
    if _locked():
        return _upsell()
    form = UploadForm()
    status = 200
    if form.validate_on_submit():
        with form.file.data.stream as stream:  # a large upload is a temporary file: let it go now
            data = stream.read(parsing.MAX_BYTES + 1)
        try:
            run = services.create_draft(g.workspace, current_user, template, form.file.data.filename or "", data)
        except parsing.SheetError as exc:
            flash(str(exc), "error")
            status = 422
        else:
            db.session.commit()
            return redirect(url_for("bulk.mapping", run_id=run.id))
    elif form.is_submitted():
        status = 422
    return render_template("bulk/upload.html", template=template, form=form,
                           limits=(parsing.MAX_ROWS, parsing.MAX_BYTES // 1024 // 1024)), status


def _mapping_from_form(version) -> dict:
    def entry(prefix: str) -> dict:
        return {"column": request.form.get(f"{prefix}_column", "")[:200],
                "value": request.form.get(f"{prefix}_value", "").strip()[:MAX_FIXED_VALUE]}
    return {"fields": {spec["name"]: entry(f"field_{spec['name']}") for spec in version.fields},
            "settings": {name: entry(f"setting_{name}") for name in services.SETTINGS}}


@bp.route("/bulk/<int:run_id>/map", methods=["GET", "POST"])
@workspace_required
def mapping(run_id: int):
    run, instead = _draft(run_id)
    if instead is not None:
        return instead
    version = run.template_version
    form = ActionForm()
    problems: list[str] = []
    status = 200
    sheet = None
    if form.validate_on_submit():
        if request.form.get("action") == "options":
            options: dict[str, Any] = {"encoding": request.form.get("encoding") or None,
                       "delimiter": {"comma": ",", "semicolon": ";", "tab": "\t"}.get(request.form.get("delimiter", "")),
                       "header_row": request.form.get("header_row", type=int) or 0}
            if options["encoding"] not in (None, *parsing.ENCODINGS):
                options["encoding"] = None
            options["header_row"] = max(0, min(options["header_row"], parsing.HEADER_SCAN_ROWS * 10))
            try:
                sheet = services.set_options(run, options)
                db.session.commit()
                flash("File read again with your settings; check the columns below.", "success")
            except parsing.SheetError as exc:
                flash(str(exc), "error")
                status = 422
        else:
            mapping = _mapping_from_form(version)
            problems = services.set_mapping(run, mapping)
            if not problems:
                db.session.commit()
                return redirect(url_for("bulk.check", run_id=run.id))
            run.mapping = mapping  # shown back, not stored
            status = 422
    elif form.is_submitted():
        status = 400
    if sheet is None:
        try:
            sheet = services.read_sheet(run)
        except parsing.SheetError as exc:
            flash(str(exc), "error")
            sheet = None
            status = 422
    saved = services.saved_mapping(run.workspace_id, run.template_id)
    current = run.mapping or services.default_mapping(version, run.columns, saved)
    db.session.rollback()  # the shown-back mapping is not stored
    return render_template(
        "bulk/map.html", run=run, version=version, sheet=sheet, mapping=current, problems=problems, form=form,
        used_saved=bool(saved) and not run.mapping, encodings=parsing.ENCODINGS,
        choices={"tone": TONES, "language": LANGUAGES, "creativity": tuple(CREATIVITY),
                 "variant_count": [str(n) for n in range(1, MAX_VARIANTS + 1)]},
        setting_labels=services.SETTING_LABELS,
    ), status


def _check(run: BulkRun, redo: bool):
    sheet = services.read_sheet(run)
    return services.check_rows(run, sheet, current_user.id, redo_done=redo)


@bp.route("/bulk/<int:run_id>/check", methods=["GET", "POST"])
@workspace_required
@limiter.limit("30 per minute", methods=["POST"])
def check(run_id: int):
    run, instead = _draft(run_id)
    if instead is not None:
        return instead
    if not run.mapping:
        return redirect(url_for("bulk.mapping", run_id=run.id))
    form = ActionForm()
    redo = request.values.get("redo") == "1"
    status = 200
    if form.validate_on_submit():
        try:
            count = services.start_run(run, current_user, only_fitting=request.form.get("scope") == "fit",
                                       redo_done=redo)
        except services.BulkError as exc:
            flash(str(exc), "error")
            status = 422
        except parsing.SheetError as exc:
            flash(str(exc), "error")
            status = 422
        else:
            db.session.commit()  # the rows' jobs are enqueued after this commit (outbox)
            flash(f"Started: {count} row{'s' if count != 1 else ''} to write.", "success")
            return redirect(url_for("bulk.show", run_id=run.id))
    try:
        result = _check(run, redo)
    except parsing.SheetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("bulk.mapping", run_id=run.id))
    return render_template("bulk/check.html", run=run, result=result, form=form, redo=redo), status


@bp.route("/bulk/<int:run_id>/errors.csv")
@workspace_required
def errors(run_id: int):
    run = _run_or_404(run_id)
    if _locked():
        return _upsell()
    if run.status == "draft":
        rows = services.errors_csv_rows(_check(run, False))
    else:
        rows = [["Row", "Problem"]] + [[str(r.line), r.note or ""] for r in services.rows_of(run)
                                       if r.status == "skipped" and (r.note or "").startswith("Invalid")]
    return _download(export.errors_csv(rows), f"bulk-{run.id}-errors.csv", "text/csv; charset=utf-8")


def _download(body, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.route("/bulk/<int:run_id>")
@workspace_required
def show(run_id: int):
    run = _run_or_404(run_id)
    if _locked():
        return _upsell()
    if run.status == "draft":
        return redirect(url_for("bulk.check" if run.mapping else "bulk.mapping", run_id=run.id))
    return render_template("bulk/show.html", run=run, progress=services.progress(run), form=ActionForm(),
                           can_steer=services.can_manage_all(g.membership) or run.user_id == current_user.id)


@bp.route("/bulk/<int:run_id>/progress")
@workspace_required
def progress(run_id: int):
    run = _run_or_404(run_id)
    return render_template("bulk/_progress.html", run=run, progress=services.progress(run), form=ActionForm(),
                           can_steer=services.can_manage_all(g.membership) or run.user_id == current_user.id)


@bp.route("/bulk/<int:run_id>/<any(pause, resume, cancel, retry):action>", methods=["POST"])
@workspace_required
def steer(run_id: int, action: str):
    run = _run_or_404(run_id)
    if _locked():
        return _upsell()
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        if action == "pause":
            done = services.pause(run)
            flash("Paused. Rows already being written finish." if done else "The run is not running.", "success")
        elif action == "resume":
            done = services.resume(run)
            flash("Resumed." if done else "The run is not paused.", "success")
        elif action == "cancel":
            if run.status not in ("running", "paused"):
                flash("The run has already ended.", "error")
            else:
                count = services.cancel(run)
                flash(f"Cancelled. {count} row{'s' if count != 1 else ''} not started: nothing charged for them.",
                      "success")
        else:
            count = services.retry_failed(run)
            flash(f"Retrying {count} failed row{'s' if count != 1 else ''}; only these are charged."
                  if count else "No failed rows to retry.", "success")
        db.session.commit()
    except services.BulkError as exc:
        flash(str(exc), "error")
    return redirect(url_for("bulk.show", run_id=run.id))


@bp.route("/bulk/<int:run_id>/results.<any(csv, xlsx):fmt>")
@workspace_required
def results(run_id: int, fmt: str):
    run = _run_or_404(run_id)
    if _locked():
        return _upsell()
    if run.status == "draft":
        abort(404)
    name = f"{run.filename.rsplit('.', 1)[0] or 'bulk'}-copy".replace('"', "")[:100]
    if fmt == "csv":
        return _download(export.as_csv(run), f"{name}.csv", "text/csv; charset=utf-8")
    return _download(export.as_xlsx(run), f"{name}.xlsx",
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


