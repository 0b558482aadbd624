"""The worker runtime for real: `python -m workers` processes, real signals, the fake LLM's slow profile.

Each test starts its own worker process (its own session, killed at the end) and checks what
the database, the quota ledger, RQ and the generation's Redis stream say afterwards.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Worker
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import select

import workers
from app.extensions import db
from app.generation.models import Generation
from app.generation.streams import partial_texts, stream_key
from app.quota.models import QuotaCharge
from tests.generation.helpers import ledger, load, submit

REPO = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """`python -m workers` in its own session, with its log kept for failures."""

    def __init__(self, app, base_env, tmp_root, *, processes: int = 1, threads: int = 8, grace: float = 20):
        self.redis = app.extensions["redis"]
        self.log_path = tmp_root / f"worker-{time.monotonic_ns()}.log"
        env = {**os.environ, **base_env, "PYTHONUNBUFFERED": "1", "WORKER_GRACE": str(grace)}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workers", "--workers", str(processes), "--threads", str(threads)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait(lambda: Worker.count(connection=self.redis) >= processes, "the workers to register")

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    def wait(self, condition, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; worker log:\n{self.log()}")
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def exit_code(self, timeout: float = 40) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit within {timeout}s; log:\n{self.log()}")

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


@pytest.fixture
def start_worker(app, base_env, tmp_root):
    started: list[WorkerProcess] = []

    def start(**kwargs) -> WorkerProcess:
        worker = WorkerProcess(app, base_env, tmp_root, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def _entries(app, generation_id: int) -> list[tuple[str, dict]]:
    with app.app_context():
        return [(fields[b"type"].decode(), json.loads(fields[b"data"]))
                for _id, fields in app.extensions["redis"].xrange(stream_key(generation_id))]


def _streaming(app, *generation_ids: int):
    """A condition: every one of these generations has shown a token."""
    return lambda: all(any(kind == "token" for kind, _ in _entries(app, g)) for g in generation_ids)


def _status(app, generation_id: int) -> str:
    with app.app_context():
        status = db.session.get(Generation, generation_id).status
        db.session.remove()
        return status


def _queued_job_ids(app) -> list[str]:
    with app.app_context():
        return workers.queue(app).job_ids


def test_one_process_holds_many_generations_at_once(app, client, login, fake_llm, start_worker):
    login()
    fake_llm.ttft = 1.0
    ids = [submit(client, app, "x-post", variants=1) for _ in range(5)]
    worker = start_worker(processes=1, threads=8)
    worker.wait(lambda: all(_status(app, g) == "succeeded" for g in ids), "the generations")
    requests = fake_llm.chat_requests
    assert len(requests) == 5
    # All five were in flight together, in the one worker process.
    assert max(r["started"] for r in requests) < min(r["finished"] for r in requests)
    assert Worker.count(connection=app.extensions["redis"]) == 1
    assert ledger(app) == (5, 0)


def test_sigterm_stops_claiming_and_lets_generations_in_flight_finish(app, client, login, fake_llm, start_worker):
    login()
    fake_llm.tokens, fake_llm.token_delay = 12, 0.25  # 3 s a generation
    running = [submit(client, app, "x-post", variants=1) for _ in range(2)]
    worker = start_worker(processes=1, threads=2, grace=20)
    worker.wait(_streaming(app, *running), "both generations to stream")
    waiting = submit(client, app, "x-post", variants=1)  # no free thread: stays on the queue
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 0
    for generation_id in running:
        assert load(app, generation_id).status == "succeeded"
        assert _entries(app, generation_id)[-1][0] == "done"
    assert _status(app, waiting) == "queued"
    assert _queued_job_ids(app) == [f"generation-{waiting}"]
    assert ledger(app) == (2, 1)  # the waiting one keeps its reservation for the next worker
    assert len(fake_llm.chat_requests) == 2


def test_past_the_grace_a_generation_is_requeued_once_and_its_stream_reset(
        app, client, login, fake_llm, start_worker, run_worker):
    login()
    fake_llm.tokens, fake_llm.token_delay = 60, 0.2  # 12 s: longer than the grace
    generation_id = submit(client, app, "x-post", variants=1)
    worker = start_worker(processes=1, threads=4, grace=1)
    worker.wait(_streaming(app, generation_id), "the generation to stream")
    worker.signal(signal.SIGTERM)
    assert worker.exit_code() == 0
    assert _status(app, generation_id) == "queued"
    assert ledger(app) == (0, 1)
    kinds = [kind for kind, _ in _entries(app, generation_id)]
    assert kinds[-1] == "reset" and "token" in kinds  # the browser drops the dead run's text
    assert _queued_job_ids(app) == [f"generation-{generation_id}"]

    fake_llm.tokens, fake_llm.token_delay = None, 0.0
    fake_llm.default_reply = lambda body: "The second run, complete."
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "succeeded" and generation.variants[0].text == "The second run, complete."
    assert ledger(app) == (1, 0)
    with app.app_context():
        assert partial_texts(app.extensions["redis"], generation_id, 1) == ["The second run, complete."]
        assert db.session.scalars(select(QuotaCharge)).one().state == "settled"


def test_interrupted_twice_a_generation_is_failed_and_refunded(app, client, login, fake_llm, start_worker):
    login()
    fake_llm.tokens, fake_llm.token_delay = 60, 0.2
    generation_id = submit(client, app, "x-post", variants=2)
    for _ in range(2):
        worker = start_worker(processes=1, threads=4, grace=1)
        seen = len(_entries(app, generation_id))
        worker.wait(lambda: any(k == "token" for k, _ in _entries(app, generation_id)[seen:]), "new tokens")
        worker.signal(signal.SIGTERM)
        assert worker.exit_code() == 0
    generation = load(app, generation_id)
    assert generation.status == "failed" and "interrupted" in generation.error_message
    assert ledger(app) == (0, 0)
    assert _entries(app, generation_id)[-1] == ("failed", {"message": generation.error_message})
    assert _queued_job_ids(app) == []
    with app.app_context():
        assert db.session.scalars(select(QuotaCharge)).one().state == "refunded"


def test_a_worker_killed_mid_generation_is_failed_and_refunded_by_rq_abandoned_job_handling(
        app, client, login, fake_llm, start_worker):
    login()
    fake_llm.tokens, fake_llm.token_delay = 60, 0.2
    generation_id = submit(client, app, "x-post", variants=1)
    worker = start_worker(processes=1, threads=4)
    worker.wait(_streaming(app, generation_id), "the generation to stream")
    worker.proc.send_signal(signal.SIGKILL)
    worker.exit_code()
    assert _status(app, generation_id) == "running"
    with app.app_context():
        # What RQ's maintenance does once the execution's heartbeat has expired.
        registry = StartedJobRegistry(app.config["RQ_QUEUE"], connection=app.extensions["redis"])
        registry.cleanup(timestamp=time.time() + 24 * 3600)
        registry.cleanup(timestamp=time.time() + 24 * 3600)  # a second pass finds nothing to do
        job = Job.fetch(f"generation-{generation_id}", connection=app.extensions["redis"])
        assert job.get_status() == "failed"
    generation = load(app, generation_id)
    assert generation.status == "failed" and "quota was not used" in generation.error_message
    assert ledger(app) == (0, 0)
    assert [kind for kind, _ in _entries(app, generation_id)].count("failed") == 1


def test_worker_processes_do_not_outlive_their_pool_parent(app, start_worker):
    from tests.workers.test_supervisor import alive, descendants

    worker = start_worker(processes=2, threads=2, grace=2)
    children = descendants(worker.proc.pid)
    assert len(children) >= 2
    worker.proc.send_signal(signal.SIGKILL)
    worker.exit_code()
    worker.wait(lambda: not any(alive(pid) for pid in children), "the pool's workers to exit")
