"""Download a result, or the results ticked in History, as CSV, DOCX or Markdown."""
from __future__ import annotations

from flask import Blueprint, Response, flash, g, redirect, request, url_for

from app.exports import services
from app.generation.models import Generation
from app.web import workspace_required
from app.workspaces.services import get_in_workspace_or_404

bp = Blueprint("exports", __name__)


def _download(body: bytes, content_type: str, filename: str) -> Response:
    response = Response(body, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/generations/<int:generation_id>/export.<fmt>")
@workspace_required
def generation(generation_id: int, fmt: str):
    gen = get_in_workspace_or_404(Generation, generation_id, g.workspace.id)
    try:
        body, content_type, ext = services.build(fmt, [gen])
    except services.ExportError as exc:
        flash(str(exc), "error")
        return redirect(url_for("generation.show", generation_id=generation_id))
    return _download(body, content_type, f"copydeck-{gen.template.slug}-{gen.id}.{ext}")


@bp.route("/history/export")
@workspace_required
def history():
    fmt = request.args.get("format", "")
    ids = [int(i) for i in request.args.getlist("ids")[:services.MAX_SELECTION + 1] if i.isdigit() and len(i) < 12]
    try:
        generations = services.generations_for_export(g.workspace.id, ids)
        if not generations:
            raise services.ExportError("None of the selected results are in this workspace.")
        body, content_type, ext = services.build(fmt, generations)
    except services.ExportError as exc:
        flash(str(exc), "error")
        return redirect(url_for("history.index"))
    return _download(body, content_type, f"copydeck-history-{len(generations)}.{ext}")
