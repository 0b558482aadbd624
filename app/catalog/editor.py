"""The template editor, served twice: to site admins for site templates (/admin/templates)
and to workspace owners and admins for their private templates (/workspace/templates).

One set of views, two blueprints: each view finds templates only in its own scope
(another scope's id is a 404), and every change is audited by the services.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from rq.job import JobStatus

from app.bounds import whole_number
from app.core import required
from app.admin import model_policy
from app.generation.options import MAX_VARIANTS
from app.llm import settings as model_settings
from app.catalog import editor_form, tasks, versions
from app.catalog.models import Template
from app.catalog.schema import TemplateDataError
from app.catalog.services import ICONS
from app.extensions import db, limiter
from app.quota.services import QuotaExceeded
from app.web import manager_required, site_admin_required, workspace_required


@dataclass(frozen=True)
class Scope:
    bp: str                                   # blueprint name, the url_for prefix
    title: str
    guard: Callable
    workspace_id: Callable[[], int | None]


SITE = Scope("template_admin", "Site templates", site_admin_required, lambda: None)
WORKSPACE = Scope("workspace_templates", "Workspace templates",
                  lambda view: workspace_required(manager_required(view)), lambda: g.workspace.id)


def _page(scope: Scope, template: Template | None, state: editor_form.EditorState,
          errors: list[str] | None = None, status: int = 200, base_version=None):
    preview, _fields = editor_form.preview(state)
    workspace_scope = scope.workspace_id() is not None
    return render_template(
        "catalog/editor/edit.html", scope=scope, template=template, state=state, preview=preview,
        errors=errors or [], icons=ICONS, base_version=base_version, **editor_form.choices(),
        allowed_models=model_policy.allowed_models() if workspace_scope else None,
        default_ceiling=model_policy.ceiling(None), cost=_test_run_cost(scope, state),
    ), status


def _test_run_variants(state: editor_form.EditorState) -> int:
    """How many variants a test run of this draft asks for: its default variant count, 1 to 5."""
    try:
        return max(1, min(int(state.output.get("variants") or 3), MAX_VARIANTS))
    except ValueError:
        return 3


def _test_run_cost(scope: Scope, state: editor_form.EditorState) -> tuple[int, int] | None:
    """(generations a test run uses, generations left) for a workspace author; None when free."""
    if scope.workspace_id() is None:
        return None
    return tasks.test_run_cost(g.workspace, current_user.id, _test_run_variants(state))


def _refusal(exc: QuotaExceeded | tasks.NoSeat, needed: int) -> str:
    if isinstance(exc, tasks.NoSeat):
        return ("You are not in one of this workspace's seats, so you have no generations to test-run with. "
                "Ask the owner to add seats.")
    whose = "Your workspace's shared pool has" if exc.scope == "pool" else "You have"
    left = "no generations" if exc.remaining == 0 else f"only {exc.remaining} generation{'s' if exc.remaining != 1 else ''}"
    return (f"{whose} {left} left this period, and this test run needs {needed} (one per variant, charged like a "
            "generation). Lower the draft's variant count, or wait for the next period. Nothing was sent.")


def _save(scope: Scope, template: Template | None, state: editor_form.EditorState):
    """Validate everything, refuse a template that does not render, else write a version."""
    errors: list[str] = []
    data = editor_form.to_data(state, errors)
    preview, _ = editor_form.preview(state)
    errors.extend(preview.field_errors)
    if not preview.field_errors:  # else a prompt error may only be a consequence of a bad field
        for key, exc in preview.errors.items():
            errors.append(f"{'System' if key == 'system_prompt' else 'User'} prompt: {exc}")
    if not errors:
        try:
            if template is None:
                template = versions.create_template(data, author=current_user, workspace_id=scope.workspace_id(),
                                                    message=state.message or "Created", publish_now=state.publish)
                number = 1
            else:
                number = versions.save_version(template, data, author=current_user, message=state.message,
                                               publish_now=state.publish).number
        except (TemplateDataError, versions.EditorError) as exc:
            db.session.rollback()
            errors.append(str(exc).removeprefix("template: "))
        else:
            db.session.commit()
            flash(f"Saved version {number}{' and published it' if state.publish else ''}.", "success")
            return redirect(url_for(f"{scope.bp}.versions", template_id=template.id))
    return _page(scope, template, state, errors, 422)


def make_blueprint(scope: Scope, url_prefix: str) -> Blueprint:
    bp = Blueprint(scope.bp, __name__, url_prefix=url_prefix)

    def template_or_404(template_id: int) -> Template:
        return versions.template_in_scope_or_404(template_id, scope.workspace_id())

    @bp.route("")
    @scope.guard
    def index():
        query = request.args.get("q", "")[:100]
        templates = versions.templates_in_scope(scope.workspace_id(), query)
        latest = versions.latest_versions(templates)
        return render_template("catalog/editor/index.html", scope=scope, templates=templates, latest=latest,
                               query=query)

    @bp.route("/new", methods=["GET", "POST"])
    @scope.guard
    def new():
        if request.method == "GET":
            state = editor_form.EditorState()
            state.fields.append({**editor_form.blank_field(1), "name": "topic", "label": "Topic",
                                 "sample": "Sample topic"})
            state.system_prompt = "You are an expert copywriter. Write in {{ language }} with a {{ tone }} tone."
            state.user_prompt = "Write about {{ topic }}."
            return _page(scope, None, state)
        state = editor_form.from_form(request.form)
        if editor_form.apply_op(state, request.form.get("op", "")):
            return _page(scope, None, state)
        return _save(scope, None, state)

    @bp.route("/<int:template_id>/edit", methods=["GET", "POST"])
    @scope.guard
    def edit(template_id: int):
        template = template_or_404(template_id)
        if request.method == "GET":
            number = request.args.get("from", type=whole_number)
            base = required(versions.version_or_404(template, number) if number else versions.latest_version(template),
                            f"a version of template {template.id}")
            state = editor_form.from_data(versions.version_data(template, base))
            return _page(scope, template, state, base_version=base)
        state = editor_form.from_form(request.form)
        state.meta["slug"] = template.slug
        if editor_form.apply_op(state, request.form.get("op", "")):
            return _page(scope, template, state)
        return _save(scope, template, state)

    @bp.route("/preview", methods=["POST"])
    @scope.guard
    def preview():
        state = editor_form.from_form(request.form)
        result, _ = editor_form.preview(state)
        # 200 even with errors: htmx swaps only successful responses, and the errors are the content.
        return render_template("catalog/editor/_preview.html", scope=scope, state=state, preview=result, oob=True,
                               cost=_test_run_cost(scope, state))

    @bp.route("/test-run", methods=["POST"])
    @scope.guard
    @limiter.limit("30 per minute")
    def test_run():
        state = editor_form.from_form(request.form)
        result, _ = editor_form.preview(state)
        errors: list[str] = []
        data = editor_form.to_data(state, errors)
        if not result.ok or errors:
            return render_template("catalog/editor/_test_run.html", scope=scope, job=None, result=None,
                                   errors=errors + result.field_errors + [
                                       f"{k.replace('_', ' ').capitalize()}: {e}" for k, e in result.errors.items()
                                   ])
        llm = dict(data.get("llm") or {})
        if scope.workspace_id() is not None:
            try:
                model_policy.check_workspace_llm(llm)
            except model_policy.ModelNotAllowed as exc:
                return render_template("catalog/editor/_test_run.html", scope=scope, job=None, result=None,
                                       errors=[str(exc)])
            # An empty max tokens means the site default, which may be above this model's ceiling.
            llm["max_tokens"] = model_settings.for_template(scope.workspace_id(), llm.get("model"),
                                                          llm.get("max_tokens")).max_tokens
        payload = {"system_prompt": result.system, "user_prompt": result.user,
                   "format": data["output"]["format"], "max_chars": data["output"]["max_chars"],
                   # Field labels the model may echo ("Product: …"): cleaned as a generation's are.
                   "labels": [str(f.get(key) or "") for f in data.get("fields") or [] for key in ("label", "name")],
                   "variants": _test_run_variants(state), "model": llm.get("model"),
                   "temperature": llm.get("temperature"), "max_tokens": llm.get("max_tokens")}
        if scope.workspace_id() is None:  # a site admin's test run of a site template is free
            job_id = tasks.enqueue(payload, user_id=current_user.id, scope=scope.bp)
        else:
            try:
                job_id = tasks.start_charged(payload, workspace=g.workspace, user_id=current_user.id, scope=scope.bp)
            except (QuotaExceeded, tasks.NoSeat) as exc:
                return render_template("catalog/editor/_test_run.html", scope=scope, job=None, result=None,
                                       errors=[_refusal(exc, payload["variants"])]), 402
        return render_template("catalog/editor/_test_run.html", scope=scope, job_id=job_id, status="queued",
                               result=None, errors=[]), 202

    @bp.route("/test-runs/<job_id>")
    @scope.guard
    def test_result(job_id: str):
        job = tasks.fetch(job_id, user_id=current_user.id, scope=scope.bp)
        if job is None:
            abort(404)
        status = job.get_status()
        result: Any  # a test run job's JSON answer
        result, errors = None, []
        if status == JobStatus.FINISHED:
            result = required(job.return_value(), f"the result of test run {job_id}")  # it finished
            if result.get("cancelled"):
                result, errors = None, ["This test run was stopped before it reached the model; it was not charged."]
        elif status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            errors = ["The test run failed on the worker. Queue health in the admin console shows the error."]
        return render_template("catalog/editor/_test_run.html", scope=scope, job_id=job_id,
                               status=getattr(status, "value", status), result=result, errors=errors)

    @bp.route("/<int:template_id>/versions", endpoint="versions")
    @scope.guard
    def versions_page(template_id: int):
        template = template_or_404(template_id)
        return render_template("catalog/editor/versions.html", scope=scope, template=template,
                               versions=versions.versions_of(template))

    @bp.route("/<int:template_id>/compare")
    @scope.guard
    def compare(template_id: int):
        template = template_or_404(template_id)
        left = versions.version_or_404(template, request.args.get("a", type=whole_number) or 0)
        right = versions.version_or_404(template, request.args.get("b", type=whole_number) or 0)
        return render_template("catalog/editor/compare.html", scope=scope, template=template, left=left,
                               right=right, sections=versions.compare(template, left, right),
                               all_versions=versions.versions_of(template))

    @bp.route("/<int:template_id>/versions/<int:number>/publish", methods=["POST"])
    @scope.guard
    def publish(template_id: int, number: int):
        template = template_or_404(template_id)
        version = versions.version_or_404(template, number)
        try:
            action = versions.publish(template, version, current_user)
        except versions.EditorError as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            verb = "Rolled back to" if action == "template.rollback" else "Published"
            flash(f"{verb} version {number}: users now get it.", "success")
        return redirect(url_for(f"{scope.bp}.versions", template_id=template.id))

    @bp.route("/<int:template_id>/unpublish", methods=["POST"])
    @scope.guard
    def unpublish(template_id: int):
        template = template_or_404(template_id)
        try:
            versions.unpublish(template, current_user)
        except versions.EditorError as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(f"{template.name} is no longer in the catalogue. Publish a version to bring it back.", "info")
        return redirect(url_for(f"{scope.bp}.versions", template_id=template.id))

    @bp.route("/<int:template_id>/export")
    @scope.guard
    def export(template_id: int):
        template = template_or_404(template_id)
        number = request.args.get("version", type=whole_number)
        version = required(versions.version_or_404(template, number) if number
                           else template.published_version or versions.latest_version(template),
                           f"a version of template {template.id}")
        body = versions.to_yaml(versions.version_data(template, version))
        return Response(body, mimetype="application/x-yaml", headers={
            "Content-Disposition": f'attachment; filename="{template.slug}.yaml"'})

    return bp


site_bp = make_blueprint(SITE, "/admin/templates")
workspace_bp = make_blueprint(WORKSPACE, "/workspace/templates")
