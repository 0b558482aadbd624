"""`make bench` / `python -m bench.run`: Copydeck's streaming overhead and burst latency.

Against the fake LLM (200 ms to the first token, then 50 tokens 20 ms apart) it
measures, in one run, on a private stack started the way `make run` starts it:
  (a) one 1-variant generation through the app (submit the form, follow the SSE
      stream) against one direct streaming call with the openai client, N times
      alternating: time to first token and total, medians;
  (b) 100 users who each submit one generation at the same instant and follow
      its stream to the end: submit-to-done p50/p95 and errors, and the stack's CPU
      (web, stream server, workers, Redis) per generation against the CPU the bare
      openai client spent on one direct call in (a);
  (c) the same with 300 users (1 variant each), sampling the worker runtime's memory
      (PSS) against the number of generations in flight.
The very last line of stdout is
  ttft_added_ms=<n> total_ratio=<x> burst_p95_ratio=<x> burst_errors=<n> burst300_p95_ratio=<x>
  burst300_errors=<n> cpu_ratio=<x> cpu_ms_per_gen=<n> mib_per_inflight=<x>
  then, when measured: bulk_interactive_ratio=<x> bulk_rows_per_s=<x> claims_precision=<x> claims_recall=<x>
  api_ttft_added_ms=<n> and the first hour's keys (bench/footprint.py)
(on one line); (d), bench/bulk.py: (a) again while a BENCH_BULK_ROWS-row bulk run is in progress;
api_ttft_added_ms: the same TTFT through /api/v1, bench/api.py.
`python -m bench.run --only bulk` runs (a) and (d) alone (its last line has the keys those give). See bench/README.md for the method and the recorded figures.

Settings (environment):
  BENCH_RQ_WORKERS, BENCH_WEB_THREADS, BENCH_WEB_WORKERS   override make run's
      RQ_WORKERS, WEB_THREADS (64), WEB_CONCURRENCY (2); default: make run's defaults.
      Any other setting exported to the bench (e.g. the worker runtime's own knobs)
      reaches every process of the stack.
  BENCH_USERS (100)            users in the burst (b)
  BENCH_USERS300 (300)         users in the burst (c); 0 skips it
  BENCH_STREAM_SERVER=0        no live-stream server: streams go to the page server (an experiment)
  BENCH_WARMUP (40)            generations run at once to warm the stack up before measuring
  BENCH_RUNS (8)               app/direct pairs in (a), at most 18 (one Free user's quota)
  BENCH_TEMPLATE (instagram-caption)   seeded template to generate with
  BENCH_BURST_VARIANTS (1)     variants per burst generation ("default" = the template's)
  BENCH_CLIENT_PROCS (1)       load-generator processes for the burst
  BENCH_TIMEOUT (60)           seconds before a generation counts as timed out
  BENCH_KEEP=1                 keep the temporary directory (database, logs)
  BENCH_QUIET_WAIT (60)        seconds to wait, before the burst, for other processes on the
                               machine to go quiet (0: do not wait)
  BENCH_PROFILE=1 or cpu       record the burst with py-spy (must be installed; it slows the
                               stack down, so its figures are not comparable) into
                               bench/results/profile-*/{web,worker}.txt (collapsed stacks;
                               1: every thread, waiting or not; cpu: running threads only)
  BENCH_PROFILE_SECONDS (12)   how long py-spy records from the burst's start
  BENCH_WORKER_NICE (0)        run the RQ pool under `nice -n N` (an experiment: make run does not)
  BENCH_BULK_ROWS (1000)       rows of the bulk run in (d); 0 skips (d)
  BENCH_ONLY=api               only the API's figure (bench/api.py): no warm-up burst, no (a)/(b)/(c);
                               the last line is then `api_ttft_added_ms=<n>`
  BENCH_API_RUNS (8)           API/direct pairs for api_ttft_added_ms
  BENCH_DATABASE_URL           an empty database to use instead of SQLite in the temp dir
                               (e.g. a scratch PostgreSQL, to compare; it is migrated, not cleaned)
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from bench import api as api_bench
from bench.client import Timing, User, default_variants, direct_call, run_burst, template_form
from bench.stack import Stack, machine_busy_seconds
from bench.footprint import first_hour_figures, first_hour_keys

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

# The fixed profile of the issue: 200 ms to the first token, then 50 tokens at 20 ms.
TTFT_MS, TOKENS, TOKEN_MS = 200, 50, 20
TARGETS = {"ttft_added_ms": 30, "total_ratio": 1.03, "burst_p95_ratio": 2.0, "burst_errors": 0,
           "burst300_p95_ratio": 3.0, "burst300_errors": 0, "cpu_ratio": 1.0, "mib_per_inflight": 5.0,
           "bulk_interactive_ratio": 1.2}
STACK = ("web", "stream", "worker", "redis")  # the components whose CPU is the stack's


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _git_commit() -> str:
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app", "workers", "scripts", "wsgi.py"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+uncommitted changes" if dirty else "")


def _parse_ts(value) -> datetime | None:
    if isinstance(value, datetime) or value is None:
        return value
    return datetime.fromisoformat(value)


def db_rows(url: str, ids: list[int]) -> dict[int, dict]:
    """The generations' rows, read straight from the stack's database."""
    from sqlalchemy import create_engine, text

    if url.startswith(("postgres://", "postgresql://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = create_engine(url)
    try:
        rows = {}
        with engine.connect() as con:
            for start in range(0, len(ids), 500):
                chunk = [int(i) for i in ids[start:start + 500]]
                query = text(f"SELECT * FROM generations WHERE id IN ({','.join(map(str, chunk))})")
                for row in con.execute(query).mappings():
                    rows[row["id"]] = dict(row)
        return rows
    finally:
        engine.dispose()


def server_phases(rows: dict[int, dict]) -> dict[str, list[float]]:
    """Queue wait (created -> job started) and job run (started -> finished), in ms."""
    waits, runs = [], []
    for row in rows.values():
        created, started, finished = (_parse_ts(row.get(k)) for k in ("created_at", "started_at", "finished_at"))
        if created and started:
            waits.append((started - created).total_seconds() * 1000)
        if started and finished:
            runs.append((finished - started).total_seconds() * 1000)
    return {"queue_wait": waits, "job_run": runs}


def fmt_ms(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:,.0f}"


class Bench:
    def __init__(self) -> None:
        self.users_n = _env_int("BENCH_USERS", 100)
        self.users300 = _env_int("BENCH_USERS300", 300)
        self.bulk_rows = _env_int("BENCH_BULK_ROWS", 1000)
        self.warmup = _env_int("BENCH_WARMUP", 40)
        self.runs = _env_int("BENCH_RUNS", 8)
        if not 1 <= self.runs <= 18:  # one user: 20 Free generations a month, one is the warm-up
            raise SystemExit("BENCH_RUNS must be from 1 to 18")
        self.slug = os.environ.get("BENCH_TEMPLATE") or "instagram-caption"
        variants = os.environ.get("BENCH_BURST_VARIANTS") or "1"
        self.burst_variants = default_variants(self.slug) if variants == "default" else int(variants)
        self.client_procs = _env_int("BENCH_CLIENT_PROCS", 1)
        self.timeout = float(os.environ.get("BENCH_TIMEOUT") or 60)
        self.keep = os.environ.get("BENCH_KEEP") == "1"
        self.quiet_wait = float(os.environ.get("BENCH_QUIET_WAIT") or 60)
        self.profile_seconds = float(os.environ.get("BENCH_PROFILE_SECONDS") or 12)
        self.profile_dir = (RESULTS / ("profile-" + time.strftime("%Y%m%d-%H%M%S"))
                            if os.environ.get("BENCH_PROFILE") in ("1", "cpu") else None)
        self.workdir = Path(tempfile.mkdtemp(prefix="copydeck-bench-"))
        self.stack = Stack(self.workdir, ttft_ms=TTFT_MS, tokens=TOKENS, token_ms=TOKEN_MS)
        self.report: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                             "commit": _git_commit(),
                             "template": self.slug, "profile": {"ttft_ms": TTFT_MS, "tokens": TOKENS,
                                                                "token_ms": TOKEN_MS}}

    # -- setup -------------------------------------------------------------------------------
    def sign_up(self) -> tuple[User, list[User]]:
        """The single user of (a) and the burst users (the first BENCH_USERS of them take part in (b))."""
        base, streams = self.stack.base_url, self.stack.stream_url
        single = User(base, 0, self.timeout, streams)
        burst = [User(base, i + 1, self.timeout, streams) for i in range(max(self.users_n, self.users300))]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda u: u.signup(), [single, *burst]))
        return single, burst

    def warm_up(self, single: User, burst: list[User], form1: dict) -> Timing:
        """BENCH_WARMUP generations at once (workers build their openai client, HTTP and database
        connections on their first jobs; a forked pool hands jobs round all its processes),
        then one more for (a)."""
        warm = burst[: min(self.warmup, len(burst))]
        for user in [single, *warm]:
            user.prepare(self.slug)
        results: list[Timing] = []
        lock = threading.Lock()

        def go(user: User) -> None:
            timing = user.generate(self.slug, form1)
            with lock:
                results.append(timing)

        threads = [threading.Thread(target=go, args=(u,)) for u in warm]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        bad = [t.outcome for t in results if not t.ok]
        if bad:
            log(f"warm-up: {len(bad)} of {len(results)} generations did not finish: {sorted(set(bad))[:3]}")
        first = single.generate(self.slug, form1)
        if not first.ok:
            raise RuntimeError(f"warm-up generation failed: {first.outcome}")
        return first

    # -- (a) -------------------------------------------------------------------------------------
    def single(self, user: User, form1: dict, sample: Timing) -> dict:
        import openai

        row = db_rows(self.stack.env["DATABASE_URL"], [sample.generation_id])[sample.generation_id]
        messages = [{"role": "system", "content": row["system_prompt"]},
                    {"role": "user", "content": row["user_prompt"]}]
        model, temperature = row["model"], row["creativity"]
        max_tokens = int(os.environ.get("LLM_MAX_TOKENS") or 800)
        client = openai.OpenAI(base_url=self.stack.llm_url, api_key="bench", max_retries=0, timeout=30)
        direct_call(client, model, messages, temperature, max_tokens)  # warm the client and its connection

        # The stack's idle CPU (RQ heartbeats, gunicorn, Redis), to subtract from (a)'s.
        idle0, idle_t0 = self.stack.cpu_seconds(), time.monotonic()
        time.sleep(3.0)
        idle1, idle_t1 = self.stack.cpu_seconds(), time.monotonic()
        idle_rate = {k: (idle1[k] - idle0[k]) / (idle_t1 - idle_t0) for k in idle1}

        app_runs: list[Timing] = []
        direct_runs: list[Timing] = []
        direct_cpu = 0.0
        app_cpu = {k: 0.0 for k in STACK if k in self.stack.procs}
        t0 = time.monotonic()
        busy0, stack0, own0 = machine_busy_seconds(), sum(self.stack.cpu_seconds().values()), time.process_time()
        for i in range(self.runs):
            order = ("app", "direct") if i % 2 == 0 else ("direct", "app")
            for kind in order:
                time.sleep(0.3)
                if kind == "app":
                    c0, w0 = self.stack.cpu_seconds(), time.monotonic()
                    app_runs.append(user.generate(self.slug, form1))
                    time.sleep(0.1)  # the job's bookkeeping after `done`
                    c1, w1 = self.stack.cpu_seconds(), time.monotonic()
                    for k in app_cpu:
                        app_cpu[k] += c1[k] - c0[k] - idle_rate[k] * (w1 - w0)
                else:
                    c0 = time.process_time()
                    direct_runs.append(direct_call(client, model, messages, temperature, max_tokens))
                    direct_cpu += time.process_time() - c0
        t1 = time.monotonic()
        busy1, stack1 = machine_busy_seconds(), sum(self.stack.cpu_seconds().values())
        client.close()
        # CPU ms per app generation by component, approximate (10 ms ticks, idle subtracted).
        cpu_per_gen = {k: max(0.0, v) * 1000 / self.runs for k, v in app_cpu.items()}
        failed = [t.outcome for t in app_runs + direct_runs if not t.ok]
        if failed:
            raise RuntimeError(f"(a) had failed generations: {failed}")
        rows = db_rows(self.stack.env["DATABASE_URL"], [t.generation_id for t in app_runs])
        phases = server_phases(rows)

        def med(runs: list[Timing], attr: str) -> float:
            return statistics.median(t.ms(attr) for t in runs)

        return {
            "runs": self.runs,
            "app_ttft": med(app_runs, "first_token"), "app_total": med(app_runs, "finished"),
            "direct_ttft": med(direct_runs, "first_token"), "direct_total": med(direct_runs, "finished"),
            "app_submit": med(app_runs, "redirected"),
            "app_ttft_all": [round(t.ms("first_token"), 1) for t in app_runs],
            "app_total_all": [round(t.ms("finished"), 1) for t in app_runs],
            "direct_ttft_all": [round(t.ms("first_token"), 1) for t in direct_runs],
            "direct_total_all": [round(t.ms("finished"), 1) for t in direct_runs],
            "app_tokens": [t.tokens for t in app_runs], "direct_tokens": [t.tokens for t in direct_runs],
            "cpu_ms_per_generation": cpu_per_gen,
            "direct_client_cpu_ms": direct_cpu * 1000 / self.runs,
            # machine CPU not used by the stack, the fake LLM or this process during (a), per second
            "other_cpu_per_s": max(0.0, (busy1 - busy0) - (stack1 - stack0)
                                   - (time.process_time() - own0)) / (t1 - t0),
            "idle_cpu_per_s": idle_rate,
            "queue_wait": statistics.median(phases["queue_wait"]) if phases["queue_wait"] else None,
            "job_run": statistics.median(phases["job_run"]) if phases["job_run"] else None,
        }

    # -- (b) -------------------------------------------------------------------------------------
    def wait_quiet(self) -> float:
        """Wait (up to BENCH_QUIET_WAIT s) until other processes use < 0.2 CPU for 2 s in a row.

        The burst needs the whole machine; on a shared one, other people's test runs
        would be measured along with it. Returns the seconds waited.
        """
        start = time.monotonic()
        calm = 0
        warned = False
        while time.monotonic() - start < self.quiet_wait:
            busy0, stack0, own0, t0 = (machine_busy_seconds(), sum(self.stack.cpu_seconds().values()),
                                       time.process_time(), time.monotonic())
            time.sleep(1.0)
            other = ((machine_busy_seconds() - busy0) - (sum(self.stack.cpu_seconds().values()) - stack0)
                     - (time.process_time() - own0)) / (time.monotonic() - t0)
            calm = calm + 1 if other < 0.2 else 0
            if calm >= 2:
                break
            if not warned and calm == 0:
                log(f"other processes keep {other:.1f} CPUs busy: waiting up to {self.quiet_wait:.0f}s for quiet...")
                warned = True
        return time.monotonic() - start

    def burst(self, users: list[User], sample_memory: bool = False) -> dict:
        """Every user submits one generation at the same instant and follows its stream to the end.

        With `sample_memory`, the worker runtime's PSS and the generations in flight (the fake
        LLM's open requests: one per 1-variant generation) are sampled every 0.25 s meanwhile.
        """
        form = template_form(self.slug, self.burst_variants)
        shards = [(u.index, u.session.cookies.get_dict()) for u in users]
        for user in users:
            user.session.close()
        cpu_before = {}
        wall_before = [0.0]

        spies = []

        busy_before = [0.0]
        quiet_wait = [0.0]

        def on_go() -> None:
            if self.profile_dir is not None:
                spies.extend(self.stack.profile(self.profile_seconds, self.profile_dir,
                                                idle=os.environ.get("BENCH_PROFILE") != "cpu"))
                time.sleep(1.0)  # let py-spy attach before the start signal
            quiet_wait[0] = self.wait_quiet()
            cpu_before.update(self.stack.cpu_seconds())
            busy_before[0] = machine_busy_seconds()
            wall_before[0] = time.monotonic()

        sampler = MemorySampler(self.stack) if sample_memory else None

        def on_go_sampling() -> None:
            on_go()
            if sampler is not None:
                sampler.start()

        try:
            timings, client_cpu, start_lag = run_burst(self.stack.base_url, self.stack.stream_url, shards, self.slug,
                                                       form, self.timeout, self.client_procs, on_go=on_go_sampling)
        finally:
            if sampler is not None:
                sampler.stop()
        wall = time.monotonic() - wall_before[0]
        cpu_after = self.stack.cpu_seconds()
        busy = machine_busy_seconds() - busy_before[0]
        cpu = {name: cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0) for name in cpu_after}
        cpu["load generator"] = client_cpu
        # Whatever else ran on the machine meanwhile (other people's tests, py-spy...): it competes.
        cpu["other processes"] = max(0.0, busy - sum(cpu.values()))
        for spy in spies:
            spy.wait(timeout=self.profile_seconds + 30)
        ok = [t for t in timings if t.ok]
        errors: dict[str, int] = {}
        for t in timings:
            if not t.ok:
                errors[t.outcome] = errors.get(t.outcome, 0) + 1
        e2e = [t.ms("finished") for t in ok]
        ttft = [t.ms("first_token") for t in ok if t.first_token is not None]
        submit = [t.ms("redirected") for t in timings if t.redirected is not None]
        rows = db_rows(self.stack.env["DATABASE_URL"], [t.generation_id for t in timings if t.generation_id])
        statuses: dict[str, int] = {}
        for row in rows.values():
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        phases = server_phases(rows)
        try:
            with urllib.request.urlopen(self.stack.llm_url.rsplit("/v1", 1)[0] + "/_fake/stats", timeout=5) as r:
                fake_stats = json.loads(r.read())
        except OSError:
            fake_stats = {}
        return {
            "users": len(timings), "variants": self.burst_variants, "ok": len(ok),
            "errors": len(timings) - len(ok), "error_kinds": errors, "db_status": statuses,
            "e2e_p50": percentile(e2e, 50), "e2e_p95": percentile(e2e, 95), "e2e_max": max(e2e, default=None),
            "e2e_min": min(e2e, default=None),
            "ttft_p50": percentile(ttft, 50), "ttft_p95": percentile(ttft, 95),
            "submit_p50": percentile(submit, 50), "submit_p95": percentile(submit, 95),
            "submit_max": max(submit, default=None),
            "queue_wait_p50": percentile(phases["queue_wait"], 50),
            "queue_wait_p95": percentile(phases["queue_wait"], 95),
            "job_run_p50": percentile(phases["job_run"], 50), "job_run_p95": percentile(phases["job_run"], 95),
            "wall_s": wall, "cpu_s": cpu, "start_lag_ms": start_lag, "quiet_wait_s": quiet_wait[0],
            "fake_max_active": fake_stats.get("max_active"),
            "e2e_all": sorted(round(v, 1) for v in e2e),
            "batches_per_generation": statistics.mean(t.batches for t in ok) if ok else None,
            "memory": sampler.peak() if sampler is not None else None,
        }

    # -- the whole run -------------------------------------------------------------------------
    def run_bulk_only(self) -> dict:
        """`--only bulk`: the stack, a small warm-up, (a), then (d); no bursts (a shared machine)."""
        self.users_n = self.users300 = self.warmup = min(self.warmup, 8)
        log(f"temporary directory {self.workdir}")
        self.stack.start()
        self.report["stack"] = self.stack.describe()
        form1 = template_form(self.slug, 1)
        single, burst_users = self.sign_up()
        sample = self.warm_up(single, burst_users, form1)
        log(f"(a) {self.runs} app generations and {self.runs} direct openai calls, alternating...")
        self.report["single"] = self.single(single, form1, sample)
        self.report["bulk"] = self.bulk(single, form1, sample)
        return self.report

    def run(self) -> dict:
        log(f"temporary directory {self.workdir}")
        log("starting the fake LLM, embedded Redis, migrations, gunicorn and the RQ pool...")
        t0 = time.monotonic()
        self.stack.start()
        self.report["stack"] = self.stack.describe()
        self.report["commands"] = self.stack.commands
        log(f"up in {time.monotonic() - t0:.1f}s: {self.report['stack']}")
        time.sleep(1.0)
        self.report["worker_pss_idle_mib"] = self.stack.pss_mib("worker")
        if os.environ.get("BENCH_ONLY") == "api":
            log("(api) only: generations through /api/v1 against direct openai calls...")
            self.report["only"] = "api"
            self.report["api"] = api_bench.measure(self)
            return self.report
        form1 = template_form(self.slug, 1)
        log(f"signing up {max(self.users_n, self.users300) + 1} users (one loopback address each)...")
        single, burst_users = self.sign_up()
        log(f"warming up: {min(self.warmup, len(burst_users))} generations at once, then one more...")
        sample = self.warm_up(single, burst_users, form1)
        log(f"(a) {self.runs} app generations and {self.runs} direct openai calls, alternating...")
        self.report["single"] = self.single(single, form1, sample)
        log("(api) generations through /api/v1 against direct openai calls, alternating...")
        self.report["api"] = api_bench.measure(self)
        time.sleep(1.0)
        log(f"(b) burst: {self.users_n} users submit at once ({self.client_procs} load-generator process(es))...")
        self.report["burst"] = self.burst(burst_users[: self.users_n])
        if self.users300:
            time.sleep(1.0)
            log(f"(c) burst: {self.users300} users submit at once, sampling the workers' memory...")
            self.report["burst300"] = self.burst(burst_users[: self.users300], sample_memory=True)
        if self.bulk_rows:
            self.report["bulk"] = self.bulk(single, form1, sample)
        return self.report

    # -- (d) -------------------------------------------------------------------------------------
    def bulk(self, single: User, form1: dict, sample: Timing) -> dict:
        """(a) again while a bulk run is in progress; then the run's throughput (bench/bulk.py)."""
        from bench import bulk

        log(f"(d) starting a {self.bulk_rows}-row bulk run...")
        run_id, engine = bulk.start_run(self.stack.base_url, self.stack.stream_url, self.stack.env["DATABASE_URL"],
                                        max(self.users_n, self.users300) + 2, self.bulk_rows)
        while not bulk.counts(engine, run_id).get("done"):
            time.sleep(0.2)
        log("(d) the run is writing; (a) again meanwhile...")
        during = self.single(single, form1, sample)
        left = bulk.counts(engine, run_id).get("pending", 0)
        log(f"(d) {left} rows still pending after (a); waiting for the run to finish...")
        result = bulk.wait_finished(engine, run_id, timeout=max(600.0, self.bulk_rows * 2.0))
        engine.dispose()
        return {"during": during, "pending_after": left, **result}


