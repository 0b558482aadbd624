"""Browser fixtures: the real app served over HTTP, real RQ workers, headless Chromium.

- ``live_server``: the session's Flask ``app`` served by werkzeug in a thread.
- ``worker_process``: ``python -m workers --workers 2`` as a subprocess, with the
  same environment (``base_env``) as the in-process app, so jobs enqueued by the
  live server run against the same database, Redis and fake LLM.
- ``browser`` / ``context`` / ``page``: Debian's Chromium (/usr/bin/chromium)
  driven by Playwright's sync API; a new context per test, a screenshot in
  /tmp/copydeck-shots/ when a test fails.
- ``page_problems`` (autouse): every context a test opens is watched for
  Content-Security-Policy violations, console errors and uncaught exceptions,
  and a test that passed with any of them fails.

Without /usr/bin/chromium the browser tests are skipped, except under CI=true,
where they fail instead.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
SHOTS = Path("/tmp/copydeck-shots")
TIMEOUT_MS = 10_000

expect.set_options(timeout=TIMEOUT_MS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --------------------------------------------------------------------------- server


@pytest.fixture(scope="session")
def live_server(app):
    """The app on http://127.0.0.1:<free port>, served from a daemon thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


# --------------------------------------------------------------------------- worker


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            # start_new_session gave the pool and its children their own process group.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def worker_process(app, base_env, tmp_root):
    """A real RQ worker pool (2 SimpleWorkers) reading the test queue.

    Module-scoped, on purpose:
    - not per test: the per-test ``flushdb`` of tests/conftest.py deletes RQ's
      worker registration keys, but the workers keep BLPOP-ing the queue key, so
      jobs enqueued by later tests still run (every journey after the first relies
      on it), and starting the pool costs ~1-2 s;
    - not per session: a pool left running after this module would take the jobs
      that the other test modules enqueue and run themselves with a burst
      ``SimpleWorker`` (the ``run_worker`` fixture), and break them.
    """
    from rq import Worker

    redis = app.extensions["redis"]
    log_path = tmp_root / "browser-worker.log"
    env = {**os.environ, **base_env, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers", "--workers", "2"],
            cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a stuck pool can be killed whole
        )
    try:
        deadline = time.monotonic() + 20
        while Worker.count(connection=redis) < 2:
            if proc.poll() is not None:
                pytest.fail(f"the RQ worker exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the RQ worker did not register within 20 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        proc.log_path = log_path
        yield proc
    finally:
        _stop(proc)
    if proc.returncode not in (0, -signal.SIGTERM):
        print(f"RQ worker exited with {proc.returncode}; log:\n{log_path.read_text()[-3000:]}")


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is not installed (apt-get install chromium); browser tests need it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " - and CI=true, so this is a failure, not a skip", pytrace=False)
        pytest.skip(reason)
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    finally:
        pw.stop()


@pytest.fixture
def context(browser, live_server):
    context = browser.new_context(base_url=live_server)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  window.__copydeckCspViolation("CSP violation: " + e.violatedDirective + " blocked "
    + (e.blockedURI || "inline code") + " (on " + document.location.pathname + ")");
});
"""


def console_problem(message) -> str | None:
    """A console message that means the page is broken: a CSP violation or a script error.

    Chrome also logs every 4xx/5xx answer as "Failed to load resource"; those are the app's
    answers (a 422 form, a 404 fragment) that the tests check themselves, so they pass here.
    """
    text = message.text
    if "Content Security Policy" in text:
        return f"CSP violation: {text}"
    if message.type == "error" and not text.startswith("Failed to load resource: the server responded"):
        return f"console error: {text}"
    return None


def watch(context, problems: list[str]) -> None:
    """Record CSP violations, console errors and uncaught exceptions of every page of `context`."""
    def on_console(message) -> None:
        problem = console_problem(message)
        if problem:
            problems.append(f"{problem} (on {message.page.url if message.page else '?'})")

    context.on("console", on_console)
    context.on("weberror", lambda error: problems.append(f"uncaught error: {error.error}"))
    # Chrome does not always put CSP reports on the console: listen for the DOM event as well.
    context.expose_binding("__copydeckCspViolation", lambda source, text: problems.append(text))
    context.add_init_script(CSP_LISTENER)


@pytest.fixture(autouse=True)
def page_problems(request, browser, monkeypatch):
    """Every browser context a test opens is watched; a test that passed with problems fails."""
    problems: list[str] = []
    new_context = browser.new_context

    def watched_context(*args, **kwargs):
        context = new_context(*args, **kwargs)
        watch(context, problems)
        return context

    monkeypatch.setattr(browser, "new_context", watched_context)
    yield problems
    passed = getattr(request.node, "rep_call", None)
    if passed is not None and passed.passed and problems:
        pytest.fail("the pages reported problems:\n" + "\n".join(dict.fromkeys(problems)), pytrace=False)


@pytest.fixture
def page(context, request):
    """A fresh page; JavaScript errors are collected in ``page.js_errors``."""
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        try:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
        except Exception as exc:  # noqa: BLE001 - a missing screenshot must not hide the failure
            print(f"could not save a screenshot: {exc!r}")

