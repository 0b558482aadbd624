"""/api/v1: templates, generations (create, wait, get, list, stream), variants, usage.

Views are thin: they call the services the browser uses (generation.services.start, the
generate form's field rules, quota, the live-stream response) and turn typed errors into
problem+json. Bulk runs and webhook endpoints are added as more modules that register on
`bp` (see app/api/setup.py), with `auth.scope("bulk")` / `auth.scope("webhooks")`.
"""
from __future__ import annotations

from typing import Any

import base64
import binascii
import time
from datetime import date, datetime, timezone

from flask import current_app, g, request, url_for
from flask_smorest import Blueprint
from sqlalchemy import and_, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict, MultiDict

from app.admin.model_policy import ModelNotAllowed
from app.api import auth, schemas
from app.api.idempotency import Guard
from app.api.models import ApiGeneration
from app.api.problems import Problem
from app.billing.services import has_feature
from app.brand.models import BrandVoice
from app.catalog.models import Template
from app.catalog.rendering import PromptError, RenderBusy
from app.catalog.services import get_published, list_templates
from app.core import required
from app.extensions import db
from app.generation import services, streams
from app.generation.forms import build_generate_form
from app.generation.live import TooManyStreams
from app.generation.models import Generation, Variant
from app.quota import services as quota

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1",
               description="Copydeck's public API. Authenticate with `Authorization: Bearer <key>`.")


class _Parser(FlaskParser):
    """webargs' parser plus `form_and_files`: a multipart body's text fields and files as one location, so one
    schema validates an upload with its form fields and documents them as one multipart/form-data body
    (flask-smorest documents one request body per operation: a `form` and a `files` argument would not)."""

    __location_map__ = {**FlaskParser.__location_map__, "form_and_files": "load_form_and_files"}

    def load_form_and_files(self, req, schema):
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)


bp.ARGUMENTS_PARSER = _Parser()
bp.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {**bp.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
                                            "form_and_files": "multipart/form-data"}

PROBLEM = {"schema": schemas.ProblemSchema, "content_type": "application/problem+json"}


def problems(*codes: int):
    """Document these problem+json statuses on an operation."""
    def decorator(view):
        for code in codes:
            view = bp.alt_response(code, **PROBLEM)(view)
        return view
    return decorator


COMMON = (401, 403, 429)


# ---------------------------------------------------------------- templates

def _template_doc(template: Template) -> dict:
    version = required(template.published_version, f"published version of {template.slug}")
    specs = []
    for spec in version.fields:
        item = {k: spec.get(k) for k in ("name", "label", "type")}
        item["required"] = bool(spec.get("required", False))
        if spec["type"] in ("text", "textarea"):
            item["max_length"] = spec.get("max_length", 200)
        if spec["type"] == "select":
            item["options"] = list(spec["options"])
        if spec["type"] == "number":
            item["min"], item["max"] = spec.get("min", 0), spec.get("max", 1000)
        for optional in ("placeholder", "help"):
            if spec.get(optional):
                item[optional] = spec[optional]
        specs.append(item)
    return {"slug": template.slug, "name": template.name, "category": template.category,
            "description": template.description or "", "scope": "site" if template.workspace_id is None else "workspace",
            "version": version.number, "fields_": specs,
            "output": {"variants": version.default_variants, "max_chars": version.max_chars, "format": version.format}}


@bp.route("/templates")
@auth.scope("read")
@bp.response(200, schemas.TemplateListSchema)
@problems(*COMMON)
def templates_list():
    """List the templates this workspace can use (published site templates and its own)."""
    return {"data": [_template_doc(t) for t in list_templates(workspace_id=g.api_workspace.id)]}


@bp.route("/templates/<string:slug>")
@auth.scope("read")
@bp.response(200, schemas.TemplateSchema)
@problems(*COMMON, 404)
def templates_get(slug: str):
    """One template: its typed field schema and output rules."""
    template = get_published(slug[:80], g.api_workspace.id)
    if template is None:
        raise Problem("not-found", f"No published template {slug[:80]!r} in this workspace.")
    return _template_doc(template)


# ---------------------------------------------------------------- generations

_CREATIVITY_NAMES = {v: k for k, v in services.CREATIVITY.items()}


