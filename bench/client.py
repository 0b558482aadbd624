"""The benchmark's HTTP clients: a browser-like Copydeck user, a direct openai call, a burst.

A `User` is one account with its own requests.Session (cookies, CSRF token) and
its own loopback source address (127.0.x.y): the app rate-limits per client IP
(sign-up 10/hour, generate 60/minute), so 100 users from one address would be
throttled where 100 real users would not.

All times are time.monotonic() (CLOCK_MONOTONIC: comparable across processes).
"""
from __future__ import annotations

import multiprocessing
import queue
import re
import resource
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML is an app dependency
    yaml = None

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "app" / "catalog" / "seed"
CSRF_RE = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')
LOCATION_RE = re.compile(r"/generations/(\d+)$")


def user_ip(index: int) -> str:
    """A distinct loopback address per user (the whole 127/8 is loopback on Linux)."""
    return f"127.0.{1 + index // 200}.{10 + index % 200}"


def template_form(slug: str, variants: int) -> dict[str, str]:
    """Form values for a seeded template: every field filled the way a user would."""
    spec = yaml.safe_load((SEED / f"{slug}.yaml").read_text())
    data = {"tone": "Professional", "language": "English", "creativity": "balanced",
            "variant_count": str(variants)}
    samples = {"topic": "We just launched team workspaces in Copydeck",
               "brand": "Copydeck", "cta": "Try it free at copydeck.app"}
    for f in spec["fields"]:
        name = f"f_{f['name']}"
        if f["type"] == "select":
            data[name] = f["options"][0]
        elif f["type"] == "number":
            data[name] = str(f.get("min", 1))
        elif f.get("required") or f["name"] in samples:
            data[name] = samples.get(f["name"], "Team workspaces for marketing teams")[: f.get("max_length", 200)]
    return data


def default_variants(slug: str) -> int:
    return int(yaml.safe_load((SEED / f"{slug}.yaml").read_text())["output"]["variants"])


