"""`make scale-demo`: Copydeck scaled out, and a worker host killed in the middle of a burst.

It starts, as separate processes (each in its own process group, like a host):
- one PostgreSQL database (SCALE_DEMO_DATABASE_URL, default test_outbox_demo on the local server; rebuilt);
- one Redis (SCALE_DEMO_REDIS_URL, or an embedded redis-server);
- the fake LLM (tests/fakes/openai_server.py), slowed so that generations are in flight;
- two web hosts (gunicorn, each on its own port) and two worker hosts (`python -m workers`).

Then it sends a burst of generations through both web hosts, like browsers (log in, CSRF, submit), SIGKILLs
one worker host while it holds generations, and waits until every generation has ended. It reports
whether each one reached `done` or was failed and refunded exactly once, and whether the quota ledger
charged anyone twice (`audit()`); the exit status is 1 if not.

A killed host's jobs are found by RQ's own abandoned-job detection (their started-registry lease,
JOB_TIMEOUT + 60 s for RQ's SimpleWorker, runs out), then failed and refunded by the surviving host's
maintenance round (workers/maintenance.py). JOB_TIMEOUT is 30 s here so the demo takes about two minutes.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_outbox_demo"
PASSWORD = "scale-demo-password"


class Host:
    """A process in its own process group, standing for one machine: killing it kills all it started."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the whole group, SIGKILL after the grace."""
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill(signal.SIGKILL)
        self.proc.wait(5)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def worker_host(name: str, env: dict[str, str], log_dir: Path) -> Host:
    return Host(name, [sys.executable, "-m", "workers"], env, log_dir)


def web_host(name: str, port: int, env: dict[str, str], log_dir: Path) -> Host:
    return Host(name, [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
                       "--workers", "1", "--worker-class", "gthread", "--threads", "16", "--timeout", "60"],
                env, log_dir)


def hosts_jobs(redis, queue_name: str, host: Host) -> list[str]:
    """Ids of the jobs RQ's started registry says a worker process of `host` is running."""
    from rq import Queue, Worker
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    ours = set()
    for worker in Worker.all(connection=redis):
        try:
            if worker.pid and os.getpgid(worker.pid) == host.pid:
                ours.add(worker.name)
        except ProcessLookupError:
            continue
    registry = StartedJobRegistry(queue=Queue(queue_name, connection=redis))
    jobs = Job.fetch_many(registry.get_job_ids(cleanup=False), connection=redis)
    return [job.id for job in jobs if job is not None and job.worker_name in ours]


@dataclass
class Audit:
    """What the database says after the run: how each generation ended, and whether quota adds up."""

    succeeded: int = 0
    failed: int = 0
    unfinished: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unfinished and not self.problems


