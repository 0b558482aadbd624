"""The row job (bulk queue) and what closes a row whose job was lost.

`run_row(row_id)` claims its row (queued -> running, one conditional UPDATE: a job that runs twice does
nothing the second time), makes the row's Generation through `generation.services.start` (which reserves
that row's quota) and runs it in this thread with the generation job's own code
(`generation.tasks.run_generation`, which settles or refunds it). Then the row is closed from its
generation (done or failed) in one conditional UPDATE that also gives the workspace's slot back, and the
next pending rows are handed out in the same transaction.

A worker killed mid-row: RQ's registry cleanup finds the row job abandoned and calls
`on_row_job_failure`, and `recover()` (each maintenance round) closes any row whose job is gone. A row
whose generation never finished is failed-and-refunded there and goes back to pending, so the run
resumes and the row is written once.
"""
from __future__ import annotations

import logging

from flask import current_app
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import select, update

from app.admin.model_policy import ModelNotAllowed
from app.auth.models import User
from app.bulk import services
from app.bulk.models import BulkRow, BulkRun
from app.core import required
from app.catalog.rendering import PromptError
from app.extensions import db
from app.generation import services as generation_services
from app.generation.models import Generation
from app.generation.recovery import INTERRUPTED, fail_and_refund
from app.knowledge import services as knowledge_base
from app.outbox import services as outbox
from app.quota.services import QuotaExceeded
from app.workspaces.models import Workspace
from app.jobs import job_app

log = logging.getLogger(__name__)

ALIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.CREATED)
QUOTA_PAUSE = "Paused: the quota ran out with rows still to write. Resume once there is quota again."


def run_row(row_id: int) -> str:
    """RQ entry point (bulk queue)."""
    app = job_app()
    with app.app_context():
        try:
            return _run_row(row_id)
        finally:
            db.session.remove()


def _return_row(row: BulkRow, run: BulkRun) -> str:
    """The run was paused or cancelled while this row waited in the queue: give its slot back."""
    if run.status == "cancelled":
        moved = services.move_row(row.id, ("queued",), "skipped", "Cancelled before it started; nothing charged.")
    else:
        moved = services.move_row(row.id, ("queued",), "pending")
    if moved:
        services.pump(run.workspace_id)
        services.maybe_finish(run.id)
    db.session.commit()
    return "returned"


def _run_row(row_id: int) -> str:
    row = db.session.get(BulkRow, row_id)
    if row is None:
        return "missing"
    run = required(db.session.get(BulkRun, row.run_id), f"bulk run {row.run_id}")  # the row's foreign key
    if row.status != "queued":
        db.session.rollback()
        return "not-queued"  # a second run of the job, or the row was closed meanwhile
    if run.status != "running":
        return _return_row(row, run)
    if not services.move_row(row.id, ("queued",), "running"):
        db.session.rollback()
        return "not-queued"
    db.session.commit()

    workspace = required(db.session.get(Workspace, run.workspace_id), f"workspace {run.workspace_id}")
    user = db.session.get(User, run.user_id) if run.user_id else None
    try:
        if user is None:
            raise generation_services.NoSeat()
        generation = generation_services.start(
            workspace=workspace, user=user, template=run.template, values=row.inputs, tone=row.tone,
            language=row.language, variant_count=row.variant_count, creativity=row.creativity,
            version=run.template_version, bulk_row_id=row.id, schedule=False,
            knowledge=knowledge_base.Choice(mode="auto"))  # each row grounded in the workspace's facts
    except QuotaExceeded:
        db.session.rollback()
        services.move_row(row_id, ("running",), "pending")
        db.session.execute(update(BulkRun).where(BulkRun.id == run.id, BulkRun.status == "running")
                           .values(status="paused", message=QUOTA_PAUSE))
        db.session.commit()
        return "paused"
    except generation_services.NoSeat:
        return _fail_row(row_id, run, "The person who started this run no longer has a seat in this workspace.")
    except ModelNotAllowed as exc:
        return _fail_row(row_id, run, f"{exc} Ask a workspace admin to update this template.")
    except PromptError as exc:
        return _fail_row(row_id, run, f"This row's prompt could not be prepared: {exc}")
    generation_id = generation.id
    db.session.commit()  # the generation and its reservation, before the generation's job runs

    from app.generation.tasks import run_generation
    result = run_generation(generation_id)
    if isinstance(result, Retry):
        # The worker is shutting down: the generation was handed back. Fail it (refunded) and put the row
        # back to pending, so the run writes it again on a worker that stays.
        from app.generation.streams import GenerationStream
        from app.generation.tasks import fail_and_refund as fail_generation
        stream = GenerationStream(current_app.extensions["redis"], generation_id,
                                  current_app.config["STREAM_TTL_SECONDS"])
        fail_generation(generation_id, INTERRUPTED, stream, ("queued", "running"))
        services.move_row(row_id, ("running",), "pending")
        services.pump(run.workspace_id)
        db.session.commit()
        return "interrupted"
    return close_row(row_id, generation_id)


