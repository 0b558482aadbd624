"""gunicorn.conf.py: settings from the environment, and JSON access lines in production."""
from __future__ import annotations

import json
import os
import runpy
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "gunicorn.conf.py"


def _settings(monkeypatch, **env) -> dict:
    for name in ("WEB_BIND", "HOST", "PORT", "WEB_CONCURRENCY", "WEB_THREADS", "WEB_WORKER_CLASS", "WEB_TIMEOUT",
                 "WEB_GRACEFUL_TIMEOUT", "WEB_ACCESS_LOG", "COPYDECK_ENV", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults_are_the_ones_make_run_always_used(monkeypatch):
    settings = _settings(monkeypatch)
    assert settings["bind"] == "127.0.0.1:5000" and settings["worker_class"] == "gthread"
    assert (settings["workers"], settings["threads"], settings["timeout"], settings["graceful_timeout"]) == (2, 64, 60, 5)
    assert settings["accesslog"] == "-" and "logger_class" not in settings


def test_every_setting_comes_from_the_environment(monkeypatch):
    settings = _settings(monkeypatch, HOST="0.0.0.0", PORT="8000", WEB_CONCURRENCY="4", WEB_THREADS="16",
                         WEB_WORKER_CLASS="sync", WEB_TIMEOUT="30", WEB_GRACEFUL_TIMEOUT="25",
                         WEB_ACCESS_LOG="off", COPYDECK_ENV="production")
    assert settings["bind"] == "0.0.0.0:8000"
    assert (settings["workers"], settings["threads"], settings["worker_class"]) == (4, 16, "sync")
    assert (settings["timeout"], settings["graceful_timeout"], settings["accesslog"]) == (30, 25, None)
    assert settings["logger_class"].__name__ == "JsonLogger"


def test_a_malformed_number_names_the_variable(monkeypatch):
    with pytest.raises(SystemExit, match="WEB_THREADS must be a whole number, not 'many'"):
        _settings(monkeypatch, WEB_THREADS="many")


def test_make_run_starts_gunicorn_with_this_file():
    from scripts import run
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "PORT": "5123"}
    web = shlex.split(run.processes(env)["web"])
    assert web[1:4] == ["-m", "gunicorn", "-c"] and web[4] == str(CONF)
    assert web[-3:] == ["--bind", "127.0.0.1:5123", "wsgi:app"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_production_access_log_is_json_with_the_request_id(app, base_env, tmp_path):
    """A real gunicorn with the production settings serves /up and logs one JSON line for it."""
    port = _free_port()
    env = {**os.environ, **base_env, "COPYDECK_ENV": "production", "PORT": str(port), "WEB_CONCURRENCY": "1",
           "WEB_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(CONF), "wsgi:app"], cwd=REPO, env=env,
                                stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/up", headers={"X-Request-ID": "probe-1"})
                with urllib.request.urlopen(request, timeout=2) as response:
                    assert response.status == 200 and response.headers["X-Request-ID"] == "probe-1"
                    assert "Strict-Transport-Security" in response.headers
                break
            except OSError:
                assert proc.poll() is None, err.read_text()[-3000:]
                assert time.monotonic() < deadline, err.read_text()[-3000:]
                time.sleep(0.2)
        deadline = time.monotonic() + 10
        while "probe-1" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)
    access = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    probe = next(line for line in access if line.get("request_id") == "probe-1")
    assert probe["method"] == "GET" and probe["path"] == "/up" and probe["status"] == 200
    assert probe["logger"] == "gunicorn.access" and "duration_ms" in probe
    errors = [json.loads(line) for line in err.read_text().splitlines() if line.strip()]
    assert any("Listening at" in line["message"] for line in errors)  # gunicorn's own lines are JSON too