def generation_doc(generation: Generation) -> dict:
    variants = [{
        "id": v.id, "position": v.position, "text": v.text, "char_count": v.char_count,
        "over_limit": v.over_limit, "cut_off": v.cut_off, "repaired": v.repaired, "favourite": v.is_favourite,
        "rating": v.rating, "edited": v.edited_at is not None, "original_text": v.original_text,
    } for v in generation.variants]
    return {
        "id": generation.id, "status": generation.status, "template": generation.template.slug,
        "template_version": generation.template_version.number, "inputs": generation.inputs,
        "tone": generation.tone, "language": generation.language,
        "creativity": _CREATIVITY_NAMES.get(generation.creativity, services._creativity_name(generation.creativity)),
        "variant_count": generation.variant_count, "model": generation.model, "error": generation.error_message,
        "created_at": _aware(generation.created_at), "started_at": _aware(generation.started_at),
        "finished_at": _aware(generation.finished_at),
        "usage": {"prompt_tokens": generation.prompt_tokens or 0, "completion_tokens": generation.completion_tokens or 0,
                  "total_tokens": (generation.prompt_tokens or 0) + (generation.completion_tokens or 0)},
        "variants": variants,
        "links": {"self_": url_for("api_v1.generations_get", generation_id=generation.id, _external=True),
                  "stream": url_for("api_v1.generations_stream", generation_id=generation.id, _external=True),
                  "web": url_for("generation.show", generation_id=generation.id, _external=True)},
    }


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def _generation_or_404(generation_id: int) -> Generation:
    generation = db.session.scalar(select(Generation).where(Generation.id == generation_id,
                                                            Generation.workspace_id == g.api_workspace.id))
    if generation is None:
        raise Problem("not-found", f"No generation {generation_id} in this workspace.")
    return generation


def _variant_or_404(variant_id: int) -> Variant:
    variant = db.session.scalar(select(Variant).join(Generation, Generation.id == Variant.generation_id).where(
        Variant.id == variant_id, Generation.workspace_id == g.api_workspace.id))
    if variant is None:
        raise Problem("not-found", f"No variant {variant_id} in this workspace.")
    return variant


def _form_values(raw: dict) -> MultiDict:
    """The JSON `fields` as the generate form's input, refusing values that are not text or whole numbers."""
    errors: dict[str, list[str]] = {}
    data: MultiDict = MultiDict()
    for name, value in raw.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            errors[f"fields.{name}"] = ["Must be a string or an integer."]
        else:
            data[f"f_{name}"] = str(value)
    if errors:
        raise Problem("validation-failed", "Some fields have the wrong type.", errors=errors)
    return data


def _validated_fields(version, raw: dict, variants: int, tone: str, language: str, creativity: str) -> dict:
    """The field values checked by the browser's own generate form (required, lengths, options, ranges)."""
    known = {spec["name"] for spec in version.fields}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise Problem("validation-failed", f"Unknown field(s) for this template: {', '.join(unknown)}.",
                      errors={f"fields.{name}": ["Unknown field."] for name in unknown})
    formdata = _form_values(raw)
    formdata.update({"variant_count": str(variants), "tone": tone, "language": language,
                     "creativity": creativity, "brand_voice": "0"})
    form = build_generate_form(version, formdata=formdata, meta={"csrf": False})
    if not form.validate():
        names = {f"f_{spec['name']}": f"fields.{spec['name']}" for spec in version.fields}
        names["variant_count"] = "variants"
        errors = {names.get(name, name): [str(m) for m in messages] for name, messages in form.errors.items()}
        raise Problem("validation-failed", "Some fields are missing or out of bounds.", errors=errors)
    return {spec["name"]: ("" if form[f"f_{spec['name']}"].data is None else form[f"f_{spec['name']}"].data)
            for spec in version.fields}


def _quota_problem(exc: quota.QuotaExceeded) -> Problem:
    period = quota.quota_period(g.api_workspace)
    whose = "The workspace's shared pool has" if exc.scope == "pool" else "The key's member has"
    return Problem("quota-exhausted", f"{whose} {exc.remaining} generation(s) left this period and this needs "
                   f"{exc.requested}. It renews on {period.end.isoformat()}; nothing was charged.",
                   remaining=exc.remaining, requested=exc.requested, renews_at=period.end.isoformat())


