"""Generate, watch the variants stream in, and work with them."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import (Blueprint, Response, abort, current_app, flash, g, make_response, redirect, render_template,
                   request, url_for)
from markupsafe import Markup
from flask_login import current_user
from redis.exceptions import RedisError

from app.auth import sessions
from app.billing.hints import more_seats_hint
from app.core import required
from app.billing.services import has_feature
from app.brand.views import voices_of
from app.catalog.rendering import PromptError, RenderBusy
from app.catalog.services import example_for, get_published
from app.extensions import db, limiter
from app.generation import services
from app.generation.forms import build_generate_form, template_fields, values_from
from app.generation.models import Generation, Variant
from app.admin.model_policy import ModelNotAllowed
from app.generation.live import StreamLease, TooManyStreams
from app.knowledge.forms import choice_from as knowledge_choice
from app.knowledge.views import options_for as knowledge_options
from app.generation.streams import EXPIRED_EVENT, RETRY_LINE, iter_sse, partial_texts
from app.outbox import services as outbox
from app.quota.services import QuotaExceeded
from app.generation import actions
from app.web import htmx_redirect, is_htmx, workspace_required
from app.workspaces.services import get_in_workspace_or_404, variant_in_workspace_or_404

bp = Blueprint("generation", __name__)

MAX_VARIANT_CHARS = 20_000
NO_SEAT_MESSAGE = ("This workspace has more members than seats on its current plan, and you are not in a seat. "
                   "Your work stays here; ask the owner to add seats to generate again.")


def _generation_or_404(generation_id: int) -> Generation:
    return get_in_workspace_or_404(Generation, generation_id, g.workspace.id)


def _variant_or_404(variant_id: int) -> Variant:
    return variant_in_workspace_or_404(variant_id, g.workspace.id)


TEMPLATE_GONE = ("This template is no longer published, so it cannot write new copy. "
                 "Your earlier results stay here; pick another template to write more.")


def _template_gone():
    """409: the template was unpublished after this generation ran."""
    page = "partials/_error.html" if is_htmx() else "errors/error.html"
    response = make_response(render_template(page, status=409, title="Template unavailable", message=TEMPLATE_GONE), 409)
    response.headers["X-Message"] = TEMPLATE_GONE
    return response


def _refusal_message(exc: QuotaExceeded | ModelNotAllowed) -> str:
    return str(exc) if isinstance(exc, ModelNotAllowed) else _quota_message(exc)


def _quota_message(exc: QuotaExceeded) -> str:
    whose = "Your workspace's shared pool has" if exc.scope == "pool" else "You have"
    # The way to more generations depends on who reads this (owner or member) and on billing being on.
    more = more_seats_hint(is_owner=g.membership.role == "owner", is_site_admin=current_user.is_site_admin)
    if g.workspace.seat_quota == 0 and g.workspace.plan == "free":
        return ("This workspace has no Free generations: the Free allowance comes with your personal "
                f"workspace only. Switch to your personal workspace, or: {more}")
    if exc.remaining == 0:
        return f"{whose} no generations left this period. It renews at the start of the next period. {more}"
    return (f"{whose} {exc.remaining} generation{'s' if exc.remaining != 1 else ''} left this period "
            f"and this needs {exc.requested}. Ask for fewer variants.")


def _prompt_message(slug: str, exc: PromptError) -> tuple[str, int]:
    """What the marketer reads when the prompts did not render: their inputs, a busy moment, or a broken template."""
    if isinstance(exc, RenderBusy):
        return "Too many templates are being prepared right now. Try again in a moment; nothing was charged.", 503
    if exc.bound is not None:
        current_app.logger.warning("template %s refused these inputs: %s", slug, exc)
        return (f"With these inputs the template goes past a limit, so nothing was generated or charged: {exc}. "
                "Try shorter or smaller inputs, or ask the template's author."), 422
    current_app.logger.error("template %s does not render: %s", slug, exc)
    return "This template is broken right now and could not be used. Nothing was charged.", 422


@bp.route("/write/<slug>", methods=["GET", "POST"])
@workspace_required
@limiter.limit("60 per minute", methods=["POST"])
def write(slug: str):
    template = get_published(slug, g.workspace.id)
    if template is None:
        abort(404)
    version = required(template.published_version, f"a published version of {slug}")  # get_published checked
    voices = voices_of(g.workspace.id) if has_feature(g.workspace, "brand_voices") else []
    form = build_generate_form(version, brand_voices=voices, knowledge=knowledge_options(g.workspace))
    status = 200
    if form.validate_on_submit():
        try:
            generation = services.start(
                workspace=g.workspace, user=current_user, template=template,
                values=values_from(form, version), tone=form.tone.data, language=form.language.data,
                variant_count=form.variant_count.data, creativity=form.creativity.data,
                brand_voice=next((v for v in voices if v.id == form.brand_voice.data), None),
                knowledge=knowledge_choice(form),
            )
            generation_id = generation.id  # read before the commit expires it: no transaction after it
            db.session.commit()
        except QuotaExceeded as exc:
            db.session.rollback()
            flash(_quota_message(exc), "error")
            status = 402
        except services.NoSeat:
            flash(NO_SEAT_MESSAGE, "error")
            status = 402
        except ModelNotAllowed as exc:
            flash(f"{exc} Nothing was charged; ask a workspace admin to update this template.", "error")
            status = 422
        except PromptError as exc:
            message, status = _prompt_message(slug, exc)
            flash(message, "error")
        else:
            return redirect(url_for("generation.show", generation_id=generation_id))
    elif form.is_submitted():
        status = 422
    example = example_for(template)
    if example and not form.is_submitted() and request.args.get("example") == "1":
        _fill_example(form, example)  # "Fill with an example" without JavaScript
    return render_template(
        "generation/write.html", template=template, version=version, form=form,
        fields=template_fields(form, version), cost=actions.cost_line(g.workspace, current_user.id, form),
        example=example,
    ), status


def _fill_example(form, example: dict[str, str]) -> None:
    """Put a built-in template's example input into its empty form."""
    for name, value in example.items():
        field = form[f"f_{name}"]
        field.data = int(value) if field.type == "IntegerField" and value.isdigit() else value


