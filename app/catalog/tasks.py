"""Test runs of a draft template: the editor's prompts sent to the configured LLM.

A test run is an RQ job, like a generation, so a slow model never holds a web
thread; the editor polls its result (htmx). It takes the already rendered
prompts and the draft's rules and parameters; its result lives in RQ's job
result for an hour.

Who pays: a workspace author's test run is recorded (TestRun) and charged to
their seat through the quota ledger like a generation (reserve at start, settle
the variants that came back, refund on failure, keyed by the test run's id so
it happens once). Site admins' test runs of site templates are free.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select, update

from app.core import rowcount, utcnow
from app.billing import services as billing
from app.catalog.models import TestRun
from app.extensions import db
from app.generation.options import BALANCED, MAX_VARIANTS
from app.quota import services as quota
from app.workspaces.models import Workspace

log = logging.getLogger(__name__)

JOB_PREFIX = "test-run-"
RESULT_TTL = 3600


class NoSeat(Exception):
    """The author is not in one of the workspace's seats, so has no quota to run on."""


def test_run_cost(workspace: Workspace, user_id: int, variants: int) -> tuple[int, int]:
    """(generations this test run uses, generations the author has left) in this workspace."""
    return variants, quota.remaining(workspace, user_id).remaining


def start_charged(payload: dict[str, Any], *, workspace: Workspace, user_id: int, scope: str) -> str:
    """A workspace author's test run: record it, reserve its variants on the author's seat,
    commit, then queue it. Raises NoSeat or QuotaExceeded with nothing written and no model call."""
    if not billing.has_seat(workspace, user_id):
        raise NoSeat()
    job_id = _new_job_id()
    run = TestRun(job_id=job_id, workspace_id=workspace.id, user_id=user_id, variant_count=payload["variants"],
                  status="queued")
    db.session.add(run)
    db.session.flush()
    try:
        quota.reserve_test_run(workspace, user_id, run.id, run.variant_count)
    except quota.QuotaExceeded:
        db.session.rollback()
        raise
    run_id = run.id
    db.session.commit()
    try:
        enqueue({**payload, "test_run_id": run_id}, user_id=user_id, scope=scope, job_id=job_id)
    except Exception:
        _close(run_id, used=0)  # Redis is down: give the reservation back
        raise
    return job_id


def _new_job_id() -> str:
    return f"{JOB_PREFIX}{uuid.uuid4().hex}"


def enqueue(payload: dict[str, Any], *, user_id: int, scope: str, job_id: str | None = None) -> str:
    """Queue a test run; the job id is unguessable and the job remembers who asked."""
    from app.jobs import queue
    job_id = job_id or _new_job_id()
    queue().enqueue(
        "app.catalog.tasks.run_test", payload, job_id=job_id,
        job_timeout=current_app.config["JOB_TIMEOUT"], result_ttl=RESULT_TTL, failure_ttl=RESULT_TTL,
        meta={"user_id": user_id, "scope": scope, "kind": "test-run"},
    )
    return job_id


def fetch(job_id: str, *, user_id: int, scope: str) -> Job | None:
    """The caller's own test run in this scope, or None."""
    if not job_id.startswith(JOB_PREFIX) or len(job_id) != len(JOB_PREFIX) + 32:
        return None
    try:
        job = Job.fetch(job_id, connection=current_app.extensions["redis"])
    except NoSuchJobError:
        return None
    if job.meta.get("user_id") != user_id or job.meta.get("scope") != scope:
        return None
    return job


def run_test(payload: dict[str, Any]) -> dict[str, Any]:
    """RQ entry point: N completions in parallel, each checked against the output rules."""
    from app.jobs import job_app
    app = job_app()
    run_id = payload.get("test_run_id")
    with app.app_context():
        try:
            if run_id is not None and not _claim(run_id):
                return {"cancelled": True}
            result = _run(payload)
            if run_id is not None:
                result["charged"] = _close(run_id, used=sum(1 for v in result["variants"] if "error" not in v))
            return result
        except Exception:
            if run_id is not None:
                db.session.rollback()
                _close(run_id, used=0)
            raise
        finally:
            db.session.remove()


