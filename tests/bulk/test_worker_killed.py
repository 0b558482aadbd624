"""A worker host SIGKILLed in the middle of a bulk run loses nothing: the run resumes on another host and
every row of the file is accounted for exactly once (done, failed or skipped), each done row by exactly one
generation that was charged once.

The victim is a real `python -m workers` process group killed with SIGKILL while it writes rows. Its row jobs
are abandoned in RQ's started registry until their lease runs out (JOB_TIMEOUT + 60 s); rather than wait,
the test moves the clock past it for one maintenance round, as tests/outbox/test_worker_host_killed.py does.
"""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.core import utcnow
from app.bulk.models import BulkRow, BulkSlots
from app.extensions import db
from app.generation.models import Generation
from scripts.scale_demo import audit, worker_host
from tests.bulk.conftest import csv_bytes, product_rows, start, run_counts
from tests.generation.helpers import ledger
from tests.outbox.test_worker_host_killed import _wait
from workers import maintenance

ROWS = 14




@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_no_row_and_charges_each_once(app, client, business, base_env, fake_llm,
                                                                     tmp_path):
    fake_llm.ttft, fake_llm.token_delay, fake_llm.tokens = 0.2, 0.05, 30  # about 1.7 s per row
    rows = product_rows(ROWS - 2) + [["", "invalid: no name", "x"], ["Mug 1", "Stoneware, 1 ml, dishwasher safe",
                                                                      "Coffee lovers"]]
    run_id = start(client, csv_bytes(rows))
    env = {**os.environ, **base_env, "PYTHONUNBUFFERED": "1", "RQ_WORKERS": "1", "WORKER_THREADS": "4",
           "MAINTENANCE_INTERVAL": "600"}
    victim = worker_host("worker-x", env, tmp_path)
    survivor = None
    try:
        # Some rows done and some being written: kill it there.
        _wait(lambda: (c := run_counts(app, run_id)[1]).get("done", 0) >= 2 and c.get("running", 0) >= 1, 60, victim)
        victim.kill()  # SIGKILL to the whole host group
        victim.proc.wait(10)
        status, counts = run_counts(app, run_id)
        assert status == "running" and counts.get("running", 0) >= 1
        app.extensions["redis"].delete(maintenance.LOCK_KEY)  # the dead host's lock would only expire later

        past_lease = utcnow() + timedelta(seconds=app.config["JOB_TIMEOUT"] + 60 + app.config["WORKER_GRACE"] + 1)
        with time_machine.travel(past_lease, tick=True):
            report = _wait(lambda: maintenance.run_once(app), 30)
        assert report.bulk_rows_reconciled >= 1
        assert run_counts(app, run_id)[1].get("running", 0) == 0  # the dead host's rows are back to pending

        survivor = worker_host("worker-y", env, tmp_path)
        _wait(lambda: run_counts(app, run_id)[0] == "finished", 120, survivor)
    finally:
        victim.stop()
        if survivor is not None:
            survivor.stop()

    status, counts = run_counts(app, run_id)
    # every row of the file exactly once: 13 written (a repeated row within one file is written again; only
    # rows done in an earlier run are skipped), the invalid one skipped
    assert counts == {"done": ROWS - 1, "skipped": 1}
    with app.app_context():
        done_rows = db.session.scalars(select(BulkRow).where(BulkRow.run_id == run_id, BulkRow.status == "done")).all()
        succeeded = db.session.execute(select(Generation.bulk_row_id, func.count()).where(
            Generation.status == "succeeded", Generation.bulk_row_id.is_not(None)).group_by(Generation.bulk_row_id)).all()
        assert dict(succeeded) == {row.id: 1 for row in done_rows}  # one generation per row, none twice
        assert all(db.session.get(Generation, row.generation_id).status == "succeeded" for row in done_rows)
        result = audit()  # every generation's charges add up: none charged twice, the interrupted ones refunded
        assert result.ok, result.problems
        # The rows the victim was writing, if it had recorded their generations by then: those generations are
        # failed and refunded, and the row was written again by the survivor (how many depends on the instant
        # of the kill, so the count is checked against the rows, not fixed).
        statuses = db.session.scalars(select(Generation.status).where(
            Generation.bulk_row_id.in_([row.id for row in done_rows]))).all()
        assert set(statuses) <= {"succeeded", "failed"} and statuses.count("succeeded") == len(done_rows)
        assert result.failed == statuses.count("failed")
        assert db.session.get(BulkSlots, business).in_flight == 0
    assert ledger(app) == (ROWS - 1, 0)
