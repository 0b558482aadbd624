"""The first run: `make run` does not wait for the local model, shows its progress, and queues meanwhile.

Real processes where it matters: the `wait` wrapper is run as a subprocess against a real HTTP port,
the progress goes through the real (embedded) Redis to the real pages.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scripts import local_model, run
from tests.generation.helpers import submit
from workers.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_compiler_lines_give_the_progress():
    assert local_model.parse_progress("  [112/193] /usr/bin/g++ -O3 -c x.cpp") == (112, 193)
    assert local_model.parse_progress("Building wheel for llama-cpp-python") is None


def test_make_run_starts_the_app_and_builds_the_local_model_beside_it(monkeypatch):
    env: dict[str, str] = {}
    procs = run.processes(env, instance=ROOT / "instance")
    assert procs["llm"].endswith("-m scripts.local_model serve --port 8008")
    # Workers take no job before the model answers; the web and stream servers start at once.
    assert " -m scripts.local_model wait " in procs["worker"] and procs["worker"].endswith("-m workers --workers 1")
    assert "local_model" not in procs["web"] and "local_model" not in procs["stream"]
    # The pool is sized for a model that answers one request at a time.
    assert (env["RQ_WORKERS"], env["WORKER_THREADS"], env["WEB_CONCURRENCY"]) == ("1", "4", "1")
    assert env["LLM_LOCAL_DRAFT"] == "1" and env["OPENAI_BASE_URL"] == "http://127.0.0.1:8008/v1"


def test_settings_left_empty_get_the_local_pool_and_set_ones_are_kept():
    env = {"RQ_WORKERS": "", "WORKER_THREADS": "8"}
    run.processes(env, instance=ROOT / "instance")
    assert (env["RQ_WORKERS"], env["WORKER_THREADS"]) == ("1", "8")


def test_a_configured_model_skips_the_local_one():
    env = {"OPENAI_API_KEY": "sk-test", "REDIS_URL": "redis://127.0.0.1:1/0"}
    procs = run.processes(env)
    assert "llm" not in procs and "local_model" not in procs["worker"]
    assert "RQ_WORKERS" not in env and "LLM_LOCAL_DRAFT" not in env


class _Models(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"data": []}')

    def log_message(self, *args):
        pass


def test_workers_wait_for_the_model_then_start():
    port = free_port()
    env = dict(os.environ, OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "scripts.local_model", "wait", sys.executable, "-c",
                             "print('worker started')"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    server = None
    try:
        assert "Workers wait for the local model" in proc.stdout.readline()  # nothing answers yet
        server = ThreadingHTTPServer(("127.0.0.1", port), _Models)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        assert proc.stdout.readline().strip() == "worker started"
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        if server is not None:
            server.shutdown()
            server.server_close()


@pytest.fixture
def preparing(app, monkeypatch):
    """The app as under `make run` with the local model still compiling (progress written by the builder)."""
    monkeypatch.setitem(app.config, "LLM_LOCAL_DRAFT", True)
    status = local_model.Status(app.config["REDIS_URL"])
    key = app.config["LOCAL_MODEL_STATUS_KEY"]
    monkeypatch.setattr(local_model, "STATUS_KEY", key)
    assert status.set("building", 112, 193)
    yield status
    app.extensions["redis"].delete(key)


def test_the_banner_shows_the_progress_in_plain_words(app, client, login, preparing):
    login()
    page = client.get("/templates").get_data(as_text=True)
    assert "Preparing the local model: 112/193." in page
    assert "connect OpenAI or your company" in page
    assert "OPENAI_" not in page  # settings names are for the operator's page and the README
    assert preparing.set("ready")
    page = client.get("/templates").get_data(as_text=True)
    assert "Preparing the local model" not in page and "small practice model" in page


def test_with_no_model_connected_the_first_page_says_so_in_plain_words(app, client, login, monkeypatch):
    monkeypatch.setitem(app.config, "OPENAI_API_KEY", None)
    monkeypatch.setitem(app.config, "OPENAI_BASE_URL", None)
    login()
    page = client.get("/templates").get_data(as_text=True)
    assert "No writing model is connected yet" in page and "connect OpenAI" in page
    assert "OPENAI_" not in page


def test_generations_wait_in_the_queue_while_the_model_is_prepared(app, client, login, preparing):
    login()
    generation_id = submit(client, app, "x-post", variants=1)
    pane = client.get(f"/generations/{generation_id}/variants").get_data(as_text=True)
    assert "Waiting for the local model to be ready (112/193)" in pane


def test_the_operator_page_says_how_to_connect_a_model(app, client, make_user, monkeypatch):
    from app.auth.models import User
    from app.extensions import db
    monkeypatch.setitem(app.config, "LLM_LOCAL_DRAFT", True)
    user_id = make_user("admin@example.com")
    with app.app_context():
        db.session.get(User, user_id).is_site_admin = True
        db.session.commit()
    client.post("/login", data={"email": "admin@example.com", "password": "correct-horse-battery"})
    page = client.get("/admin/llm").get_data(as_text=True)
    assert "OPENAI_API_KEY=sk-" in page and "OPENAI_BASE_URL=http://host:port/v1" in page
    assert "How to connect a model" in client.get("/templates").get_data(as_text=True)


def test_flask_commands_work_as_typed_from_the_repository_root():
    env = {k: v for k, v in os.environ.items() if k != "FLASK_APP"}
    result = subprocess.run([str(Path(sys.executable).parent / "flask"), "users", "--help"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "create" in result.stdout