def audit() -> Audit:
    """Check, in an app context, every generation and every quota ledger:
    - each generation is `succeeded` (its charges settled for exactly the variants stored) or `failed`
      (its charges refunded, no variant stored): nothing `queued`/`running`, no charge still `reserved`;
    - each ledger's `used` is the sum of its settled charges and nothing stays reserved, so no generation
      was charged twice nor refunded twice."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.generation.models import Generation, Variant
    from app.quota.models import QuotaCharge, QuotaLedger

    result = Audit()
    variants = dict(db.session.execute(
        select(Variant.generation_id, func.count()).group_by(Variant.generation_id)).all())
    charges: dict[int, list[QuotaCharge]] = {}
    for charge in db.session.scalars(select(QuotaCharge)):
        charges.setdefault(charge.generation_id, []).append(charge)
    for generation in db.session.scalars(select(Generation).order_by(Generation.id)):
        mine = charges.get(generation.id, [])
        stored = variants.get(generation.id, 0)
        if generation.status == "succeeded":
            result.succeeded += 1
            wrong = [c for c in mine if c.state != "settled" or c.amount != stored]
            if not mine or wrong or stored == 0:
                result.problems.append(f"generation {generation.id} succeeded with {stored} variants but charges "
                                       f"{[(c.state, c.amount) for c in mine]}")
        elif generation.status == "failed":
            result.failed += 1
            if not mine or any(c.state != "refunded" for c in mine) or stored:
                result.problems.append(f"generation {generation.id} failed but charges "
                                       f"{[(c.state, c.amount) for c in mine]}, {stored} variants")
        else:
            result.unfinished.append(generation.id)
    for ledger in db.session.scalars(select(QuotaLedger)):
        settled = sum(c.amount for cs in charges.values() for c in cs if c.ledger_id == ledger.id and c.state == "settled")
        held = sum(c.amount for cs in charges.values() for c in cs if c.ledger_id == ledger.id and c.state == "reserved")
        if ledger.used != settled or ledger.reserved != held:
            result.problems.append(f"ledger {ledger.id}: used {ledger.used} / reserved {ledger.reserved}, "
                                   f"but charges say {settled} / {held}")
    db.session.rollback()
    return result


class Browser:
    """One user's browser: a cookie session, the CSRF token from each form, redirects not followed."""

    def __init__(self, email: str):
        import requests

        self.email = email
        self.http = requests.Session()

    def _csrf(self, url: str) -> str:
        page = self.http.get(url, timeout=30)
        page.raise_for_status()
        return CSRF_RE.search(page.text).group(1)

    def log_in(self, base: str) -> None:
        response = self.http.post(f"{base}/login", data={
            "email": self.email, "password": PASSWORD, "csrf_token": self._csrf(f"{base}/login")},
            allow_redirects=False, timeout=30)
        if response.status_code != 302:
            raise RuntimeError(f"log-in of {self.email} on {base} failed: {response.status_code}")

    def generate(self, base: str, slug: str, form: dict[str, str]) -> int:
        data = {**form, "csrf_token": self._csrf(f"{base}/write/{slug}")}
        response = self.http.post(f"{base}/write/{slug}", data=data, allow_redirects=False, timeout=60)
        if response.status_code != 302:
            raise RuntimeError(f"submit on {base} answered {response.status_code}")
        return int(response.headers["Location"].rsplit("/", 1)[-1])


