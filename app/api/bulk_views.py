"""/api/v1/bulk-runs: start a bulk run from JSON rows or an uploaded CSV/XLSX, follow its progress, download
its results.

Thin, like the rest of the API: rows go through app/bulk/services.py (`start_from_rows`, `start_from_upload`:
the same sheet reading, mapping, row checks, quota check and start as the browser's upload), results
through app/bulk/export.py. The upload is its own operation, `POST /bulk-runs/upload` (multipart/form-data),
rather than a second content type of `POST /bulk-runs`: one request body per operation documents cleanly,
and it keeps the upload's 16 MB body limit off the JSON create (64 KB).
Scope `bulk`, and the workspace's plan must have bulk runs (Business), as in the browser. Owners and
admins see every run of the workspace, members (the key's charged member) their own; any other run is 404.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, g, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.api import auth, schemas
from app.api.idempotency import Guard
from app.api.problems import Problem
from app.api.views import COMMON, _aware, bp, problems, template_for_create
from app.bulk import export, parsing
from app.bulk import services as bulk
from app.bulk.models import BulkRun
from app.catalog.models import Template
from app.core import required
from app.extensions import db
from app.quota import services as quota
from app.workspaces.models import Membership


def _require_plan() -> None:
    try:
        bulk.require_feature(g.api_workspace)
    except bulk.NotAllowed as exc:
        raise Problem("plan-required", f"{exc} An owner can upgrade in Billing.") from exc


def run_doc(run: BulkRun) -> dict:
    progress = bulk.progress(run)
    return {
        "id": run.id, "status": run.status, "template": run.template.slug, "total_rows": run.total_rows,
        "counts": {"done": progress.counts.get("done", 0), "failed": progress.counts.get("failed", 0),
                   "skipped": progress.counts.get("skipped", 0), "remaining": progress.remaining},
        "message": run.message, "created_at": _aware(run.created_at), "started_at": _aware(run.started_at),
        "finished_at": _aware(run.finished_at),
        "links": {"self_": url_for("api_v1.bulk_runs_get", run_id=run.id, _external=True),
                  "results_csv": url_for("api_v1.bulk_runs_results_csv", run_id=run.id, _external=True),
                  "results_xlsx": url_for("api_v1.bulk_runs_results_xlsx", run_id=run.id, _external=True),
                  "web": url_for("bulk.show", run_id=run.id, _external=True)},
    }


def _run_or_404(run_id: int) -> BulkRun:
    """A started run of this workspace that the key's member may see (bulk.may_see), else 404."""
    run = db.session.scalar(select(BulkRun).where(BulkRun.id == run_id, BulkRun.workspace_id == g.api_workspace.id,
                                                  BulkRun.status != "draft"))
    membership = db.session.scalar(select(Membership).where(Membership.workspace_id == g.api_workspace.id,
                                                            Membership.user_id == g.api_user.id))
    if run is None or membership is None or not bulk.may_see(run, membership):
        raise Problem("not-found", f"No bulk run {run_id} in this workspace.")
    return run


def _start(slug: str, start: Callable[[Template, Callable[[BulkRun], None]], BulkRun]):
    """The creates' common path: the plan, the Idempotency-Key's replay, the template (404), then
    `start(template, on_record)` (a bulk service's start), answered 202 with the run document; the service's
    refusals become problems, each after a rollback, so nothing is left behind."""
    _require_plan()
    guard = Guard(g.api_key)
    replayed = guard.replay()
    if replayed is not None:
        return replayed
    template = template_for_create(slug)
    created: dict[str, str] = {}

    def record(run: BulkRun) -> None:
        created["location"] = url_for("api_v1.bulk_runs_get", run_id=run.id, _external=True)
        guard.claim(None, None, created["location"])

    try:
        run = start(template, record)
        db.session.commit()  # the view owns the transaction: the services flush
    except (bulk.RowsInvalid, bulk.MappingInvalid) as exc:
        db.session.rollback()
        raise Problem("validation-failed", str(exc), errors=exc.errors) from exc
    except bulk.QuotaShort as exc:
        db.session.rollback()
        period = quota.quota_period(g.api_workspace)
        raise Problem("quota-exhausted", f"{exc} The quota renews on {period.end.isoformat()}.",
                      remaining=quota.remaining(g.api_workspace, g.api_user.id).remaining,
                      renews_at=period.end.isoformat()) from exc
    except (bulk.BulkError, parsing.SheetError) as exc:
        db.session.rollback()
        raise Problem("bulk-refused", f"{exc}") from exc
    except IntegrityError:
        return guard.after_conflict()
    run = required(db.session.get(BulkRun, run.id), f"bulk run {run.id}")
    document = schemas.BulkRunSchema().dumps(run_doc(run))
    guard.store(202, document, created["location"])
    db.session.commit()
    return current_app.response_class(document, status=202, mimetype="application/json",
                                      headers={"Location": created["location"]})