def _wait_for_end(generation_id: int, seconds: int) -> None:
    """Block on the generation's stream until done/failed or the deadline (the session is released first)."""
    db.session.remove()
    redis = current_app.extensions["redis"]
    deadline = time.monotonic() + seconds
    last_id = "0-0"
    while (left := deadline - time.monotonic()) > 0:
        entries = streams.read_batch(redis, generation_id, last_id, max(1, int(min(left, 5) * 1000)))
        if entries:
            last_id = entries[-1][0]
            if streams.is_final(entries):
                return
        elif db.session.scalar(select(Generation.status).where(Generation.id == generation_id)) in ("succeeded", "failed"):
            db.session.remove()
            return
        db.session.remove()


def template_for_create(slug: str) -> Template:
    """The published template a create names, or a 404 problem naming the `template` field."""
    template = get_published(slug, g.api_workspace.id)
    if template is None:
        raise Problem("not-found", f"No published template {slug!r} in this workspace.",
                      errors={"template": ["Unknown template."]})
    return template


@bp.route("/generations", methods=["POST"])
@auth.scope("generate")
@bp.arguments(schemas.GenerationCreateSchema)
@bp.arguments(schemas.WaitQuerySchema, location="query", as_kwargs=True)
@bp.response(202, schemas.GenerationSchema, description="Queued (or still running after `wait`)")
@bp.alt_response(200, schema=schemas.GenerationSchema, description="Finished within `wait`", success=True)
@problems(*COMMON, 400, 402, 404, 409, 413, 415, 422, 503)
def generations_create(body: dict, wait: int = 0):
    """Write copy: start a generation. Charged like the browser's; honours `Idempotency-Key`."""
    guard = Guard(g.api_key)
    replayed = guard.replay()
    if replayed is not None:
        return replayed
    template = template_for_create(body["template"])
    version = required(template.published_version, f"published version of {template.slug}")
    variants = body["variants"] or version.default_variants
    values = _validated_fields(version, body["fields_"], variants, body["tone"], body["language"], body["creativity"])
    voice = None
    if body["brand_voice_id"] is not None:
        voice = db.session.scalar(select(BrandVoice).where(BrandVoice.id == body["brand_voice_id"],
                                                           BrandVoice.workspace_id == g.api_workspace.id))
        if voice is None or not has_feature(g.api_workspace, "brand_voices"):
            raise Problem("validation-failed", "Unknown brand voice for this workspace.",
                          errors={"brand_voice_id": ["Unknown brand voice."]})
    key_id = g.api_key.id
    created: dict[str, Any] = {}

    def record(generation: Generation) -> None:
        """Inside start()'s transaction: link the key, and build the 202 response and its idempotency
        record now, so nothing needs the database after the commit (on SQLite a POST's every
        transaction waits for the write lock, which the job is taking at that moment)."""
        db.session.add(ApiGeneration(generation_id=generation.id, api_key_id=key_id))
        created["id"] = generation.id
        created["location"] = url_for("api_v1.generations_get", generation_id=generation.id, _external=True)
        created["document"] = schemas.GenerationSchema().dumps(generation_doc(generation))
        guard.claim(202, created["document"], created["location"])

    try:
        generation = services.start(
            workspace=g.api_workspace, user=g.api_user, template=template, values=values, tone=body["tone"],
            language=body["language"], variant_count=variants, creativity=body["creativity"], brand_voice=voice,
            on_record=record)
        generation_id = generation.id  # read before the commit expires it: no transaction after it
        db.session.commit()
    except quota.QuotaExceeded as exc:
        db.session.rollback()
        raise _quota_problem(exc) from exc
    except services.NoSeat as exc:
        raise Problem("no-seat", "The member this key charges has no seat on the workspace's plan. "
                      "An owner can add seats; nothing was charged.") from exc
    except ModelNotAllowed as exc:
        raise Problem("template-refused", f"{exc} Nothing was charged.") from exc
    except RenderBusy as exc:
        raise Problem("busy", "Too many templates are being prepared right now; retry in a moment. "
                      "Nothing was charged.", headers={"Retry-After": "2"}) from exc
    except PromptError as exc:
        detail = (f"With these inputs the template goes past a limit: {exc}. Nothing was charged."
                  if exc.bound is not None else "This template does not render right now. Nothing was charged.")
        raise Problem("template-refused", detail) from exc
    except IntegrityError:
        return guard.after_conflict()
    location, document = created["location"], created["document"]
    status = 202
    if wait:
        _wait_for_end(generation_id, wait)
        finished = required(db.session.get(Generation, generation_id), f"generation {generation_id}")
        document = schemas.GenerationSchema().dumps(generation_doc(finished))
        status = 200 if finished.is_finished else 202
    return current_app.response_class(document, status=status, mimetype="application/json",
                                      headers={"Location": location})