def _fail_row(row_id: int, run: BulkRun, message: str) -> str:
    db.session.rollback()
    if services.move_row(row_id, ("running",), "failed", message):
        services.pump(run.workspace_id)
        services.maybe_finish(run.id)
    db.session.commit()
    return "failed"


def close_row(row_id: int, generation_id: int) -> str:
    """Close a running row from its finished generation (done or failed), once; hand out the next rows."""
    db.session.rollback()
    generation = db.session.get(Generation, generation_id)
    row = db.session.get(BulkRow, row_id)
    if generation is None or not generation.is_finished:
        return "open"
    if generation.status == "succeeded":
        moved = services.move_row(row_id, ("running",), "done", generation.error_message, generation_id)
    else:
        moved = services.move_row(row_id, ("running",), "failed", generation.error_message or "The generation failed.",
                                  generation_id)
    if moved and row is not None:  # moved: the row exists
        services.pump(row.workspace_id)
        services.maybe_finish(row.run_id)
    db.session.commit()
    return "done" if generation.status == "succeeded" else "failed"


def on_row_job_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback: the row job raised, or its worker died (abandoned). Reconcile the row."""
    row_id = job.args[0]
    app = job_app()
    with app.app_context():
        try:
            reconcile(row_id, job_dead=True)
        finally:
            db.session.remove()


def reconcile(row_id: int, job_dead: bool) -> str:
    """Settle a queued or running row whose job is gone.

    queued: back to pending (nothing was charged). running: by its latest generation: none -> pending;
    finished -> closed from it; unfinished -> failed and refunded (interrupted), and the row back to pending.
    """
    db.session.rollback()
    row = db.session.get(BulkRow, row_id)
    if row is None or row.status not in ("queued", "running") or not job_dead:
        return "nothing"
    if row.status == "queued":
        if services.move_row(row_id, ("queued",), "pending"):
            services.pump(row.workspace_id)
        db.session.commit()
        return "requeued"
    generation_id = db.session.scalar(select(Generation.id).where(Generation.bulk_row_id == row_id)
                                      .order_by(Generation.id.desc()).limit(1))
    if generation_id is not None:
        generation = required(db.session.get(Generation, generation_id), f"generation {generation_id}")
        if generation.is_finished and generation.error_message != INTERRUPTED:
            return close_row(row_id, generation_id)
        fail_and_refund(generation_id, INTERRUPTED)  # no-op if it had already failed that way
    if services.move_row(row_id, ("running",), "pending", None):
        services.pump(row.workspace_id)
    db.session.commit()
    log.warning("bulk row %s: its job was lost; back to pending", row_id)
    return "requeued"


def recover() -> int:
    """One maintenance round for bulk rows: RQ's abandoned-job detection on the bulk queue (its callback
    reconciles each row), then any queued or running row whose job is gone. Returns the rows it moved."""
    redis = current_app.extensions["redis"]
    queue = Queue(current_app.config["BULK_QUEUE"], connection=redis)
    # End the round's open transaction first: the cleanup's callbacks write in sessions of their own, and on
    # SQLite an open transaction here holds the write lock they wait for.
    db.session.commit()
    before = _in_flight()
    registry = StartedJobRegistry(queue=queue)
    if not before and not registry.get_job_count(cleanup=False):
        return 0  # the usual round: no bulk row anywhere, nothing abandoned
    registry.cleanup()
    for row_id, attempts in _in_flight():
        job_id = services.row_job_id(row_id, attempts)
        if outbox.is_pending(job_id):
            continue
        job = Job.fetch_many([job_id], connection=redis)[0]
        if job is not None and job.get_status(refresh=False) in ALIVE:
            continue
        reconcile(row_id, job_dead=True)
    after = _in_flight()
    db.session.commit()
    return sum(1 for key, status in before.items() if after.get(key) != status)


def _in_flight() -> dict[tuple[int, int], str]:
    """{(row id, attempt): status} of every queued or running row."""
    rows = db.session.execute(select(BulkRow.id, BulkRow.attempts, BulkRow.status).where(
        BulkRow.status.in_(("queued", "running")))).all()
    db.session.commit()
    return {(r.id, r.attempts): r.status for r in rows}