@bp.route("/bulk-runs", methods=["POST"])
@auth.scope("bulk")
@bp.arguments(schemas.BulkRunCreateSchema)
@bp.response(202, schemas.BulkRunSchema, description="Started; rows are written by the bulk queue")
@problems(*COMMON, 400, 402, 404, 409, 413, 415, 422)
def bulk_runs_create(body: dict):
    """Start a bulk run from JSON rows: every row checked first (a bad row refuses the run, naming its
    fields), the quota checked, charged per row as it runs. Honours `Idempotency-Key`."""
    return _start(body["template"], lambda template, record: bulk.start_from_rows(
        g.api_workspace, g.api_user, template, body["rows"], only_fitting=body["only_fitting"],
        redo_done=body["redo_done"], on_record=record))


@bp.route("/bulk-runs/upload", methods=["POST"])
@auth.scope("bulk")
@bp.arguments(schemas.BulkRunUploadSchema, location="form_and_files")
@bp.response(202, schemas.BulkRunSchema, description="Started; rows are written by the bulk queue")
@problems(*COMMON, 400, 402, 404, 409, 413, 415, 422)
def bulk_runs_upload(body: dict):
    """Start a bulk run from an uploaded CSV or XLSX file (multipart/form-data).

    As the browser's upload, mapping and check screens: the encoding, separator and header row are detected
    (`options` corrects them); columns are matched to the template's fields by name or by the workspace's
    saved mapping (`mapping` sets any of them, and is remembered like the browser's); every row is checked
    first, and one bad row refuses the run (`row <n>.<field>`, n the spreadsheet's row number); the quota is
    checked, and charged per row as it runs. 413: a file over 10 MB; 415: not a CSV or .xlsx we can read;
    422: a file, mapping or row refused. Honours `Idempotency-Key` (the file's bytes and every field count)."""
    def start(template: Template, record: Callable[[BulkRun], None]) -> BulkRun:
        upload = body["file"]
        with upload.stream as stream:  # a large upload is a temporary file: let it go now
            data = stream.read(parsing.MAX_BYTES + 1)
        if len(data) > parsing.MAX_BYTES:
            raise Problem("body-too-large", f"The file is over {parsing.MAX_BYTES // 1024 // 1024} MB, the limit "
                          "for a bulk run. Split it into smaller files; nothing was written.")
        try:
            parsing.sniff_kind(data)
        except parsing.SheetError as exc:
            raise Problem("unreadable-file", f"{exc} Nothing was written.") from exc
        return bulk.start_from_upload(g.api_workspace, g.api_user, template, upload.filename or "", data,
                                      options=body.get("options"), mapping=body.get("mapping"),
                                      only_fitting=body["only_fitting"], redo_done=body["redo_done"],
                                      on_record=record)

    return _start(body["template"], start)


@bp.route("/bulk-runs/<int:run_id>")
@auth.scope("bulk")
@bp.response(200, schemas.BulkRunSchema)
@problems(*COMMON, 404)
def bulk_runs_get(run_id: int):
    """A bulk run's progress: rows done, failed, skipped and remaining, and its status."""
    _require_plan()
    return run_doc(_run_or_404(run_id))


def _download(body, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.route("/bulk-runs/<int:run_id>/results.csv")
@auth.scope("bulk")
@bp.response(200, content_type="text/csv", description="The rows with their status and variants (UTF-8, BOM)")
@problems(*COMMON, 404)
def bulk_runs_results_csv(run_id: int):
    """The run's results as CSV (what is written so far; formula-safe)."""
    _require_plan()
    run = _run_or_404(run_id)
    return _download(export.as_csv(run), f"bulk-{run.id}-copy.csv", "text/csv")


@bp.route("/bulk-runs/<int:run_id>/results.xlsx")
@auth.scope("bulk")
@bp.response(200, content_type=XLSX, description="The rows with their status and variants")
@problems(*COMMON, 404)
def bulk_runs_results_xlsx(run_id: int):
    """The run's results as XLSX (what is written so far; every text cell a string)."""
    _require_plan()
    run = _run_or_404(run_id)
    return _download(export.as_xlsx(run), f"bulk-{run.id}-copy.xlsx", XLSX)
