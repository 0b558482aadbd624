"""The generation job: N variants concurrently, streamed to Redis, stored once.

The job takes a generation id. It is safe to run twice (an RQ retry, or
abandoned-job recovery): a finished generation is left alone, variants are
unique per (generation, position) and written in one transaction together
with the quota settlement, and settle/refund act once per generation.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from flask import current_app
from rq import Retry, get_current_job
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.core import required, rowcount, utcnow
from app.extensions import db
from app.generation.models import Generation, Variant
from app.generation.recovery import INTERRUPTED, mark_failed
from app.generation.rules import check
from app.generation import output as copy_output
from app.generation.stop import STOPPED_BEFORE_START, GenerationStopped, StopWatch, is_stopped, partial_message
from app.generation.services import refresh_search_document
from app.generation.streams import GenerationStream
from app.checks import figures as check_figures, services as checks
from app.checks.checker import repair_instruction as checks_repair_instruction, run_checks, variant_fields
from app.llm.settings import effective_temperature, for_template
from app.llm import LLMError, LLMInterrupted, stream_chat
from app.observability import carry_context, log_context, record_error, time_first_token
from app.quota import services as quota
from app.jobs import job_app
from app.webhooks import events as webhook_events

log = logging.getLogger(__name__)

MAX_REQUEUES = 1  # a job interrupted by a shutdown runs again once; the second time it is failed and refunded

@dataclass
class VariantResult:
    position: int
    text: str = ""
    over_limit: bool = False
    repaired: bool = False
    cut_off: bool = False
    stopped: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    error: LLMError | None = None
    findings: list = field(default_factory=list)  # style, claims, language (app/checks)
    hold: bool = False


def run_generation(generation_id: int) -> str | Retry:
    """RQ entry point."""
    app = job_app()
    with app.app_context(), log_context(generation_id=generation_id):
        try:
            return _run(generation_id)
        except Exception:
            log.exception("generation %s: unexpected error", generation_id)
            record_error("job_crashed")
            _fail_unexpected(generation_id)
            raise  # keep it in RQ's failed registry for operators
        finally:
            db.session.remove()


def on_job_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback: the job failed where we could not catch it, or was abandoned by a
    worker process that died (SIGKILL, OOM). Fail and refund, unless the job already did."""
    generation_id = job.args[0]
    app = job_app()
    with app.app_context():
        try:
            stream = GenerationStream(current_app.extensions["redis"], generation_id,
                                      current_app.config["STREAM_TTL_SECONDS"])
            if fail_and_refund(generation_id, INTERRUPTED, stream, ("queued", "running")):
                log.warning("generation %s: job %s lost (%s), failed and refunded", generation_id, job.id,
                            exc_type.__name__ if exc_type else "?")
        finally:
            db.session.remove()


def failure_message(exc: LLMError) -> str:
    """A failed model call, told to the marketer: what happened, that it cost nothing, what to do."""
    if exc.kind == "stopped":
        return exc.summary
    return f"{exc.problem} Your quota was not used; {exc.advice}"


UNEXPECTED_FAILURE = "Something went wrong on our side while writing. Your quota was not used; please try again."


def _fail_unexpected(generation_id: int) -> None:
    """A bug or an outage mid-job: fail the generation and refund, so nothing stays stuck."""
    db.session.rollback()
    stream = GenerationStream(current_app.extensions["redis"], generation_id, current_app.config["STREAM_TTL_SECONDS"])
    fail_and_refund(generation_id, UNEXPECTED_FAILURE, stream, ("queued", "running"))


def fail_and_refund(generation_id: int, message: str, stream: GenerationStream, from_states: tuple[str, ...]) -> bool:
    """Move the row from one of `from_states` to failed, refund, commit, and close the stream.

    One conditional UPDATE decides, so of two racing callers only one refunds and writes the end.
    """
    moved = mark_failed(generation_id, message, from_states)
    db.session.commit()
    if moved:
        stream.finish("failed", message=message)
    return bool(moved)


