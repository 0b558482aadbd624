"""Test runs of a draft template: the editor's prompts sent to the configured LLM.

A test run is an RQ job, like a generation, so a slow model never holds a web
thread; the editor polls its result (htmx). It takes the already rendered
prompts and the draft's rules and parameters, writes nothing to the database
and charges no workspace: its result lives in RQ's job result for an hour.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job

from app.extensions import db

log = logging.getLogger(__name__)

JOB_PREFIX = "test-run-"
RESULT_TTL = 3600


def enqueue(payload: dict[str, Any], *, user_id: int, scope: str) -> str:
    """Queue a test run; the job id is unguessable and the job remembers who asked."""
    import workers
    job_id = f"{JOB_PREFIX}{uuid.uuid4().hex}"
    workers.queue().enqueue(
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
    from workers import job_app
    app = job_app()
    with app.app_context():
        try:
            return _run(payload)
        finally:
            db.session.remove()


def _run(payload: dict[str, Any]) -> dict[str, Any]:
    from app.admin.settings import llm_settings
    from app.generation.rules import check, clean_output
    from app.llm import LLMError, stream_chat

    settings = llm_settings(payload.get("model"))
    max_tokens = payload.get("max_tokens") or settings.max_tokens
    temperature = payload.get("temperature")
    temperature = 0.7 if temperature is None else float(temperature)
    fmt, limit = payload["format"], payload.get("max_chars")
    messages = [{"role": "system", "content": payload["system_prompt"]},
                {"role": "user", "content": payload["user_prompt"]}]
    started = time.monotonic()
    deadline_at = started + settings.deadline

    def one(position: int) -> dict[str, Any]:
        try:
            completion = stream_chat(settings, messages, temperature=temperature, deadline_at=deadline_at,
                                     max_tokens=max_tokens)
        except LLMError as exc:
            return {"position": position, "error": exc.user_message.split(" Your quota")[0]}
        text = clean_output(completion.text, fmt)
        verdict = check(text, fmt, limit)
        return {"position": position, "text": text, "ok": verdict.ok and bool(text), "empty": not text,
                "length": verdict.length, "limit": verdict.limit,
                "offending_lines": [n + 1 for n in verdict.offending_lines],
                "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
                "model": completion.model}

    count = max(1, min(int(payload.get("variants", 1)), 5))
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