def _prepare_database(url: str) -> None:
    """Create the database if needed and empty it (it must be a scratch database: its name has 'test')."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    if "test" not in (target.database or ""):
        raise SystemExit(f"refusing to rebuild {target.database!r}: a scratch database's name must contain 'test'")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}):
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = create_engine(target)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _all_running(app, generation_ids: list[int]) -> bool:
    from sqlalchemy import select

    from app.extensions import db
    from app.generation.models import Generation

    with app.app_context():
        statuses = db.session.scalars(select(Generation.status).where(Generation.id.in_(generation_ids))).all()
        db.session.remove()
    return bool(statuses) and all(status == "running" for status in statuses)


def _wait_http(url: str, timeout: float, host: Host) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not host.alive():
            raise RuntimeError(f"{host.name} exited:\n{host.log_tail()}")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{host.log_tail()}")


def _free_port() -> int:
    from workers.embedded_redis import free_port

    return free_port()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--per-user", type=int, default=4, help="generations each user submits")
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for every generation to end")
    args = parser.parse_args()

    from tests.fakes.openai_server import FakeOpenAI
    from workers import embedded_redis

    workdir = Path(tempfile.mkdtemp(prefix="copydeck-scale-"))
    database_url = os.environ.get("SCALE_DEMO_DATABASE_URL", DEFAULT_DATABASE)
    redis_proc = None
    redis_url = os.environ.get("SCALE_DEMO_REDIS_URL")
    if not redis_url:
        redis_proc, redis_url = embedded_redis.start(workdir=str(workdir))
    fake = FakeOpenAI(ttft=0.3, token_delay=0.08, tokens=30).start()  # ~2.7 s per variant
    env = {
        **os.environ, "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "RQ_QUEUE": "scale-demo",
        "SECRET_KEY": "scale-demo-shared-secret",  # every web host must sign sessions alike
        "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "scale-demo", "OPENAI_MODEL": "fake-model",
        "JOB_TIMEOUT": "30", "LLM_DEADLINE": "10", "LLM_REQUEST_TIMEOUT": "5", "LLM_BACKOFF": "0.2",
        "MAINTENANCE_INTERVAL": "2", "RATELIMIT_ENABLED": "false", "RQ_WORKERS": "4",
        "MAIL_OUTBOX": str(workdir / "mail"),
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "RQ_QUEUE", "SECRET_KEY", "OPENAI_BASE_URL",
                                           "OPENAI_API_KEY", "JOB_TIMEOUT", "LLM_DEADLINE", "MAIL_OUTBOX")})
    print(f"database {database_url}\nredis    {redis_url}\nfake LLM {fake.base_url}\nlogs     {workdir}")
    _prepare_database(database_url)

    from flask_migrate import upgrade

    from app import create_app
    from app.auth import services as accounts
    from app.billing.services import seed_plans
    from app.catalog.services import seed_templates
    from app.extensions import db
    from app.generation.models import Generation
    from tests.generation.helpers import form_data

    app = create_app()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed_templates()
        seed_plans()
        emails = [f"scale{i}@example.com" for i in range(args.users)]
        for email in emails:
            accounts.sign_up(email, PASSWORD)
        db.session.commit()
        db.session.remove()
    form = form_data(app, "x-post", args.variants)

    hosts: list[Host] = []
    try:
        webs = []
        for name in ("web-a", "web-b"):
            port = _free_port()
            hosts.append(web_host(name, port, env, workdir))
            webs.append((hosts[-1], f"http://127.0.0.1:{port}"))
        workers_ = [worker_host(name, env, workdir) for name in ("worker-x", "worker-y")]
        hosts += workers_
        for host, base in webs:
            _wait_http(f"{base}/up", 60, host)
        print("hosts    " + ", ".join(f"{h.name} (pid {h.pid})" for h in hosts))

        browsers = [Browser(email) for email in emails]
        for browser in browsers:
            for _host, base in webs:
                browser.log_in(base)
        submitted: list[int] = []
        errors: list[str] = []
        lock = threading.Lock()

        def user(index: int, browser: Browser) -> None:
            for n in range(args.per_user):
                _host, base = webs[(index + n) % 2]  # alternate web hosts
                try:
                    generation_id = browser.generate(base, "x-post", form)
                    with lock:
                        submitted.append(generation_id)
                except Exception as exc:  # reported, and the demo fails
                    with lock:
                        errors.append(f"{browser.email}: {exc}")

        started = time.monotonic()
        threads = [threading.Thread(target=user, args=(i, b)) for i, b in enumerate(browsers)]
        [t.start() for t in threads]

        victim = workers_[0]
        redis = app.extensions["redis"]
        deadline = time.monotonic() + 60
        held: list[str] = []
        held_ids: list[int] = []
        while time.monotonic() < deadline and not (held_ids and _all_running(app, held_ids)):
            held = hosts_jobs(redis, env["RQ_QUEUE"], victim)
            held_ids = [int(job.rsplit("-", 1)[1]) for job in held]
            time.sleep(0.1)
        time.sleep(1.0)  # tokens are streaming when the host dies
        victim.kill(signal.SIGKILL)
        print(f"SIGKILL  {victim.name} at {time.monotonic() - started:.1f} s, in the middle of generation(s) "
              f"{', '.join(map(str, held_ids)) or 'none'}")
        [t.join() for t in threads]
        print(f"burst    {len(submitted)} generations submitted through {len(webs)} web hosts, "
              f"{len(errors)} errors")

        deadline = time.monotonic() + args.timeout
        with app.app_context():
            while True:
                result = audit()
                if not result.unfinished or time.monotonic() > deadline:
                    break
                print(f"  ... {result.succeeded} done, {result.failed} failed, {len(result.unfinished)} unfinished "
                      f"at {time.monotonic() - started:.0f} s")
                time.sleep(5)
            db.session.remove()
        with app.app_context():
            fates = {i: db.session.get(Generation, i).status for i in held_ids}
            db.session.remove()
        print("killed   " + ", ".join(f"generation {i}: {status}" for i, status in fates.items()))
        print(f"result   {result.succeeded} done, {result.failed} failed and refunded, "
              f"{len(result.unfinished)} unfinished, in {time.monotonic() - started:.0f} s")
        for problem in result.problems + errors:
            print(f"PROBLEM  {problem}")
        if result.unfinished:
            print(f"PROBLEM  unfinished generations: {result.unfinished}")
        ok = result.ok and not errors and len(submitted) == args.users * args.per_user
        print("scale-demo: OK, every generation done or failed and refunded exactly once, no double charge"
              if ok else "scale-demo: FAILED")
        return 0 if ok else 1
    finally:
        for host in hosts:
            host.stop()
        fake.stop()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
