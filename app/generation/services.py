"""Generation rules: render the prompt, reserve quota, record, enqueue after the caller's commit."""
from __future__ import annotations

from typing import Any, Callable

from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value

from app.auth.models import User

from app.core import required, utcnow
from app.billing import services as billing
from app.brand.models import BrandVoice
from app.catalog.models import Template, TemplateVersion
from app.catalog.rendering import render_prompt
from app.extensions import db
from app.generation.models import Generation, Variant
from app.generation.rules import check
from app.generation.options import BALANCED, CREATIVITY
from app.llm import settings as model_settings
from app.knowledge import services as knowledge_base
from app.quota import services as quota
from app.workspaces.models import Workspace
from app.outbox.services import enqueue_after_commit

TONES = ("Professional", "Friendly", "Bold", "Playful", "Persuasive", "Empathetic", "Witty", "Luxury", "Urgent", "Casual")
LANGUAGES = (
    "English", "Spanish", "French", "German", "Italian", "Portuguese", "Dutch",
    "Polish", "Swedish", "Japanese", "Chinese (Simplified)", "Korean",
)


class NoSeat(Exception):
    """The workspace has more members than seats and this member is not seated."""


class TemplateUnavailable(Exception):
    """Regenerate or "more like this" of a template that is no longer published."""


def _still_published(template: Template | None) -> Template:
    if template is None or template.published_version is None:
        raise TemplateUnavailable()
    return template


def build_context(version: TemplateVersion, values: dict[str, Any], *, tone: str, language: str,
                  variant_count: int, brand_voice: str = "") -> dict[str, Any]:
    """The variables a template's prompts may use."""
    context: dict[str, Any] = {}
    for field in version.fields:
        value = values.get(field["name"])
        context[field["name"]] = "" if value is None else value
    context.update(tone=tone, language=language, variant_count=variant_count, brand_voice=brand_voice)
    context["knowledge"] = ""  # the chosen knowledge passages as text (start() fills it)
    return context


def _search_document(template: Template, inputs: dict[str, Any], texts: list[str]) -> str:
    parts = [template.name] + [str(v) for v in inputs.values() if v not in (None, "")] + texts
    return "\n".join(parts).lower()


def start(*, workspace: Workspace, user: User, template: Template, values: dict[str, Any],
          tone: str, language: str, variant_count: int, creativity: str,
          parent_variant: Variant | None = None, brand_voice: BrandVoice | None = None,
          version: TemplateVersion | None = None, bulk_row_id: int | None = None, schedule: bool = True,
          knowledge: knowledge_base.Choice | None = None,
          on_record: Callable[[Generation], None] | None = None) -> Generation:
    """Record a generation, reserve its quota and enqueue its job once the caller commits.

    Raises PromptError if the template cannot be rendered, ModelNotAllowed if a
    workspace template's model is no longer allowed, and QuotaExceeded when the
    user has too few generations left. The first two write nothing; after QuotaExceeded the
    caller rolls back (the generation row is flushed by then, and a pooled member's first
    ledger may be reserved).
    A bulk run row (app/bulk) passes the run's `version`, its `bulk_row_id`, and `schedule=False`:
    its row job on the bulk queue runs the generation itself.
    `on_record(generation)` runs after the row is flushed, inside the same transaction (the API
    links the generation to its key there).
    """
    if not billing.has_seat(workspace, user.id):
        raise NoSeat()
    version = required(version or template.published_version, f"a published version of template {template.id}")
    if brand_voice is not None and brand_voice.workspace_id != workspace.id:
        raise ValueError("brand voice of another workspace")
    context = build_context(version, values, tone=tone, language=language, variant_count=variant_count,
                            brand_voice=brand_voice.as_prompt_text() if brand_voice else "")
    passages = knowledge_base.passages_for(workspace, knowledge, values)
    context["knowledge"] = knowledge_base.facts_text(passages)
    system_prompt = render_prompt(version.system_prompt, context)
    user_prompt = render_prompt(version.user_prompt, context)
    user_prompt = knowledge_base.with_facts(version, user_prompt, context["knowledge"], workspace.name)
    if parent_variant is not None:
        user_prompt += (
            "\n\nWrite a fresh variant in the same spirit, style and length as this one "
            f"(do not repeat it word for word):\n{parent_variant.text}"
        )
    # A workspace template saved before the operator's model list changed is refused here.
    model = model_settings.for_template(template.workspace_id, version.model, version.max_tokens).model
    generation = Generation(
        workspace_id=workspace.id,
        user_id=user.id,
        template_id=template.id,
        template_version_id=version.id,
        inputs=dict(values),
        tone=tone,
        language=language,
        variant_count=variant_count,
        creativity=CREATIVITY.get(creativity, BALANCED),
        system_prompt=system_prompt,
        user_prompt=user_prompt,
        status="queued",
        model=model,
        parent_variant_id=parent_variant.id if parent_variant is not None else None,
        brand_voice_id=brand_voice.id if brand_voice is not None else None,
        search_document=_search_document(template, values, []),
        bulk_row_id=bulk_row_id,
        knowledge_passages=passages or None,
    )
    db.session.add(generation)
    db.session.flush()
    set_committed_value(generation, "variants", [])  # a new generation has none: no query to find out
    if on_record is not None:
        on_record(generation)
    quota.reserve(workspace, user.id, generation.id, variant_count)
    if schedule:
        schedule_job(generation.id)
    return generation


