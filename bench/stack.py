"""Start and stop a private Copydeck stack, the way `make run` does, for the benchmarks.

The process commands come from scripts/run.py's `processes()` (the same function
`make run` builds its Procfile with), so gunicorn's worker class, workers and
threads, the RQ pool size and the embedded Redis are exactly `make run`'s unless
overridden with BENCH_* variables. What differs, on purpose:
  * the LLM is the fake OpenAI server (OPENAI_BASE_URL), not the local model;
  * the database is SQLite in a temporary directory (DATABASE_URL), Redis runs on
    a free port with its files in that directory, gunicorn binds a free port;
  * the processes' output goes to log files in that directory instead of through
    honcho to the terminal.
Every process is started in its own process group, and `stop()` ends those groups
(SIGTERM, then SIGKILL after a grace period).
"""
from __future__ import annotations

import importlib.util
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")

# BENCH_* override -> the variable `make run` reads.
OVERRIDES = {
    "BENCH_RQ_WORKERS": "RQ_WORKERS",
    "BENCH_WEB_THREADS": "WEB_THREADS",
    "BENCH_WEB_WORKERS": "WEB_CONCURRENCY",
}
# Variables that would point the stack elsewhere, or change make run's defaults
# when they happen to be exported in the caller's shell.
SCRUBBED = (
    "REDIS_URL", "DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "LLM_LOCAL_DRAFT",
    "PORT", "HOST", "EMBEDDED_REDIS_PORT", "RQ_WORKERS", "WEB_THREADS", "WEB_CONCURRENCY",
    "RATELIMIT_STORAGE_URI", "MAIL_OUTBOX", "COPYDECK_ENV", "FLASK_ENV",
)


def make_run_module():
    """scripts/run.py, imported by path (scripts/ is not a package); importing it has no side effects."""
    spec = importlib.util.spec_from_file_location("copydeck_make_run", ROOT / "scripts" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f}s")


