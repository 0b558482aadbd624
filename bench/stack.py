"""Start and stop a private Copydeck stack, the way `make run` does, for the benchmarks.

The process commands come from scripts/run.py's `processes()` (the same function
`make run` builds its Procfile with), so the page server (gunicorn gthread), the
live-stream server (gunicorn gevent), the worker runtime (`python -m workers`, sized
by its own settings from the environment, so the bench measures whatever runtime is
in the tree) and the embedded Redis are exactly `make run`'s unless overridden with
BENCH_* variables or settings exported to the bench. What differs, on purpose:
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
    "PORT", "HOST", "EMBEDDED_REDIS_PORT", "STREAM_PORT", "RQ_WORKERS", "WEB_THREADS", "WEB_CONCURRENCY",
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


def _process_stats() -> list[tuple[int, int, list[bytes]]]:
    """(pid, process group, /proc/<pid>/stat fields from field 3 on) of every live process."""
    stats = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2:].split()
        # fields[0] is the state (field 3 of proc(5)): pgrp is field 5.
        stats.append((int(entry.name), int(fields[2]), fields))
    return stats


def group_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of every live process and its reaped children, by process group.

    utime/stime are fields 14/15 of proc(5); cutime/cstime (16/17) hold children that
    exited and were waited for, which no longer appear as processes of their own.
    """
    totals: dict[int, float] = {}
    for _pid, pgrp, fields in _process_stats():
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        totals[pgrp] = totals.get(pgrp, 0.0) + ticks / CLK_TCK
    return totals


def group_pss_mib(pgrp: int) -> float:
    """Proportional set size of every process in a process group, in MiB (smaps_rollup)."""
    total_kb = 0
    for pid, group, _fields in _process_stats():
        if group != pgrp:
            continue
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total_kb += int(line.split()[1])
                        break
        except OSError:
            continue
    return total_kb / 1024.0


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
        self.rq_workers = 0        # RQ workers the worker runtime registered
        self.stream_url = ""       # where live streams are opened (the stream server, if make run has one)

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
            PORT=str(web_port), HOST="127.0.0.1", EMBEDDED_REDIS_PORT=str(free_port()), STREAM_PORT=str(free_port()),
            OPENAI_BASE_URL=self.llm_url,
            DATABASE_URL=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{self.db_path}",
            MAIL_OUTBOX=str(self.workdir / "outbox"),
        )
        self.commands = make_run_module().processes(env, instance=self.workdir)
        missing = {"redis", "web", "worker"} - set(self.commands)
        if missing or "llm" in self.commands:
            raise RuntimeError(f"unexpected process set from scripts/run.py: {sorted(self.commands)}")

        self._spawn("redis", shlex.split(self.commands["redis"]))
        wait_port(int(env["EMBEDDED_REDIS_PORT"]), 15)
        self._flask("db", "upgrade")
        self._flask("seed")
        if os.environ.get("BENCH_STREAM_SERVER") == "0":  # an experiment: streams on the page server
            self.commands.pop("stream", None)
            env.pop("STREAM_PORT", None)
        self._spawn("web", shlex.split(self.commands["web"]))
        if "stream" in self.commands:
            self._spawn("stream", shlex.split(self.commands["stream"]))
            self.stream_url = f"http://127.0.0.1:{env['STREAM_PORT']}"
        # The worker runtime as make run starts it (`python -m workers`, its settings from the env).
        nice = int(os.environ.get("BENCH_WORKER_NICE") or 0)  # an experiment; make run does not nice
        self._spawn("worker", (["nice", "-n", str(nice)] if nice else []) + shlex.split(self.commands["worker"]))
        self.base_url = f"http://127.0.0.1:{web_port}"
        self.stream_url = self.stream_url or self.base_url
        self._wait_healthy(timeout=120)

    def _wait_healthy(self, timeout: float) -> None:
        """Pages and streams answer, and the worker runtime's RQ workers have registered.

        However many workers the runtime registers, their number must hold still for 2 s.
        """
        from redis import Redis
        from rq import Worker

        redis = Redis.from_url(self.env["REDIS_URL"])
        deadline = time.monotonic() + timeout
        seen, steady_since = -1, time.monotonic()
        try:
            while time.monotonic() < deadline:
                for name, proc in self.procs.items():
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited with {proc.returncode} (see {self.logs / (name + '.log')})")
                try:
                    for url in {self.base_url, self.stream_url}:
                        with urllib.request.urlopen(url + "/login", timeout=5) as resp:
                            resp.read()
                    count = Worker.count(connection=redis)
                except OSError:
                    count = -1
                if count != seen:
                    seen, steady_since = count, time.monotonic()
                elif count > 0 and time.monotonic() - steady_since >= 2.0:
                    self.rq_workers = count
                    return
                time.sleep(0.25)
        finally:
            redis.close()
        raise RuntimeError(f"the stack is not healthy after {timeout:.0f}s ({seen} RQ workers registered)")

    def stop(self, grace: float = 10.0) -> None:
        """End every process group we started: the app first, then Redis, then the fake LLM.

        SIGTERM, then SIGKILL for whatever is left in the group after `grace` seconds.
        """
        for names in (("worker", "web", "stream"), ("redis",), ("fake_llm",)):
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

    def pss_mib(self, name: str) -> float:
        """PSS of one component's whole process group, in MiB."""
        return group_pss_mib(self.procs[name].pid)

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
        for name in ("web", "stream", "worker"):
            if name not in self.procs:
                continue
            spies.append(subprocess.Popen(
                [spy, "record", "--pid", str(self.procs[name].pid), "--subprocesses", *(["--idle"] if idle else []),
                 "--rate", str(rate), "--duration", str(int(seconds)), "--format", "raw", "--nonblocking",
                 "--output", str(out_dir / f"{name}.txt")],
                stdout=subprocess.DEVNULL, stderr=open(self.logs / f"py-spy-{name}.log", "ab")))
        return spies

    def describe(self) -> str:
        # The page server reads its size from gunicorn.conf.py, which reads the environment.
        workers = self.env.get("WEB_CONCURRENCY") or "2"
        threads = self.env.get("WEB_THREADS") or "64"
        database = ("SQLite in a temp dir" if self.env["DATABASE_URL"].startswith("sqlite")
                    else self.env["DATABASE_URL"].split("://", 1)[0] + " (BENCH_DATABASE_URL)")
        nice = os.environ.get("BENCH_WORKER_NICE")
        stream = ("stream server: " + self.commands["stream"].split(" -m gunicorn ", 1)[1].split(" --bind")[0]
                  if "stream" in self.commands else "no stream server")
        worker = self.commands["worker"].split(" -m ", 1)[-1]
        return (f"gunicorn gthread {workers} workers x {threads} threads; {stream}; "
                f"`{worker}` ({self.rq_workers} RQ workers registered){f' (nice {nice})' if nice else ''}; "
                f"embedded Redis; {database}")