class MemorySampler:
    """Samples the worker runtime's PSS and the generations in flight, in a thread."""

    def __init__(self, stack: Stack, every: float = 0.25):
        self.stack = stack
        self.every = every
        self.samples: list[tuple[int, float]] = []   # (generations in flight, worker PSS MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._stats_url = stack.llm_url.rsplit("/v1", 1)[0] + "/_fake/stats"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                with urllib.request.urlopen(self._stats_url, timeout=2) as r:
                    in_flight = json.loads(r.read())["active"]
                self.samples.append((in_flight, self.stack.pss_mib("worker")))
            except (OSError, KeyError, ValueError):
                continue

    def peak(self) -> dict:
        """The sample with the most generations in flight (the latest of equals)."""
        if not self.samples:
            return {"in_flight": 0, "pss_mib": None, "samples": 0, "max_pss_mib": None}
        in_flight, pss = max(self.samples, key=lambda sample: sample[0])
        return {"in_flight": in_flight, "pss_mib": pss, "samples": len(self.samples),
                "max_pss_mib": max(p for _, p in self.samples)}


def stack_cpu_ms_per_generation(burst: dict) -> float:
    """CPU of the whole stack (web, stream server, workers, Redis) per generation of a burst, in ms."""
    return 1000 * sum(burst["cpu_s"].get(k, 0.0) for k in STACK) / max(1, burst["users"] * burst["variants"])