def _run(generation_id: int) -> str | Retry:
    # One query for the row and what the job reads of it first (its version and template).
    generation = db.session.get(Generation, generation_id, options=[
        joinedload(Generation.template_version), joinedload(Generation.template)])
    if generation is None:
        log.warning("generation %s: not found, nothing to do", generation_id)
        return "missing"
    if generation.is_finished:
        log.info("generation %s: already %s, skipping", generation_id, generation.status)
        return generation.status
    config = current_app.config
    if is_stopped(current_app.extensions["redis"], generation_id):
        stream = GenerationStream(current_app.extensions["redis"], generation_id, config["STREAM_TTL_SECONDS"])
        fail_and_refund(generation_id, STOPPED_BEFORE_START, stream, ("queued",))
        return "stopped"
    version = generation.template_version
    # The template's own model and parameters, falling back to the site default; a workspace
    # template's max tokens are clamped to the operator's ceiling (the model was checked at submit).
    settings = for_template(generation.template.workspace_id, version.model, version.max_tokens,
                                         check_model=False)
    max_tokens = settings.max_tokens
    redis = current_app.extensions["redis"]
    stream = GenerationStream(redis, generation_id, config["STREAM_TTL_SECONDS"], config["STREAM_FLUSH_MS"])
    stream = time_first_token(stream, since=generation.created_at)
    fmt, limit = version.format, version.max_chars
    deadline_at = _deadline_at(settings.deadline)

    generation.status = "running"
    generation.started_at = utcnow()
    messages = [
        {"role": "system", "content": generation.system_prompt},
        {"role": "user", "content": generation.user_prompt},
    ]
    temperature = effective_temperature(generation.creativity, version.temperature)
    count = generation.variant_count
    # How list variants are asked for and cleaned (structured output, labels to strip): app/generation/output.py
    shape = copy_output.OutputShape.for_generation(generation, config)
    stop_watch = StopWatch(redis, generation_id)
    check_subject = checks.Subject.of(generation)
    db.session.commit()
    stream.started()
    log.info("generation %s: %s variants with %s", generation_id, count, settings.model)
    # The checks' rules are read while the model writes (below): they are needed only once a variant
    # is complete, and reading them first would delay every first token.
    check_context: Future[checks.CheckContext] = Future()

    def produce(position: int) -> VariantResult:
        result = VariantResult(position)
        try:
            stop_watch.check()
            live = shape.live(position, stream, stop_watch)
            completion = stream_chat(
                settings, messages, temperature=temperature, deadline_at=deadline_at, max_tokens=max_tokens,
                on_token=live.token, on_restart=live.reset, response_format=shape.response_format,
            )
            text = shape.clean(completion.text, live)
            result.cut_off = completion.cut_off
            result.prompt_tokens += completion.prompt_tokens
            result.completion_tokens += completion.completion_tokens
            result.model = completion.model
            verdict = check(text, fmt, limit)
            context = check_context.result()
            findings = run_checks(text, context)
            if (not verdict.ok and limit is not None) or findings:
                # One repair request covering every broken rule (limit, style, claims, language);
                # what still fails is shown flagged, never cut or edited.
                stream.reset(position)
                repair_messages = messages + [
                    {"role": "assistant", "content": shape.as_answer(text)},
                    {"role": "user", "content": checks_repair_instruction(
                        fmt, limit, verdict, findings, context.language)},
                ]
                live = shape.live(position, stream, stop_watch)
                try:
                    repaired = stream_chat(
                        settings, repair_messages, temperature=min(temperature, 0.5),
                        deadline_at=deadline_at, max_tokens=max_tokens,
                        on_token=live.token, on_restart=live.reset, response_format=shape.response_format,
                    )
                    result.prompt_tokens += repaired.prompt_tokens
                    result.completion_tokens += repaired.completion_tokens
                    repaired_text = shape.clean(repaired.text, live)
                    if repaired_text:
                        text = repaired_text
                        result.repaired = True
                        result.cut_off = repaired.cut_off
                except (LLMInterrupted, GenerationStopped):
                    raise
                except LLMError as exc:
                    log.warning("generation %s variant %s: repair failed: %s", generation_id, position, exc)
                verdict = check(text, fmt, limit)
                findings = run_checks(text, context)
            if not text:
                raise LLMError("empty")
            result.text = text
            result.over_limit = not verdict.ok
            result.findings, result.hold = findings, context.hold
            stream.variant(position, text, result.over_limit)
        except LLMInterrupted as exc:
            result.error = exc
        except GenerationStopped as exc:
            # What this variant had written is dropped (not charged); finished ones are kept.
            result.error, result.stopped = exc, True
            stream.reset(position)
        except LLMError as exc:
            log.warning("generation %s variant %s failed: %s", generation_id, position, exc)
            record_error("variant_failed", redis)
            result.error = exc
            stream.reset(position)
        return result

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix=f"gen{generation_id}") as pool:
        variants = [pool.submit(carry_context(produce), position) for position in range(count)]
        _read_check_context(check_subject, check_context)
        results = [variant.result() for variant in variants]
    if any(isinstance(r.error, LLMInterrupted) for r in results):
        return _hand_back(generation_id, stream, count)
    return _store(generation_id, results, stream, settings.model)