def group_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of every live process, summed by process group."""
    totals: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2:].split()
        # fields[0] is the state (field 3 of proc(5)): pgrp is field 5, utime/stime are 14/15.
        pgrp = int(fields[2])
        totals[pgrp] = totals.get(pgrp, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return totals


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class Stack:
    """fake LLM + embedded Redis + migrated SQLite + gunicorn + RQ worker pool."""

    def __init__(self, workdir: Path, *, ttft_ms: float, tokens: int, token_ms: float):
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.fake_args = ["--ttft-ms", str(ttft_ms), "--tokens", str(tokens), "--token-ms", str(token_ms)]
        self.procs: dict[str, subprocess.Popen] = {}
        self.commands: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.base_url = ""
        self.llm_url = ""
        self.db_path = workdir / "copydeck.db"
        self.rq_workers = 0

    # -- processes ---------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], **kwargs) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        kwargs.setdefault("stdout", log)
        proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True, **kwargs)
        log.close()
        self.procs[name] = proc
        return proc

    def _flask(self, *args: str) -> None:
        with open(self.logs / "migrate.log", "ab") as log:
            subprocess.run([PY, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=self.env,
                           stdout=log, stderr=log, stdin=subprocess.DEVNULL, check=True, timeout=120)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        for bench_name, name in OVERRIDES.items():
            if os.environ.get(bench_name):
                env[name] = os.environ[bench_name]
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env

        # 1. the fake LLM, on a port of its own choosing (it prints its base URL).
        fake = self._spawn("fake_llm", [PY, "-m", "tests.fakes.openai_server", "--port", "0", *self.fake_args],
                           stdout=subprocess.PIPE)
        ready, _, _ = select.select([fake.stdout], [], [], 20)
        line = fake.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http"):
            raise RuntimeError(f"the fake LLM did not start (see {self.logs / 'fake_llm.log'})")
        self.llm_url = line

        # 2. make run's process definitions, pointed at the fake LLM and a temporary database.
        web_port = free_port()
        env.update(
            PORT=str(web_port), HOST="127.0.0.1", EMBEDDED_REDIS_PORT=str(free_port()),
            OPENAI_BASE_URL=self.llm_url,
            DATABASE_URL=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{self.db_path}",
            MAIL_OUTBOX=str(self.workdir / "outbox"),
        )
        self.commands = make_run_module().processes(env, instance=self.workdir)
        missing = {"redis", "web", "worker"} - set(self.commands)
        if missing or "llm" in self.commands:
            raise RuntimeError(f"unexpected process set from scripts/run.py: {sorted(self.commands)}")
        self.rq_workers = int(self.commands["worker"].split("--workers", 1)[1].split()[0])

        self._spawn("redis", shlex.split(self.commands["redis"]))
        wait_port(int(env["EMBEDDED_REDIS_PORT"]), 15)
        self._flask("db", "upgrade")
        self._flask("seed")
        self._spawn("web", shlex.split(self.commands["web"]))
        nice = int(os.environ.get("BENCH_WORKER_NICE") or 0)  # an experiment; make run does not nice
        self._spawn("worker", (["nice", "-n", str(nice)] if nice else []) + shlex.split(self.commands["worker"]))
        self.base_url = f"http://127.0.0.1:{web_port}"
        self._wait_healthy(timeout=120)

    def _wait_healthy(self, timeout: float) -> None:
        """/up answers 200 and every RQ worker of the pool has registered."""
        deadline = time.monotonic() + timeout
        state: dict = {}
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} (see {self.logs / (name + '.log')})")
            try:
                with urllib.request.urlopen(self.base_url + "/up", timeout=2) as resp:
                    state = json.loads(resp.read())
                if state.get("workers", 0) >= self.rq_workers:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the stack is not healthy after {timeout:.0f}s: {state}")

    def stop(self, grace: float = 10.0) -> None:
        """End every process group we started: the app first, then Redis, then the fake LLM.

        SIGTERM, then SIGKILL for whatever is left in the group after `grace` seconds.
        """
        for names in (("worker", "web"), ("redis",), ("fake_llm",)):
            procs = [self.procs[n] for n in names if n in self.procs]
            for proc in procs:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + grace
            for proc in procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            for proc in procs:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the leader or any child still in the group
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                if proc.stdout:
                    proc.stdout.close()
        self.procs.clear()

    # -- measurements --------------------------------------------------------------------------
    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each component (whole process groups)."""
        by_group = group_cpu_seconds()
        return {name: by_group.get(proc.pid, 0.0) for name, proc in self.procs.items()}

    def profile(self, seconds: float, out_dir: Path, idle: bool = True, rate: int = 50) -> list[subprocess.Popen]:
        """Start py-spy (if on PATH) on the web and worker process trees for `seconds`.

        Writes collapsed stacks to out_dir/{web,worker}.txt: with `idle`, waiting
        threads are sampled too (where the wall-clock time goes), else only running ones.
        """
        spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
        if not os.path.exists(spy):
            raise RuntimeError("BENCH_PROFILE needs py-spy on PATH (pip install py-spy)")
        out_dir.mkdir(parents=True, exist_ok=True)
        spies = []
        for name in ("web", "worker"):
            spies.append(subprocess.Popen(
                [spy, "record", "--pid", str(self.procs[name].pid), "--subprocesses", *(["--idle"] if idle else []),
                 "--rate", str(rate), "--duration", str(int(seconds)), "--format", "raw", "--nonblocking",
                 "--output", str(out_dir / f"{name}.txt")],
                stdout=subprocess.DEVNULL, stderr=open(self.logs / f"py-spy-{name}.log", "ab")))
        return spies

    def describe(self) -> str:
        web = self.commands["web"]
        workers = web.split("--workers", 1)[1].split()[0]
        threads = web.split("--threads", 1)[1].split()[0]
        database = ("SQLite in a temp dir" if self.env["DATABASE_URL"].startswith("sqlite")
                    else self.env["DATABASE_URL"].split("://", 1)[0] + " (BENCH_DATABASE_URL)")
        nice = os.environ.get("BENCH_WORKER_NICE")
        return (f"gunicorn gthread {workers} workers x {threads} threads, "
                f"RQ SimpleWorker pool of {self.rq_workers}{f' (nice {nice})' if nice else ''}, "
                f"embedded Redis, {database}")
