"""Scale-out at small scale: a worker host SIGKILLed in the middle of generations loses nothing and
charges nobody twice (`make scale-demo` does the same with two web and two worker hosts).

The victim is a real `python -m workers` process group killed with SIGKILL while it runs two generations;
a second worker host runs what was still queued. RQ finds the victim's jobs abandoned when their lease
in the started registry runs out (JOB_TIMEOUT + 60 s): rather than wait, the test moves the clock past
it for the maintenance round it runs itself (under the same Redis lock as the survivor's).
"""
from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.core import utcnow
from app.extensions import db
from app.generation.models import Generation
from app.generation.recovery import INTERRUPTED
from scripts.scale_demo import audit, hosts_jobs, worker_host
from tests.generation.helpers import submit
from tests.outbox.test_outbox import _ledger
from tests.outbox.test_recovery import _final_events
from workers import maintenance


def _statuses(app) -> dict[int, str]:
    with app.app_context():
        rows = db.session.execute(select(Generation.id, Generation.status)).all()
        db.session.remove()
        return dict(rows)


def _wait(what, timeout: float, host=None):
    """Poll every half second: on SQLite each look takes the write lock for a moment (BEGIN IMMEDIATE),
    and polling faster would starve the workers' own writes on a loaded machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        if host is not None and not host.alive():
            pytest.fail(f"{host.name} exited:\n{host.log_tail()}")
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s" + (f"; {host.name} log:\n{host.log_tail()}" if host else ""))


@pytest.mark.slow
def test_a_worker_host_killed_mid_generation_loses_nothing_and_charges_nobody_twice(
        app, client, login, base_env, fake_llm, tmp_path):
    fake_llm.ttft, fake_llm.token_delay, fake_llm.tokens = 0.2, 0.1, 60  # about 6 s per variant
    login()
    ids = [submit(client, app, "x-post", variants=2) for _ in range(4)]
    # One job per worker process here, so the victim holds exactly two and the survivor runs the rest.
    env = {**os.environ, **base_env, "PYTHONUNBUFFERED": "1", "RQ_WORKERS": "2", "WORKER_THREADS": "1",
           "MAINTENANCE_INTERVAL": "1"}
    redis, queue_name = app.extensions["redis"], app.config["RQ_QUEUE"]
    victim = worker_host("worker-x", env, tmp_path)
    survivor = None
    try:
        held = _wait(lambda: (jobs := hosts_jobs(redis, queue_name, victim)) and len(jobs) == 2 and jobs, 30, victim)
        held_ids = sorted(int(job.rsplit("-", 1)[1]) for job in held)
        _wait(lambda: all(_statuses(app)[i] == "running" for i in held_ids), 30, victim)
        victim.kill()  # SIGKILL to the whole host: its pool and every worker process
        victim.proc.wait(10)

        survivor = worker_host("worker-y", env, tmp_path)
        others = [i for i in ids if i not in held_ids]
        _wait(lambda: all(_statuses(app)[i] == "succeeded" for i in others), 60, survivor)
        assert all(_statuses(app)[i] == "running" for i in held_ids)  # lease not out yet: left alone

        # The threaded worker's lease on a job: its timeout + 60 s, plus the shutdown grace it may use.
        past_lease = utcnow() + timedelta(seconds=app.config["JOB_TIMEOUT"] + 60 + app.config["WORKER_GRACE"] + 1)
        with time_machine.travel(past_lease, tick=True):
            _wait(lambda: maintenance.run_once(app), 30)  # the survivor may hold the lock for a moment
        statuses = _statuses(app)
        assert {i: statuses[i] for i in held_ids} == {i: "failed" for i in held_ids}
        with app.app_context():
            assert {db.session.get(Generation, i).error_message for i in held_ids} == {INTERRUPTED}
            result = audit()
            assert result.ok, result.problems
            assert (result.succeeded, result.failed) == (2, 2)
        assert all(_final_events(app, i) == ["failed"] for i in held_ids)  # open tabs stop waiting
        assert _ledger(app) == (4, 0)  # the two that ran, 2 variants each; the others refunded

        with time_machine.travel(past_lease + timedelta(minutes=5), tick=True):
            _wait(lambda: maintenance.run_once(app), 30)
        assert _ledger(app) == (4, 0) and all(_final_events(app, i) == ["failed"] for i in held_ids)  # once
    finally:
        victim.stop()
        if survivor is not None:
            survivor.stop()