def _claim(run_id: int) -> bool:
    """Mark a queued test run running; False if it was already finished (e.g. recovered as lost)."""
    claimed = rowcount(db.session.execute(update(TestRun).where(TestRun.id == run_id, TestRun.status == "queued")
                                 .values(status="running")))
    db.session.commit()
    return claimed == 1


def _close(run_id: int, *, used: int) -> int:
    """Settle the variants that came back (refund all when none did), once; send due quota emails.
    Returns what was charged."""
    status = "succeeded" if used else "failed"
    finished = rowcount(db.session.execute(update(TestRun).where(TestRun.id == run_id, TestRun.status.in_(("queued", "running")))
                                  .values(status=status, finished_at=utcnow())))
    moved = (quota.settle_test_run(run_id, used) if used else quota.refund_test_run(run_id)) if finished else []
    due = quota.record_due_alerts(moved)
    db.session.commit()
    quota.send_alert_emails(due)
    return used if finished else 0


def recover_stale_test_runs(max_age_seconds: int) -> int:
    """Fail and refund charged test runs whose job was lost (queued or running too long)."""
    cutoff = utcnow() - timedelta(seconds=max_age_seconds)
    stale = db.session.scalars(select(TestRun.id).where(TestRun.status.in_(("queued", "running")),
                                                        TestRun.created_at < cutoff)).all()
    for run_id in stale:
        _close(run_id, used=0)
    return len(stale)


def _run(payload: dict[str, Any]) -> dict[str, Any]:
    from app.llm.settings import llm_settings
    from app.generation.rules import check, clean_output, is_plain
    from app.llm import LLMError, stream_chat

    settings = llm_settings(payload.get("model"))
    max_tokens = payload.get("max_tokens") or settings.max_tokens
    temperature = payload.get("temperature")
    temperature = BALANCED if temperature is None else float(temperature)
    fmt, limit = payload["format"], payload.get("max_chars")
    labels = tuple(str(label) for label in payload.get("labels") or ())
    messages = [{"role": "system", "content": payload["system_prompt"]},
                {"role": "user", "content": payload["user_prompt"]}]
    started = time.monotonic()
    deadline_at = started + settings.deadline

    def one(position: int) -> dict[str, Any]:
        try:
            completion = stream_chat(settings, messages, temperature=temperature, deadline_at=deadline_at,
                                     max_tokens=max_tokens)
        except LLMError as exc:
            return {"position": position, "error": exc.summary}
        # The same cleaning as a generation's (app/generation/output.py): preambles, echoed field labels,
        # and markdown syntax in lists and short copy.
        text = clean_output(completion.text, fmt, labels, plain=is_plain(fmt, limit))
        verdict = check(text, fmt, limit)
        return {"position": position, "text": text, "ok": verdict.ok and bool(text), "empty": not text,
                "length": verdict.length, "limit": verdict.limit,
                "offending_lines": [n + 1 for n in verdict.offending_lines],
                "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                "model": completion.model}

    count = max(1, min(int(payload.get("variants", 1)), MAX_VARIANTS))
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="test-run") as pool:
        variants = list(pool.map(one, range(count)))
    done = [v for v in variants if "error" not in v]
    log.info("test run: %s of %s variants with %s", len(done), count, settings.model)
    return {
        "model": next((v["model"] for v in done if v.get("model")), settings.model),
        "temperature": temperature, "max_tokens": max_tokens,
        "format": fmt, "max_chars": limit,
        "variants": variants,
        "prompt_tokens": sum(v["prompt_tokens"] for v in done),
        "completion_tokens": sum(v["completion_tokens"] for v in done),
        "seconds": round(time.monotonic() - started, 1),
    }