def metrics(report: dict) -> dict:
    if report.get("only") == "api":
        return {"api_ttft_added_ms": api_bench.added_ms(report)}
    s, b = report["single"], report["burst"]
    c = report.get("burst300")
    nan = float("nan")
    cpu_ms = stack_cpu_ms_per_generation(b)
    memory = (c or {}).get("memory") or {}
    added = (memory["pss_mib"] - report["worker_pss_idle_mib"]) if memory.get("pss_mib") is not None else nan
    return {
        "ttft_added_ms": round(s["app_ttft"] - s["direct_ttft"]),
        "total_ratio": s["app_total"] / s["direct_total"],
        "burst_p95_ratio": b["e2e_p95"] / s["app_total"],
        "burst_errors": b["errors"],
        "burst300_p95_ratio": c["e2e_p95"] / s["app_total"] if c else nan,
        "burst300_errors": c["errors"] if c else -1,
        "cpu_ratio": cpu_ms / s["direct_client_cpu_ms"] if s["direct_client_cpu_ms"] else nan,
        "cpu_ms_per_gen": round(cpu_ms),
        "mib_per_inflight": added / memory["in_flight"] if memory.get("in_flight") else nan,
        **bulk_metrics(report),
        **({"api_ttft_added_ms": api_bench.added_ms(report)} if report.get("api") else {}),
    }