@bp.route("/generations/<int:generation_id>")
@workspace_required
def show(generation_id: int):
    generation = _generation_or_404(generation_id)
    return render_template("generation/show.html", generation=generation, **_pane_context(generation),
                           **_settings_used(generation))


def _settings_used(generation: Generation) -> dict:
    """The sidebar's brand voice (None: none was used, or it was deleted since) and creativity name."""
    from app.brand.models import BrandVoice

    voice = db.session.get(BrandVoice, generation.brand_voice_id) if generation.brand_voice_id else None
    if voice is not None and voice.workspace_id != generation.workspace_id:
        voice = None
    creativity = next((name for name, t in services.CREATIVITY.items() if t == generation.creativity),
                      f"temperature {generation.creativity:g}")
    return {"brand_voice_used": voice, "creativity_used": creativity}


def _pane_context(generation: Generation) -> dict:
    """What the result pane shows besides the row: text streamed so far, and whether the job is still
    waiting for the queue (its outbox row is undelivered, or Redis cannot be reached right now)."""
    live: list[str] = []
    waiting = False
    if not generation.is_finished:
        try:
            live = partial_texts(current_app.extensions["redis"], generation.id, generation.variant_count)
        except RedisError:
            current_app.logger.warning("generation %s: Redis unavailable for the result pane", generation.id)
            waiting = generation.status == "queued"
        waiting = waiting or (generation.status == "queued" and outbox.is_pending(services.job_id(generation.id)))
    return {"live_texts": live, "version": generation.template_version, "waiting_for_queue": waiting,
            "queue_deadline_minutes": current_app.config["GENERATION_QUEUE_DEADLINE"] // 60}


@bp.route("/generations/<int:generation_id>/variants")
@workspace_required
def variants(generation_id: int):
    """The result pane alone: polled while running, fetched when the stream ends."""
    generation = _generation_or_404(generation_id)
    return render_template("generation/_results.html", generation=generation,
                           polling=request.args.get("polling") == "1", oob=True,
                           **_pane_context(generation))


@bp.route("/generations/<int:generation_id>/stream")
@workspace_required
def stream(generation_id: int):
    """Server-Sent Events from the generation's Redis Stream, resumable by Last-Event-ID.

    One `batch` event per XREAD (streams.SSE_FORMAT). A stream takes a lease (live.py):
    too many open for this user, generation or process is a 429 and the page polls instead.
    """
    generation = _generation_or_404(generation_id)
    last_id = request.headers.get("Last-Event-ID") or request.args.get("last_id") or "0-0"
    try:
        return sse_response(generation, last_id=last_id, lease_owner=str(current_user.id),
                            still_allowed=_session_checker(current_app._get_current_object(),  # type: ignore[attr-defined]
                                                           current_user.get_id()))
    except TooManyStreams as exc:
        return Response(_too_many_message(exc), status=429, mimetype="text/plain", headers={"Retry-After": "10"})


def sse_response(generation: Generation, *, last_id: str, lease_owner: str, still_allowed) -> Response:
    """The live stream of a generation the caller may see (the browser's, and /api/v1's).

    `lease_owner` keys the per-user stream bound ("12" for a user, "key:3" for an API key);
    `still_allowed()` is re-asked every STREAM_RECHECK_SECONDS. Raises TooManyStreams.
    """
    redis = current_app.extensions["redis"]
    config = current_app.config
    if not _valid_stream_id(last_id):
        last_id = "0-0"
    if generation.is_finished and not redis.exists(f"gen:{generation.id}"):
        db.session.remove()
        return _sse(iter([RETRY_LINE, EXPIRED_EVENT]))
    try:
        lease = StreamLease.acquire(
            redis, user_key=lease_owner, generation_id=generation.id,
            per_user=config["STREAM_MAX_PER_USER"], per_generation=config["STREAM_MAX_PER_GENERATION"],
            per_process=config["STREAM_MAX_PER_PROCESS"], lease_seconds=config["STREAM_LEASE_SECONDS"])
    except TooManyStreams:
        db.session.remove()
        raise
    check_every = config["STREAM_RECHECK_SECONDS"]
    block_ms = min(config["SSE_BLOCK_MS"], int(check_every * 1000))
    max_idle = max(2, (config["JOB_TIMEOUT"] * 1000) // block_ms + 2)
    body = iter_sse(redis, generation.id, last_id, block_ms, max_idle, check_every=check_every,
                    still_allowed=still_allowed, lease=lease)
    # The body runs after the request's DB session is closed: it touches Redis, and the
    # database only for the periodic re-check, in an app context of its own.
    db.session.remove()
    response = _sse(body)
    response.call_on_close(lease.release)  # also when the body never started
    return response


def _sse(body) -> Response:
    return Response(body, mimetype="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
    })


def _too_many_message(exc: TooManyStreams) -> str:
    if exc.scope == "process":
        return "The server is holding as many live streams as it can. This page will update every few seconds instead."
    whose = "your account" if exc.scope == "user" else "this generation"
    return (f"Too many live streams are open for {whose} (at most {exc.limit}). Close other tabs showing "
            "generations; this page will update every few seconds instead.")


def _session_checker(app, login_id: str | None):
    """is the stream's user still signed in and allowed? (re-asked while the stream is open)

    The same rule as the user loader (app.auth.sessions): a live login row of a user who is
    not suspended, so whatever ends a session at the next request ends the stream too.
    """
    def still_allowed() -> bool:
        with app.app_context():
            return login_id is not None and sessions.still_valid(login_id)
    return still_allowed


@bp.after_request
def _stream_cors(response):
    """Let pages on another port of the same host open live streams (the make run stream server).

    Browsers send a host's cookies to every port of it (RFC 6265 8.5), so a page there is already
    inside the session cookie's reach; any other origin gets no CORS headers.
    """
    origin = request.headers.get("Origin")
    same_host = origin and urlsplit(origin).hostname == urlsplit("//" + request.host).hostname
    if request.endpoint == "generation.stream" and same_host:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Headers"] = "Last-Event-ID, Cache-Control"
        response.headers.add("Vary", "Origin")
    return response


def _valid_stream_id(value: str) -> bool:
    head, _, tail = value.partition("-")
    return head.isdigit() and (tail == "" or tail.isdigit()) and len(value) < 40


@bp.route("/generations/<int:generation_id>/regenerate", methods=["POST"])
@workspace_required
@limiter.limit("60 per minute")
def regenerate(generation_id: int):
    generation = _generation_or_404(generation_id)
    return _start_again(lambda: services.rerun(generation, current_user, g.workspace), generation)


def _start_again(start, source: Generation):
    """Regenerate or "more like this": go to the new generation, or back to `source` with why not."""
    try:
        new_id = start().id  # read before the commit expires it: no transaction after it
        db.session.commit()
    except services.TemplateUnavailable:
        return _template_gone()
    except services.NoSeat:
        flash(NO_SEAT_MESSAGE, "error")
    except (QuotaExceeded, ModelNotAllowed) as exc:
        db.session.rollback()
        flash(_refusal_message(exc), "error")
    except PromptError as exc:
        flash(_prompt_message(source.template.slug, exc)[0], "error")
    else:
        return htmx_redirect(url_for("generation.show", generation_id=new_id))
    return htmx_redirect(url_for("generation.show", generation_id=source.id))


def _card(variant: Variant, status: int = 200):
    return render_template("generation/_variant.html", variant=variant,
                           version=variant.generation.template_version), status


@bp.route("/variants/<int:variant_id>")
@workspace_required
def variant(variant_id: int):
    return _card(_variant_or_404(variant_id))


@bp.route("/variants/<int:variant_id>/favourite", methods=["POST"])
@workspace_required
def favourite(variant_id: int):
    variant = _variant_or_404(variant_id)
    variant.is_favourite = not variant.is_favourite
    db.session.commit()
    return _card(variant)


@bp.route("/variants/<int:variant_id>/rate", methods=["POST"])
@workspace_required
def rate(variant_id: int):
    variant = _variant_or_404(variant_id)
    value = {"up": 1, "down": -1, "none": 0}.get(request.form.get("value", ""))
    if value is None:
        return render_template("partials/_error.html", title="Unknown rating",
                               message="Rate with thumbs up or down."), 422
    variant.rating = 0 if variant.rating == value else value
    db.session.commit()
    return _card(variant)


@bp.route("/variants/<int:variant_id>/edit", methods=["GET", "POST"])
@workspace_required
def edit(variant_id: int):
    variant = _variant_or_404(variant_id)
    version = variant.generation.template_version
    error = None
    if request.method == "POST":
        text = (request.form.get("text") or "").strip()
        if not text:
            error = "The copy cannot be empty. Delete the variant instead if you do not want it."
        elif len(text) > MAX_VARIANT_CHARS:
            error = f"The copy can be at most {MAX_VARIANT_CHARS} characters."
        else:
            services.edit_variant(variant, text)
            db.session.commit()
            return _card(variant)
        return render_template("generation/_variant_edit.html", variant=variant, version=version,
                               text=text, error=error), 422
    return render_template("generation/_variant_edit.html", variant=variant, version=version,
                           text=variant.text, error=None)


@bp.route("/variants/<int:variant_id>/delete", methods=["POST"])
@workspace_required
def delete(variant_id: int):
    variant = _variant_or_404(variant_id)
    generation_id = variant.generation_id
    left = services.delete_variant(variant)
    db.session.commit()
    if is_htmx():
        # The last one gone: say so in its place instead of leaving an empty column until a reload.
        if not left:
            return '<p class="empty" data-testid="all-deleted">All variants of this generation were deleted.</p>'
        return ""
    flash("Variant deleted.", "info")
    return redirect(url_for("generation.show", generation_id=generation_id))


@bp.route("/variants/<int:variant_id>/more", methods=["POST"])
@workspace_required
@limiter.limit("60 per minute")
def more(variant_id: int):
    variant = _variant_or_404(variant_id)
    return _start_again(lambda: services.more_like(variant, current_user, g.workspace), variant.generation)


@bp.route("/variants/<int:variant_id>/refund", methods=["POST"])
@workspace_required
@limiter.limit("60 per minute")
def refund(variant_id: int):
    """"Not usable: refund": one flagged variant back into the allowance, once; kept in history, marked."""
    variant = _variant_or_404(variant_id)
    try:
        actions.refund(variant, current_user.id)
        db.session.commit()
    except actions.NotRefundable:
        message = "Only a variant flagged as not usable (cut off, or over its limit), unedited, can be refunded, once."
        return render_template("partials/_error.html", title="Not refundable", message=message), 422
    return render_template("generation/_variant.html", variant=variant, version=variant.generation.template_version,
                           oob_quota=True)


@bp.route("/variants/<int:variant_id>/items/<int:index>/favourite", methods=["POST"])
@workspace_required
def favourite_item(variant_id: int, index: int):
    """Star or unstar one item of a list variant (a list with a starred item counts as a favourite)."""
    variant = _variant_or_404(variant_id)
    if not actions.toggle_item_favourite(variant, index):
        return render_template("partials/_error.html", title="No such line",
                               message="Only the lines of a list can be starred; reload the page to see the list."), 422
    db.session.commit()
    return _card(variant)


@bp.route("/generations/<int:generation_id>/stop", methods=["POST"])
@workspace_required
def stop(generation_id: int):
    """Stop: end the variants still being written (refunded); finished ones are kept and charged."""
    generation = _generation_or_404(generation_id)
    try:
        actions.stop(generation)
    except actions.StopUnavailable:
        message = "Stop is not available right now; the generation goes on and is charged only for what it writes."
        response = make_response(render_template("partials/_error.html", title="Stop unavailable", message=message), 503)
        response.headers["X-Message"] = message
        return response
    if is_htmx():
        return "", 204
    return redirect(url_for("generation.show", generation_id=generation.id))


@bp.app_template_global("copy_html")
def copy_html(text: str, version) -> "Markup | None":
    """Sanitised HTML for a long single block written in Markdown; None: show it as plain text."""
    from app.generation.markup import has_markdown, render_markdown
    from app.generation.rules import is_plain

    if is_plain(version.format, version.max_chars) or not has_markdown(text):
        return None
    return render_markdown(text)


@bp.app_context_processor
def _local_model_values() -> dict:
    """The local model's preparation for the banner and queued generations (lazy: read only when shown)."""
    from app.generation import local_model

    config = current_app.config
    return {"local_model_status": local_model.status,
            "model_connected": bool(config.get("OPENAI_API_KEY") or config.get("OPENAI_BASE_URL"))}