@bp.route("/generations/<int:generation_id>")
@auth.scope("read")
@bp.response(200, schemas.GenerationSchema)
@problems(*COMMON, 404)
def generations_get(generation_id: int):
    """One generation: status, variants with character counts and flags, token usage."""
    return generation_doc(_generation_or_404(generation_id))


def _cursor_id(cursor: str) -> int:
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = -1
    if not 0 < value < 2**31:
        raise Problem("validation-failed", "This cursor is not one the API gave out.", errors={"cursor": ["Invalid."]})
    return value


def _cursor(generation_id: int) -> str:
    return base64.urlsafe_b64encode(str(generation_id).encode()).decode().rstrip("=")


@bp.route("/generations")
@auth.scope("read")
@bp.arguments(schemas.GenerationListQuerySchema, location="query", as_kwargs=True)
@bp.response(200, schemas.GenerationListSchema)
@problems(*COMMON, 422)
def generations_list(limit: int, cursor: str | None, template: str | None, favourite: bool | None,
                     created_after: datetime | None):
    """The workspace's generations, newest first, `limit` a page; pass `next_cursor` back as `cursor`."""
    stmt = (select(Generation).where(Generation.workspace_id == g.api_workspace.id)
            .options(selectinload(Generation.variants), selectinload(Generation.template),
                     selectinload(Generation.template_version))
            .order_by(Generation.id.desc()).limit(limit + 1))
    if cursor:
        stmt = stmt.where(Generation.id < _cursor_id(cursor))
    if template:
        stmt = stmt.join(Template, Template.id == Generation.template_id).where(Template.slug == template)
    if favourite is not None:
        has_favourite = exists().where(and_(Variant.generation_id == Generation.id, Variant.is_favourite.is_(True)))
        stmt = stmt.where(has_favourite if favourite else ~has_favourite)
    if created_after is not None:
        if created_after.tzinfo is not None:
            created_after = created_after.astimezone(timezone.utc).replace(tzinfo=None)
        stmt = stmt.where(Generation.created_at > created_after)
    rows = list(db.session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": [generation_doc(r) for r in rows], "next_cursor": _cursor(rows[-1].id) if more else None}


@bp.route("/generations/<int:generation_id>/stream")
@auth.scope("read")
@bp.response(200, content_type="text/event-stream",
             description="Server-Sent Events, the browser's: one `batch` event per read, `id` for Last-Event-ID")
@problems(*COMMON, 404)
def generations_stream(generation_id: int):
    """Stream the tokens as SSE; reconnect with `Last-Event-ID` to resume where it stopped."""
    from app.generation.views import sse_response

    generation = _generation_or_404(generation_id)
    key_id = g.api_key.id
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy's own method, untyped

    def still_allowed() -> bool:
        with app.app_context():
            from app.api.models import ApiKey
            key = db.session.get(ApiKey, key_id)
            try:
                return key is not None and key.is_active()
            finally:
                db.session.remove()

    last_id = request.headers.get("Last-Event-ID") or request.args.get("last_id") or "0-0"
    try:
        return sse_response(generation, last_id=last_id, lease_owner=f"key:{key_id}", still_allowed=still_allowed)
    except TooManyStreams as exc:
        raise Problem("too-many-streams", f"Too many live streams are open for this {exc.scope} (at most {exc.limit}). "
                      "Close one, or poll the generation instead.", headers={"Retry-After": "10"}) from exc


# ---------------------------------------------------------------- variants

def _variant_action(variant_id: int, apply) -> object:
    """Change one variant with Idempotency-Key support (the record commits with the change);
    answer the variant's generation."""
    guard = Guard(g.api_key)
    replayed = guard.replay()
    if replayed is not None:
        return replayed
    variant = _variant_or_404(variant_id)
    guard.claim()
    try:
        apply(variant)
        db.session.commit()
    except IntegrityError:
        return guard.after_conflict()
    document = schemas.GenerationSchema().dumps(generation_doc(_generation_or_404(variant.generation_id)))
    guard.store(200, document)
    db.session.commit()
    return current_app.response_class(document, status=200, mimetype="application/json")


@bp.route("/variants/<int:variant_id>/favourite", methods=["POST"])
@auth.scope("generate")
@bp.arguments(schemas.FavouriteSchema)
@bp.response(200, schemas.GenerationSchema, description="The variant's generation")
@problems(*COMMON, 400, 404, 409, 413, 415, 422)
def variants_favourite(body: dict, variant_id: int):
    """Mark or unmark a variant as a favourite (a set, not a toggle, so retries are safe)."""
    return _variant_action(variant_id, lambda variant: setattr(variant, "is_favourite", body["favourite"]))


@bp.route("/variants/<int:variant_id>/rating", methods=["POST"])
@auth.scope("generate")
@bp.arguments(schemas.RatingSchema)
@bp.response(200, schemas.GenerationSchema, description="The variant's generation")
@problems(*COMMON, 400, 404, 409, 413, 415, 422)
def variants_rate(body: dict, variant_id: int):
    """Rate a variant: 1 (thumbs up), -1 (thumbs down) or 0 (no rating)."""
    return _variant_action(variant_id, lambda variant: setattr(variant, "rating", body["rating"]))


@bp.route("/variants/<int:variant_id>/text", methods=["POST"])
@auth.scope("generate")
@bp.arguments(schemas.VariantEditSchema)
@bp.response(200, schemas.GenerationSchema, description="The variant's generation")
@problems(*COMMON, 400, 404, 409, 413, 415, 422)
def variants_edit(body: dict, variant_id: int):
    """Edit a variant's text; the model's first text stays in `original_text`."""
    text = body["text"].strip()
    if not text:
        raise Problem("validation-failed", "The copy cannot be empty.", errors={"text": ["Cannot be empty."]})
    return _variant_action(variant_id, lambda variant: services.edit_variant(variant, text))


# ---------------------------------------------------------------- usage

def _figures(start: date, end: date, api_key_id: int | None = None) -> dict:
    stmt = select(
        func.count(Generation.id),
        func.count(Generation.id).filter(Generation.status == "succeeded"),
        func.count(Generation.id).filter(Generation.status == "failed"),
        func.coalesce(func.sum(Generation.prompt_tokens), 0),
        func.coalesce(func.sum(Generation.completion_tokens), 0),
    ).where(Generation.workspace_id == g.api_workspace.id, Generation.created_at >= start, Generation.created_at < end)
    variants = (select(func.count(Variant.id)).join(Generation, Generation.id == Variant.generation_id)
                .where(Generation.workspace_id == g.api_workspace.id, Generation.created_at >= start,
                       Generation.created_at < end))
    if api_key_id is not None:
        linked = select(ApiGeneration.generation_id).where(ApiGeneration.api_key_id == api_key_id)
        stmt = stmt.where(Generation.id.in_(linked))
        variants = variants.where(Generation.id.in_(linked))
    total, succeeded, failed, prompt, completion = db.session.execute(stmt).one()
    return {"generations": total, "succeeded": succeeded, "failed": failed, "variants": db.session.scalar(variants),
            "prompt_tokens": int(prompt), "completion_tokens": int(completion)}


@bp.route("/usage")
@auth.scope("read")
@bp.arguments(schemas.UsageQuerySchema, location="query", as_kwargs=True)
@bp.response(200, schemas.UsageSchema)
@problems(*COMMON, 422)
def usage(start: date | None, end: date | None):
    """The workspace's and this key's usage for a period (default: the current quota period)."""
    period = quota.quota_period(g.api_workspace)
    start, end = start or period.start, end or period.end
    if end <= start or (end - start).days > 366:
        raise Problem("validation-failed", "`end` must be after `start`, at most 366 days apart.",
                      errors={"end": ["After start, at most 366 days."]})
    allowance = quota.remaining(g.api_workspace, g.api_user.id)
    key = g.api_key
    return {"start": start, "end": end, "workspace": _figures(start, end), "key": _figures(start, end, key.id),
            "quota": {"scope": allowance.scope, "allowance": allowance.allowance, "used": allowance.used,
                      "reserved": allowance.reserved, "remaining": allowance.remaining,
                      "renews_at": allowance.period_end},
            "api_key": {"id": key.id, "name": key.name, "display": key.display, "scopes": list(key.scopes)}}