def bulk_metrics(report: dict) -> dict:
    """(d): the interactive user's medians with a bulk run in progress against (a)'s without one."""
    s, d = report["single"], report.get("bulk")
    if not d:
        return {}  # not measured (BENCH_BULK_ROWS=0, or a report without it): no keys
    during = d["during"]
    return {"bulk_interactive_ratio": max(during["app_ttft"] / s["app_ttft"], during["app_total"] / s["app_total"]),
            "bulk_rows_per_s": d["rows_per_s"]}


def last_line(m: dict) -> str:
    """The bench's very last line of stdout (its format is fixed: the lead's tools read it)."""
    if set(m) == {"api_ttft_added_ms"}:
        return f"api_ttft_added_ms={m['api_ttft_added_ms']}"
    return (f"ttft_added_ms={m['ttft_added_ms']} total_ratio={m['total_ratio']:.2f} "
            f"burst_p95_ratio={m['burst_p95_ratio']:.2f} burst_errors={m['burst_errors']} "
            f"burst300_p95_ratio={m['burst300_p95_ratio']:.2f} burst300_errors={m['burst300_errors']} "
            f"cpu_ratio={m['cpu_ratio']:.2f} cpu_ms_per_gen={m['cpu_ms_per_gen']} "
            f"mib_per_inflight={m['mib_per_inflight']:.2f}" + later_keys(m))


