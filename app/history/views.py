"""History: every generation of the workspace, newest first, searchable.

Browsing pages by cursor (app/history/search.py), searching ranks the matches of a full-text
index; either way the list loads only the columns it shows.
"""
from flask import Blueprint, abort, current_app, g, render_template, request
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import load_only, selectinload

from app.bounds import page_arg, whole_number
from app.bulk import services as bulk_services
from app.catalog.models import Template
from app.extensions import db
from app.generation.models import Generation, Variant
from app.history import search
from app.web import is_htmx, workspace_required

bp = Blueprint("history", __name__)

# What a history row shows: the generation's header and inputs, two variants' text, the template's name.
LIST_COLUMNS = (Generation.id, Generation.created_at, Generation.status, Generation.template_id, Generation.inputs,
                Generation.bulk_row_id)
VARIANT_COLUMNS = (Variant.id, Variant.generation_id, Variant.position, Variant.text, Variant.is_favourite,
                   Variant.refunded_at)


def _rows(ids: list[int]) -> list[Generation]:
    """The generations of one page, in the order given, with only the columns the list shows."""
    if not ids:
        return []
    found = {gen.id: gen for gen in db.session.scalars(
        select(Generation).where(Generation.id.in_(ids)).options(
            load_only(*LIST_COLUMNS),
            selectinload(Generation.variants).load_only(*VARIANT_COLUMNS),
            selectinload(Generation.template).load_only(Template.id, Template.name, Template.icon, Template.slug),
        ))}
    return [found[i] for i in ids if i in found]


def _used_templates(workspace_id: int) -> list[Template]:
    """Templates the workspace has used, for the filter: one index probe per template
    (workspace_id, template_id, created_at), not a scan of the whole history."""
    used = exists().where(Generation.workspace_id == workspace_id, Generation.template_id == Template.id)
    return list(db.session.scalars(select(Template).where(used).order_by(Template.name)
                                   .options(load_only(Template.id, Template.slug, Template.name))))


def bulk_run_arg() -> int | None:
    """?run=<id>: only that bulk run's generations (the query stays scoped to the workspace)."""
    try:
        return whole_number(request.args["run"]) if request.args.get("run") else None
    except ValueError:
        return None


@bp.route("/history")
@workspace_required
def index():
    query = request.args.get("q", "")[:200]
    template_slug = request.args.get("template", "")[:80]
    favourites = request.args.get("favourites") == "1"
    per_page = current_app.config["HISTORY_PAGE_SIZE"]
    parsed = search.parse(query)
    run_id = bulk_run_arg()

    stmt = select(Generation.id).where(Generation.workspace_id == g.workspace.id)
    if template_slug:
        stmt = stmt.join(Template, Template.id == Generation.template_id).where(Template.slug == template_slug)
    if favourites:
        stmt = stmt.where(exists().where(and_(Variant.generation_id == Generation.id, Variant.is_favourite.is_(True))))
    if run_id:
        stmt = bulk_services.only_run(stmt, run_id)

    page = dict(after=None, before=None, older=False, newer=False, number=None, total=None, ranked=None)
    if parsed:
        # Ranked results are a bounded window: pages are numbered within it.
        number = min(page_arg(), search.SEARCH_WINDOW // per_page + 1)
        ids, ranked = search.ranked_matches(stmt, parsed, (number - 1) * per_page, per_page)
        page.update(number=number, ranked=ranked, older=min(ranked, search.SEARCH_WINDOW) > number * per_page,
                    newer=number > 1)
    else:
        try:
            after = search.decode_cursor(request.args.get("after"))
            before = search.decode_cursor(request.args.get("before"))
        except search.BadCursor:
            abort(404)
        ids, page["older"], page["newer"] = search.keyset_page(stmt, after, before, per_page)
        if after is None and before is None:
            page["total"] = search.capped_count(stmt)
    items = _rows(ids)
    if items:
        page["after"] = search.encode_cursor(items[-1].created_at, items[-1].id)
        page["before"] = search.encode_cursor(items[0].created_at, items[0].id)
    context = dict(items=items, page=page, query=query, words=parsed.all_words, template_slug=template_slug,
                   favourites=favourites, used_templates=_used_templates(g.workspace.id),
                   count_cap=search.COUNT_CAP, window=search.SEARCH_WINDOW,
                   run_id=run_id, bulk_runs=bulk_services.runs_of(items))
    if is_htmx():
        return render_template("history/_list.html", **context)
    return render_template("history/index.html", **context)


@bp.app_template_filter("highlight")
def highlight_filter(value, words):
    """{{ text|highlight(words) }}: escaped text with the searched words marked."""
    return search.highlight(value, words)