def _read_check_context(subject: checks.Subject, into: Future) -> None:
    """Read the checks' rules into `into` while the variants' model calls run. A failure reaches
    the variants (they raise it once written: the job fails and refunds). The read-only transaction
    ends here, before the job waits: on SQLite a job's transaction holds the write lock."""
    try:
        into.set_result(checks.context_for(subject))
    except Exception as exc:  # noqa: BLE001 - handed to the variants, which raise it
        into.set_exception(exc)
    finally:
        db.session.rollback()


def _hand_back(generation_id: int, stream: GenerationStream, count: int) -> str | Retry:
    """The worker is shutting down mid-generation: run it again once, else fail and refund.

    The row moves out of `running` with one conditional UPDATE, so whichever
    path runs does so exactly once. A requeue clears what the browser showed
    (a `reset` per variant) and keeps the quota reserved for the next run; RQ
    puts the same job back on its queue (the job returns `Retry`).
    """
    db.session.rollback()
    job = get_current_job()
    if job is not None and (job.number_of_retries or 0) < MAX_REQUEUES:
        moved = rowcount(db.session.execute(
            update(Generation).where(Generation.id == generation_id, Generation.status == "running")
            .values(status="queued", started_at=None)
        ))
        db.session.commit()
        if moved:
            for position in range(count):
                stream.reset(position)
            log.warning("generation %s: interrupted by shutdown, requeued", generation_id)
            return Retry(max=MAX_REQUEUES)
        return "interrupted"
    if fail_and_refund(generation_id, INTERRUPTED, stream, ("running",)):
        log.warning("generation %s: interrupted by shutdown again, failed and refunded", generation_id)
    return "failed"


def _deadline_at(deadline: float) -> float:
    """The model calls' deadline, counted from when RQ started the job (not from now), so that
    time spent waiting for a database connection is inside it and the job ends before JOB_TIMEOUT."""
    job = get_current_job()
    elapsed = 0.0
    if job is not None and job.started_at is not None:
        started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=timezone.utc)
        elapsed = max(0.0, (datetime.now(timezone.utc) - started).total_seconds())
    return time.monotonic() + deadline - elapsed


def _store(generation_id: int, results: list[VariantResult], stream: GenerationStream, default_model: str) -> str:
    """Write variants, totals and the quota settlement in one transaction.

    It first claims the row (still `running`) with a conditional UPDATE: if RQ's abandoned-job
    handling or recovery failed and refunded it meanwhile, this late result is dropped, never
    stored as free copy beside a refund.
    """
    claimed = rowcount(db.session.execute(
        update(Generation).where(Generation.id == generation_id, Generation.status == "running")
        .values(finished_at=utcnow())
    ))
    if not claimed:
        db.session.rollback()
        log.warning("generation %s: no longer running (closed elsewhere); result dropped", generation_id)
        return "superseded"
    generation = required(db.session.get(Generation, generation_id), f"generation {generation_id}")  # claimed above
    succeeded = [r for r in results if r.error is None]
    generation.prompt_tokens = sum(r.prompt_tokens for r in results)
    generation.completion_tokens = sum(r.completion_tokens for r in results)
    generation.model = next((r.model for r in succeeded if r.model), default_model)
    generation.finished_at = utcnow()
    if not succeeded:
        message = failure_message(results[0].error) if results and results[0].error else "The generation failed."
        generation.status = "failed"
        generation.error_message = message
        quota.refund(generation_id)
        webhook_events.generation_failed(db.session, generation_id, message)
        db.session.commit()
        stream.finish("failed", message=message)
        return "failed"
    rows = [dict(over_limit=result.over_limit, repaired=result.repaired, cut_off=result.cut_off,
                 **variant_fields(result.findings, result.hold)) for result in succeeded]
    try:
        for result, row in zip(succeeded, rows, strict=True):
            db.session.add(Variant(generation_id=generation_id, position=result.position, text=result.text, **row))
        db.session.flush()
    except IntegrityError:
        # Another run of this job stored the variants first; keep its result.
        db.session.rollback()
        stream.finish("done")
        return "duplicate"
    failed = len(results) - len(succeeded)
    generation.status = "succeeded"
    if failed:
        generation.error_message = partial_message(len(results), len(succeeded), sum(r.stopped for r in results))
    check_figures.record(generation.workspace_id, generation.template_id, generation.created_at, rows)
    moved = quota.settle(generation_id, used=len(succeeded))
    due_alerts = quota.record_due_alerts(moved)
    db.session.refresh(generation)
    refresh_search_document(generation)
    webhook_events.generation_completed(db.session, generation)
    db.session.commit()
    stream.finish("done")
    quota.send_alert_emails(due_alerts)
    return "succeeded"