def later_keys(m: dict) -> str:
    """Figures of later issues, appended when measured: bulk runs', the claims check's, the API's, then the first hour's."""
    keys = ("bulk_interactive_ratio", "bulk_rows_per_s", "claims_precision", "claims_recall")
    api = f" api_ttft_added_ms={m['api_ttft_added_ms']}" if m.get("api_ttft_added_ms") is not None else ""
    return "".join(f" {key}={m[key]:.2f}" for key in keys if key in m) + api + first_hour_keys(m)


def claims_metrics() -> dict:
    """The claims check on its hand-made evaluation set (pure, no stack: app/checks/evaluation.py)."""
    from app.checks.evaluation import load_cases, score
    result = score(load_cases())
    log(f"claims check: {result['cases']} cases, tp={result['tp']} fp={result['fp']} fn={result['fn']}")
    return {"claims_precision": result["precision"], "claims_recall": result["recall"]}


def burst_lines(label: str, b: dict, cpus: int) -> list[str]:
    """The report's lines for one burst."""
    out = [f"{label} burst: {b['users']} users submit one {b['variants']}-variant generation at once, "
           f"follow the stream to done"]
    out.append(f"    {'':28}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    out.append(f"    {'submit -> done':28}{fmt_ms(b['e2e_p50']):>10}{fmt_ms(b['e2e_p95']):>10}{fmt_ms(b['e2e_max']):>10}")
    out.append(f"    {'submit -> first token':28}{fmt_ms(b['ttft_p50']):>10}{fmt_ms(b['ttft_p95']):>10}")
    out.append(f"    {'submit -> 302':28}{fmt_ms(b['submit_p50']):>10}{fmt_ms(b['submit_p95']):>10}{fmt_ms(b['submit_max']):>10}")
    out.append(f"    {'server: queue wait':28}{fmt_ms(b['queue_wait_p50']):>10}{fmt_ms(b['queue_wait_p95']):>10}")
    out.append(f"    {'server: job run':28}{fmt_ms(b['job_run_p50']):>10}{fmt_ms(b['job_run_p95']):>10}")
    out.append(f"    errors: {b['errors']} {b['error_kinds'] or ''}   generations in the database: {b['db_status']}")
    batches = b.get("batches_per_generation")
    out.append(f"    most concurrent LLM requests: {b['fake_max_active']}; SSE events per generation: "
               f"{'-' if batches is None else f'{batches:.1f}'}; last submit left "
               f"{b['start_lag_ms']:.0f} ms after the agreed instant; waited {b['quiet_wait_s']:.0f} s "
               "for a quiet machine")
    cpu = b["cpu_s"]
    capacity = b["wall_s"] * cpus
    used = sum(cpu.values())
    parts = ", ".join(f"{name} {sec:.1f}" for name, sec in sorted(cpu.items(), key=lambda kv: -kv[1]))
    out.append(f"    CPU seconds over the {b['wall_s']:.1f} s burst: {parts}")
    out.append(f"    = {used:.1f} of {capacity:.1f} CPU-seconds available ({100 * used / capacity:.0f}%); "
               f"the stack's: {stack_cpu_ms_per_generation(b):.0f} ms per generation")
    if cpu.get("other processes", 0.0) > 0.1 * capacity:
        out.append(f"    WARNING: other processes used {cpu['other processes']:.1f} CPU-seconds during the burst; "
                   "the burst figures are distorted (run again on a quiet machine)")
    return out


def bulk_lines(report: dict, m: dict) -> list[str]:
    d = report.get("bulk")
    if not d:
        return []
    s, during = report["single"], d["during"]
    return [f"(d) a {d['rows']}-row bulk run ({d['counts']}) in {d['seconds']:.1f} s = "
            f"{m['bulk_rows_per_s']:.2f} rows/s; meanwhile (a) again:",
            f"    app TTFT {fmt_ms(during['app_ttft'])} ms (without: {fmt_ms(s['app_ttft'])}), total "
            f"{fmt_ms(during['app_total'])} ms (without: {fmt_ms(s['app_total'])}); queue wait "
            f"{fmt_ms(during['queue_wait'])} ms; {d['pending_after']} rows were still pending after it",
            f"    bulk_interactive_ratio {m['bulk_interactive_ratio']:.2f} (target <= 1.2)", ""]


def print_report(report: dict, m: dict) -> None:
    if report.get("only") == "api":
        print("\n".join(["", f"Copydeck bench (API only)  {report['date']}  (commit {report['commit']})",
                         *api_bench.report_lines(report["api"]), ""]), flush=True)
        return
    s, b = report["single"], report["burst"]
    prof = report["profile"]
    out = []
    out.append("")
    out.append(f"Copydeck bench  {report['date']}  ({report['cpus']} CPUs, commit {report['commit']})")
    out.append(f"  fake LLM: {prof['ttft_ms']} ms to first token, then {prof['tokens']} tokens x {prof['token_ms']} ms")
    out.append(f"  stack:    {report['stack']}")
    out.append(f"  template: {report['template']}")
    out.append("")
    out.append(f"(a) one generation, 1 variant: medians of {s['runs']} runs, app and direct alternating")
    out.append(f"    {'':28}{'TTFT ms':>10}{'total ms':>11}")
    out.append(f"    {'app (submit -> SSE)':28}{fmt_ms(s['app_ttft']):>10}{fmt_ms(s['app_total']):>11}")
    out.append(f"    {'direct openai stream':28}{fmt_ms(s['direct_ttft']):>10}{fmt_ms(s['direct_total']):>11}")
    out.append(f"    {'app - direct':28}{s['app_ttft'] - s['direct_ttft']:>+10.0f}{s['app_total'] - s['direct_total']:>+11.0f}")
    out.append(f"    app: submit (POST -> 302) {fmt_ms(s['app_submit'])} ms; server: queue wait "
               f"{fmt_ms(s['queue_wait'])} ms, job run {fmt_ms(s['job_run'])} ms (medians)")
    cpu_gen = s["cpu_ms_per_generation"]
    out.append("    CPU per app generation (approx.): "
               + ", ".join(f"{k} {v:.0f} ms" for k, v in cpu_gen.items())
               + f" = {sum(cpu_gen.values()):.0f} ms; direct call: {s['direct_client_cpu_ms']:.0f} ms in the client")
    out.append(f"    other processes on the machine meanwhile: {s['other_cpu_per_s']:.2f} CPUs busy on average")
    out.append("")
    if report.get("api"):
        out += api_bench.report_lines(report["api"]) + [""]
    out += burst_lines("(b)", b, report["cpus"])
    out.append(f"    stack CPU per generation {m['cpu_ms_per_gen']} ms / bare openai client "
               f"{s['direct_client_cpu_ms']:.0f} ms per call in (a) = cpu_ratio {m['cpu_ratio']:.2f}")
    out.append("")
    c = report.get("burst300")
    if c:
        out += burst_lines("(c)", c, report["cpus"])
        mem = c["memory"] or {}
        idle = report["worker_pss_idle_mib"]
        if mem.get("pss_mib") is not None:
            out.append(f"    worker runtime PSS: {idle:.0f} MiB at rest; {mem['pss_mib']:.0f} MiB with "
                       f"{mem['in_flight']} generations in flight (the most sampled; peak PSS "
                       f"{mem['max_pss_mib']:.0f} MiB) = {m['mib_per_inflight']:.2f} MiB added per generation "
                       f"in flight; {mem['pss_mib'] / max(1, mem['in_flight']):.1f} MiB per generation in all")
        out.append("")
    out += bulk_lines(report, m)
    out.append(f"    {'figure':18}{'value':>10}{'target':>10}")
    for key, fmt in (("ttft_added_ms", "{:.0f}"), ("total_ratio", "{:.2f}"),
                     ("burst_p95_ratio", "{:.2f}"), ("burst_errors", "{:.0f}"),
                     ("burst300_p95_ratio", "{:.2f}"), ("burst300_errors", "{:.0f}"),
                     ("cpu_ratio", "{:.2f}"), ("mib_per_inflight", "{:.2f}")):
        ok = m[key] <= TARGETS[key] and m[key] >= 0
        target = ("<= " + fmt.format(TARGETS[key])) if not key.endswith("errors") else "= 0"
        out.append(f"    {key:18}{fmt.format(m[key]):>10}{target:>10}  {'ok' if ok else 'MISSED'}")
    out.append("")
    print("\n".join(out), flush=True)


def main() -> int:
    # Make SIGTERM unwind like Ctrl-C, so the stack is always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only_bulk = sys.argv[1:] == ["--only", "bulk"]
    if sys.argv[1:] and not only_bulk:
        raise SystemExit("usage: python -m bench.run [--only bulk]")
    bench = Bench()
    ok = False
    m: dict = {}
    try:
        if only_bulk:
            report = bench.run_bulk_only()
            s = report["single"]
            m = {"ttft_added_ms": round(s["app_ttft"] - s["direct_ttft"]),
                 "total_ratio": s["app_total"] / s["direct_total"], **bulk_metrics(report)}
            print("\n".join(bulk_lines(report, m)), flush=True)
        else:
            report = bench.run()
            m = metrics(report)
            if report.get("only") != "api":
                m.update(claims_metrics())
        report["metrics"] = m
        RESULTS.mkdir(exist_ok=True)
        name = time.strftime("%Y%m%d-%H%M%S") + ".json"
        (RESULTS / name).write_text(json.dumps(report, indent=1, default=str))
        if not only_bulk:
            print_report(report, m)
        log(f"raw figures: {RESULTS / name}")
        ok = True
    finally:
        log("stopping the stack...")
        bench.stack.stop()
        if ok and not bench.keep:
            shutil.rmtree(bench.workdir, ignore_errors=True)
        else:
            log(f"kept {bench.workdir} (database and logs/)")
    if not ok:
        return 1
    if only_bulk:
        print(f"ttft_added_ms={m['ttft_added_ms']} total_ratio={m['total_ratio']:.2f} "
              f"bulk_interactive_ratio={m['bulk_interactive_ratio']:.2f} "
              f"bulk_rows_per_s={m['bulk_rows_per_s']:.2f}", flush=True)
        return 0
    if report.get("only") != "api":
        m.update(first_hour_figures())  # issue 14: idle footprint of both pools, list compliance (bench/footprint.py)
    print(last_line(m), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
