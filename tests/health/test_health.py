"""Liveness (/up), readiness (/up/ready) and the workers' own check (`flask workers health`)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from redis import Redis
from rq import SimpleWorker, Worker
from rq.utils import utcformat

import workers
from app.health.checks import live_worker_count

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_down(app):
    """The app's Redis swapped for one on a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    real = app.extensions["redis"]
    app.extensions["redis"] = Redis(port=port, socket_connect_timeout=0.5)
    yield
    app.extensions["redis"] = real


def test_up_answers_without_touching_any_dependency(client, redis_down):
    response = client.get("/up")
    assert response.status_code == 200 and response.json == {"status": "up"}


def test_up_does_not_depend_on_workers(client):
    assert client.get("/up").status_code == 200  # no worker registered in this test


def test_ready_checks_database_and_redis(client):
    response = client.get("/up/ready")
    assert response.status_code == 200
    assert response.json == {"database": "up", "redis": "up", "workers": 0, "status": "up"}


def test_ready_is_503_when_redis_is_down(client, redis_down):
    response = client.get("/up/ready")
    assert response.status_code == 503
    assert response.json["redis"] == "down" and response.json["database"] == "up"


def _register(app, name: str) -> SimpleWorker:
    worker = SimpleWorker([workers.queue(app)], connection=app.extensions["redis"], name=name)
    worker.register_birth()
    return worker


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_live_workers_are_counted(app, client):
    """A worker killed without a goodbye stays registered in RQ for minutes; it is not live."""
    redis = app.extensions["redis"]
    _register(app, "alive")
    silent = _register(app, "silent-for-ten-minutes")
    long_ago = datetime.now(timezone.utc) - timedelta(minutes=10)
    redis.hset(silent.key, "last_heartbeat", utcformat(long_ago))
    killed = _register(app, "killed-on-this-host")
    redis.hset(killed.key, "pid", _dead_pid())
    departed = _register(app, "registered-its-death")
    departed.register_death()

    assert Worker.count(connection=redis) >= 3  # what /up used to report
    assert live_worker_count(redis, app.config["WORKER_TTL"]) == 1
    assert client.get("/up/ready").json["workers"] == 1

    runner = app.test_cli_runner()
    result = runner.invoke(args=["workers", "health"])
    assert result.exit_code == 0, result.output
    assert "1 live worker(s)" in result.output and "alive on" in result.output
    assert "silent" not in result.output and "killed" not in result.output
    result = runner.invoke(args=["workers", "health", "--min", "2"])
    assert result.exit_code == 1 and "fewer than 2 live worker(s)" in result.output


def test_workers_health_fails_without_workers_and_when_redis_is_down(app, redis_down):
    result = app.test_cli_runner().invoke(args=["workers", "health"])
    assert result.exit_code == 2 and "cannot read workers from Redis" in result.output


def test_a_real_worker_killed_with_sigkill_stops_counting_at_once(app, base_env):
    """A real RQ worker process, a real SIGKILL: RQ still lists it, the health check does not."""
    redis = app.extensions["redis"]
    env = {**os.environ, **base_env}
    code = ("import workers; from app import create_app; from rq import SimpleWorker\n"
            "app = create_app()\n"
            "with app.app_context():\n"
            "    SimpleWorker([workers.queue(app)], connection=app.extensions['redis'], name='doomed').work()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while live_worker_count(redis, app.config["WORKER_TTL"]) < 1:
            assert proc.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker did not register"
            time.sleep(0.05)
        runner = app.test_cli_runner()
        assert runner.invoke(args=["workers", "health"]).exit_code == 0
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert Worker.count(connection=redis) == 1  # still registered
        result = runner.invoke(args=["workers", "health"])
        assert result.exit_code == 1 and "0 live worker(s), 1 stale registration(s)" in result.output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