class _SourceAdapter(HTTPAdapter):
    def __init__(self, source_ip: str, **kwargs):
        self._source = (source_ip, 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


@dataclass
class Timing:
    """One generation as the client saw it (monotonic seconds)."""
    submitted: float = 0.0
    redirected: float | None = None      # the POST's 302 arrived
    first_token: float | None = None     # first SSE batch with a token entry
    finished: float | None = None        # the batch with `done` (or failed)
    tokens: int = 0                      # token entries received (each may hold several tokens)
    batches: int = 0                     # SSE events received
    generation_id: int | None = None
    outcome: str = "pending"             # done | failed | http <code> | timeout | error: ...

    @property
    def ok(self) -> bool:
        return self.outcome == "done"

    def ms(self, attr: str) -> float | None:
        value = getattr(self, attr)
        return None if value is None else (value - self.submitted) * 1000.0


class User:
    def __init__(self, base_url: str, index: int, timeout: float = 60.0, stream_url: str = ""):
        self.base_url = base_url
        self.stream_url = stream_url or base_url   # the live-stream server, as the page points there
        self.index = index
        self.ip = user_ip(index)
        self.email = f"bench{index:04d}@bench.copydeck.app"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "copydeck-bench"
        self.session.mount("http://", _SourceAdapter(self.ip, pool_connections=2, pool_maxsize=4))
        self.csrf = ""

    def _csrf_from(self, path: str) -> str:
        resp = self.session.get(self.base_url + path, timeout=30)
        resp.raise_for_status()
        match = CSRF_RE.search(resp.text)
        if not match:
            raise RuntimeError(f"no csrf_token in {path}")
        return match.group(1)

    def signup(self, password: str = "bench-password-1") -> None:
        token = self._csrf_from("/signup")
        resp = self.session.post(self.base_url + "/signup", allow_redirects=False, timeout=60, data={
            "csrf_token": token, "email": self.email, "password": password, "confirm": password})
        if resp.status_code != 302:
            raise RuntimeError(f"signup of {self.email} answered {resp.status_code}")

    def prepare(self, slug: str) -> None:
        """Open the template's page, as a user does before pressing Generate."""
        self.csrf = self._csrf_from(f"/write/{slug}")

    def generate(self, slug: str, form: dict[str, str]) -> Timing:
        """Submit the form (no redirect following) and read the SSE stream to its end."""
        # A fresh connection for the submit: an idle keep-alive connection may be closed by
        # gunicorn (keep-alive 2 s) just as the POST goes out, which requests does not retry.
        self.session.close()
        t = Timing(submitted=time.monotonic())
        deadline = t.submitted + self.timeout
        try:
            resp = self.session.post(f"{self.base_url}/write/{slug}", data={**form, "csrf_token": self.csrf},
                                     allow_redirects=False, timeout=(10, self.timeout))
            t.redirected = time.monotonic()
            resp.close()
            match = LOCATION_RE.search(resp.headers.get("Location", ""))
            if resp.status_code != 302 or not match:
                t.outcome = f"http {resp.status_code} on submit"
                return t
            t.generation_id = int(match.group(1))
            self._follow(t, deadline)
        except requests.Timeout:
            t.outcome = "timeout"
        except Exception as exc:  # noqa: BLE001 - every failure is a counted error
            t.outcome = f"error: {type(exc).__name__}: {exc}"[:200]
        return t

    def _follow(self, t: Timing, deadline: float) -> None:
        """Read the SSE stream (app/generation/streams.py SSE_FORMAT) until done or failed."""
        url = f"{self.stream_url}/generations/{t.generation_id}/stream"
        with self.session.get(url, stream=True, timeout=(10, self.timeout),
                              headers={"Accept": "text/event-stream"}) as resp:
            if resp.status_code != 200:
                t.outcome = f"http {resp.status_code} on stream"
                return
            buf = b""
            for chunk in resp.iter_content(chunk_size=None):
                now = time.monotonic()
                buf += chunk
                while True:
                    cut = buf.find(b"\n")
                    if cut < 0:
                        break
                    line, buf = buf[:cut].rstrip(b"\r"), buf[cut + 1:]
                    if line == b"event: closed":  # the user was signed out meanwhile
                        t.outcome = "stream closed by the server"
                        return
                    if not line.startswith(b"data:"):
                        continue
                    # JSON escapes quotes inside strings, so these markers only match entry types.
                    t.batches += 1
                    tokens = line.count(b'["token",')
                    if tokens:
                        t.tokens += tokens
                        if t.first_token is None:
                            t.first_token = now
                    for final in (b"done", b"failed"):
                        if b'["' + final + b'",' in line:
                            t.finished = now
                            t.outcome = final.decode()
                            return
                if now > deadline:
                    t.outcome = "timeout"
                    return
            t.outcome = "error: stream ended without done"


# --------------------------------------------------------------------------- direct openai call


def direct_call(client, model: str, messages: list[dict], temperature: float, max_tokens: int) -> Timing:
    """One streaming chat completion with the openai client, the way app/llm streams it."""
    t = Timing(submitted=time.monotonic())
    try:
        stream = client.chat.completions.create(
            model=model, messages=messages, temperature=temperature, max_tokens=max_tokens,
            stream=True, stream_options={"include_usage": True},
        )
        with stream:
            for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        t.tokens += 1
                        if t.first_token is None:
                            t.first_token = time.monotonic()
        t.finished = time.monotonic()
        t.outcome = "done"
    except Exception as exc:  # noqa: BLE001
        t.outcome = f"error: {exc!r}"[:200]
    return t


# --------------------------------------------------------------------------- the burst


@dataclass
class BurstShard:
    base_url: str
    stream_url: str
    users: list[tuple[int, dict]]   # (user index, session cookies)
    slug: str
    form: dict[str, str]
    timeout: float
    results: list[dict] = field(default_factory=list)
    cpu_seconds: float = 0.0
    start_lag_ms: float = 0.0       # how late the last thread submitted after start_at


def _run_shard(shard: BurstShard, ready: "multiprocessing.Queue", go: "multiprocessing.Queue",
               out: "multiprocessing.Queue") -> None:
    """A load-generator process: one thread per user, all submitting at the same instant."""
    try:
        users = []
        for index, cookies in shard.users:
            user = User(shard.base_url, index, shard.timeout, shard.stream_url)
            user.session.cookies.update(cookies)
            users.append(user)
        prepared = threading.Barrier(len(users) + 1)
        release = threading.Event()
        start_at = [0.0]
        results: list[Timing | None] = [None] * len(users)
        errors: list[str] = []

        def run(i: int, user: User) -> None:
            try:
                user.prepare(shard.slug)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"prepare {user.email}: {exc!r}")
            prepared.wait()
            release.wait()
            delay = start_at[0] - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            results[i] = user.generate(shard.slug, shard.form)

        threads = [threading.Thread(target=run, args=(i, u), daemon=True) for i, u in enumerate(users)]
        for th in threads:
            th.start()
        prepared.wait()
        if errors:
            raise RuntimeError("; ".join(errors[:3]))
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        ready.put("ready")
        start_at[0] = go.get(timeout=900)
        release.set()
        for th in threads:
            th.join()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        shard.cpu_seconds = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        shard.results = [asdict(r) for r in results]
        shard.start_lag_ms = (max(r.submitted for r in results) - start_at[0]) * 1000.0
        out.put(shard)
    except Exception as exc:  # noqa: BLE001
        try:
            ready.put(f"error: {exc!r}")
        finally:
            out.put(f"error: {exc!r}")


def run_burst(base_url: str, stream_url: str, users: list[tuple[int, dict]], slug: str, form: dict[str, str],
              timeout: float, processes: int = 1, on_go=None) -> tuple[list[Timing], float, float]:
    """Every user submits at once from `processes` load-generator processes.

    `on_go()` is called once every user has its page open, just before the start signal.

    Returns the timings, the load generator's CPU seconds during the burst and the
    largest start lag (ms after the agreed instant that the last submit left).
    """
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    shards = [BurstShard(base_url, stream_url, users[i::processes], slug, form, timeout) for i in range(processes)]
    workers = [ctx.Process(target=_run_shard, args=(s, ready, go, out), daemon=True) for s in shards if s.users]
    for w in workers:
        w.start()
    def get(q, timeout: float):
        """The next message, failing fast if a load-generator process died."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return q.get(timeout=1.0)
            except queue.Empty:
                if any(not w.is_alive() and w.exitcode for w in workers):
                    raise RuntimeError("a load-generator process died") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("the load generator did not answer in time") from None

    try:
        for _ in workers:
            msg = get(ready, 120)
            if msg != "ready":
                raise RuntimeError(f"load generator failed: {msg}")
        if on_go is not None:
            on_go()
        start_at = time.monotonic() + 0.5
        for _ in workers:
            go.put(start_at)
        done: list[BurstShard] = []
        for _ in workers:
            msg = get(out, timeout + 60)
            if isinstance(msg, str):
                raise RuntimeError(f"load generator failed: {msg}")
            done.append(msg)
    finally:
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.terminate()
    timings = [Timing(**r) for s in done for r in s.results]
    return timings, sum(s.cpu_seconds for s in done), max(s.start_lag_ms for s in done)