JOB_PREFIX = "generation-"


def job_id(generation_id: int) -> str:
    """The RQ job id of a generation: deterministic, so a job is never enqueued twice for one generation."""
    return f"{JOB_PREFIX}{generation_id}"


def schedule_job(generation_id: int, requeues: int = 0) -> None:
    """Enqueue the generation's job when the current transaction commits, through the outbox: if Redis
    is down then, the job is enqueued when it is back, or, past GENERATION_QUEUE_DEADLINE, the
    generation is failed and refunded (recovery.fail_unstarted). `requeues` counts recovery's requeues."""
    enqueue_after_commit(
        db.session, "app.generation.tasks.run_generation", generation_id, job_id=job_id(generation_id),
        expire_after=current_app.config["GENERATION_QUEUE_DEADLINE"],
        on_expire="app.generation.recovery.fail_unstarted", meta={"requeues": requeues} if requeues else None,
    )


def rerun(generation: Generation, user: User, workspace: Workspace) -> Generation:
    """Regenerate: the same inputs with the template's current published version."""
    return start(
        workspace=workspace, user=user, template=_still_published(generation.template), values=generation.inputs,
        tone=generation.tone, language=generation.language, variant_count=generation.variant_count,
        creativity=_creativity_name(generation.creativity), brand_voice=_voice(generation),
        knowledge=knowledge_base.Choice.again(generation),
    )


def more_like(variant: Variant, user: User, workspace: Workspace) -> Generation:
    """A new generation seeded from one variant."""
    source = variant.generation
    return start(
        workspace=workspace, user=user, template=_still_published(source.template), values=source.inputs,
        tone=source.tone, language=source.language, variant_count=source.variant_count,
        creativity=_creativity_name(source.creativity), parent_variant=variant, brand_voice=_voice(source),
        knowledge=knowledge_base.Choice.again(source),
    )


def _voice(generation: Generation) -> BrandVoice | None:
    return db.session.get(BrandVoice, generation.brand_voice_id) if generation.brand_voice_id else None


def _creativity_name(value: float) -> str:
    return min(CREATIVITY, key=lambda name: abs(CREATIVITY[name] - value))


def refresh_search_document(generation: Generation) -> None:
    texts = [v.text for v in generation.variants]
    generation.search_document = _search_document(generation.template, generation.inputs, texts)


def edit_variant(variant: Variant, text: str) -> None:
    """Save an edit; the model's first text is kept in original_text."""
    if variant.original_text is None:
        variant.original_text = variant.text
    variant.text = text
    variant.edited_at = utcnow()
    fmt = variant.generation.template_version.format
    limit = variant.generation.template_version.max_chars
    variant.over_limit = not check(text, fmt, limit).ok
    refresh_search_document(variant.generation)


def delete_variant(variant: Variant) -> int:
    """Delete one variant and re-index its generation; returns how many variants it has left."""
    generation = variant.generation
    db.session.delete(variant)
    db.session.flush()
    db.session.refresh(generation)
    refresh_search_document(generation)
    return len(generation.variants)
