"""Running the site: the LLM settings (default model, connection test) and queue health."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.admin import model_policy, queues, settings
from app.llm import settings as model_settings
from app.admin.forms import LLMSettingsForm, WorkspaceModelsForm
from app.admin.views import bp
from app.extensions import db
from app.llm import LLMError, check_connection
from app.web import is_htmx, site_admin_required


@bp.route("/llm", methods=["GET", "POST"])
@site_admin_required
def llm():
    form = LLMSettingsForm(data={"default_model": settings.get(settings.DEFAULT_MODEL) or ""}
                           if request.method == "GET" else None)
    if form.validate_on_submit():
        settings.put(settings.DEFAULT_MODEL, form.default_model.data, current_user)
        db.session.commit()
        flash(f"Default model: {settings.default_model()}. The next generation uses it.", "success")
        return redirect(url_for("admin.llm"))
    return _llm_page(form, _models_form())


def _models_form(formdata=None) -> WorkspaceModelsForm:
    return WorkspaceModelsForm(formdata=formdata,
                               data={"models": model_policy.as_text(model_policy.allowed_models())})


def _llm_page(form: LLMSettingsForm, models_form: WorkspaceModelsForm):
    config = current_app.config
    failed = form.errors or models_form.errors
    return render_template("admin/llm.html", form=form, models_form=models_form,
                           default_model=settings.default_model(), env_model=config["OPENAI_MODEL"],
                           base_url=config.get("OPENAI_BASE_URL"), has_key=bool(config.get("OPENAI_API_KEY")),
                           default_ceiling=model_policy.ceiling(None)), 422 if failed else 200


@bp.route("/llm/workspace-models", methods=["POST"])
@site_admin_required
def workspace_models():
    """The allow-list of models (with max-tokens ceilings) that workspace templates may use."""
    models_form = _models_form(request.form)
    if models_form.validate_on_submit():
        try:
            models = model_policy.parse(models_form.models.data or "")
        except ValueError as exc:
            models_form.models.errors.append(str(exc))
        else:
            model_policy.save(models, current_user)
            db.session.commit()
            flash(f"Workspace templates may use {', '.join(models) or 'only the site default model'}.", "success")
            return redirect(url_for("admin.llm"))
    form = LLMSettingsForm(formdata=None, data={"default_model": settings.get(settings.DEFAULT_MODEL) or ""})
    return _llm_page(form, models_form)


@bp.route("/llm/test", methods=["POST"])
@site_admin_required
def llm_test():
    """Ask the configured server for its models, with a short timeout, and say what happened."""
    llm_settings = model_settings.llm_settings()
    try:
        check_connection(llm_settings, timeout=10.0)
    except LLMError as exc:
        result = {"ok": False, "message": exc.summary, "detail": str(exc)[:300]}
    else:
        result = {"ok": True, "message": f"Connected. Generations will use {llm_settings.model}."}
    if is_htmx():
        return render_template("admin/_llm_test.html", result=result)
    flash(result["message"], "success" if result["ok"] else "error")
    return redirect(url_for("admin.llm"))


def _redis():
    return current_app.extensions["redis"]


def _known_queue_or_404(name: str) -> str:
    if name not in queues.queue_names(_redis(), current_app.config["RQ_QUEUE"], current_app.config["BULK_QUEUE"]):
        abort(404)
    return name


@bp.route("/queues")
@site_admin_required
def queues_page():
    redis = _redis()
    names = queues.queue_names(redis, current_app.config["RQ_QUEUE"], current_app.config["BULK_QUEUE"])
    return render_template("admin/queues.html", figures=[queues.figures(redis, n) for n in names],
                           failed={n: queues.failed_jobs(redis, n) for n in names}, summary=queues.error_summary)


@bp.route("/queues/<name>/failed/<job_id>")
@site_admin_required
def failed_job(name: str, job_id: str):
    job = queues.failed_job(_redis(), _known_queue_or_404(name), job_id)
    if job is None:
        abort(404)
    return render_template("admin/job.html", queue=name, job=job, summary=queues.error_summary(job),
                           exc_text=queues.exc_text(job))


@bp.route("/queues/<name>/failed/<job_id>/requeue", methods=["POST"])
@site_admin_required
def requeue(name: str, job_id: str):
    job = queues.failed_job(_redis(), _known_queue_or_404(name), job_id)
    if job is None:
        flash("That job is no longer in the failed registry (already requeued or expired).", "error")
        return redirect(url_for("admin.queues_page"))
    queues.requeue(_redis(), name, job, current_user)
    db.session.commit()
    flash(f"Job {job_id} is back on the {name} queue.", "success")
    return redirect(url_for("admin.queues_page"))
