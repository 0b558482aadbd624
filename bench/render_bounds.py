"""What bounding untrusted prompt templates costs, and what a hostile one does to other requests.

    .venv/bin/python -m bench.render_bounds

1. Per-render cost of a typical seeded template (the About us page's two prompts) rendered
   in-process (compiled once, and compiled each time), through the pre-started render worker
   pool (app.catalog.rendering, what the app does), and in a fresh subprocess per render.
2. Latency of "page work" (rendering a small Jinja page in a thread of this process) while
   four hostile templates render at once: in-process threads (the GIL is shared with the
   page) versus the worker pool (separate, niced processes).
3. GET /templates through the app while 7 users preview a hostile template non-stop.
Figures go to stdout; ARCHITECTURE.md ("Bounds on prompt templates") quotes them.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from jinja2 import Environment

from app.catalog import prompt_sandbox
from app.catalog.prompt_sandbox import read_message, write_message
from app.catalog.rendering import PromptError, render_prompt

SEED = Path(__file__).resolve().parent.parent / "app" / "catalog" / "seed" / "about-us-page.yaml"
CONTEXT = {"company": "Juniper & Co", "what_it_does": "Handmade stoneware", "story": "Two sisters in Porto",
           "values": "Small batches", "tone": "Friendly", "language": "English", "variant_count": 3,
           "brand_voice": ""}
HOSTILE_INPROCESS = "{% for a in range(2000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"
HOSTILE = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


def per_call_ms(func, repeat: int) -> float:
    func()  # warm
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def fresh_subprocess(source: str) -> None:
    process = subprocess.Popen([sys.executable, "-P", prompt_sandbox.__file__], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    read_message(process.stdout)  # ready
    write_message(process.stdin, {"source": source, "context": CONTEXT, "max_chars": 20000,
                                  "cpu_seconds": 1, "memory_mb": 128})
    read_message(process.stdout)
    process.stdin.close()
    process.wait()
    process.stdout.close()


def page_latency_ms(during=None, seconds: float = 3.0) -> tuple[float, float]:
    """Median and p95 of a small page render while `during` runs in other threads."""
    page = Environment().from_string("<ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>")
    stop = time.monotonic() + seconds
    def keep_busy():
        while time.monotonic() < stop:
            during()

    threads = [threading.Thread(target=keep_busy, daemon=True) for _ in range(4)] if during else []
    for thread in threads:
        thread.start()
    samples = []
    while time.monotonic() < stop:
        start = time.perf_counter()
        for _ in range(20):
            page.render(items=range(50))
        samples.append((time.perf_counter() - start) * 1000)
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def main() -> None:
    data = yaml.safe_load(SEED.read_text())
    prompts = [data["system_prompt"], data["user_prompt"]]

    def in_process():
        for source in prompts:
            prompt_sandbox.render(source, CONTEXT)

    def in_process_compiled_each_time():
        for source in prompts:
            prompt_sandbox.env.from_string(source).render(**CONTEXT)

    def pool():
        for source in prompts:
            render_prompt(source, CONTEXT)

    def subprocess_each():
        for source in prompts:
            fresh_subprocess(source)

    print("per generation (two prompts), median ms:")
    print(f"  in-process, compiled once       {per_call_ms(in_process, 300):8.3f}")
    print(f"  in-process, compiled each time  {per_call_ms(in_process_compiled_each_time, 100):8.3f}")
    print(f"  worker pool (what the app does) {per_call_ms(pool, 300):8.3f}")
    print(f"  fresh subprocess per render     {per_call_ms(subprocess_each, 10):8.3f}")

    def hostile_in_process():
        prompt_sandbox.env.from_string(HOSTILE_INPROCESS).render()

    def hostile_pool():
        try:
            render_prompt(HOSTILE, {})
        except PromptError:
            pass

    print("small page render (20 x 50 items) while 4 hostile templates render, median / p95 ms:")
    for name, during in (("idle", None), ("in-process threads", hostile_in_process), ("worker pool", hostile_pool)):
        median, p95 = page_latency_ms(during)
        print(f"  {name:20} {median:8.2f} / {p95:8.2f}")


def pages_while_hostile_previews(hostile_users: int = 7, seconds: float = 8.0) -> None:
    """The issue's scenario in one web process: GET /templates while users POST hostile previews."""
    import os
    import tempfile

    from flask_migrate import upgrade

    from workers import embedded_redis

    workdir = tempfile.mkdtemp(prefix="render-bench-")
    redis_process, redis_url = embedded_redis.start(workdir=workdir)
    os.environ.update(DATABASE_URL=f"sqlite:///{workdir}/bench.db", REDIS_URL=redis_url, SECRET_KEY="bench")
    try:
        from app import create_app
        from app.auth import services as accounts
        from app.catalog.services import seed_templates
        from app.extensions import db

        app = create_app({"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
        with app.app_context():
            upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
            seed_templates()
            for n in range(hostile_users + 1):
                accounts.sign_up(f"user{n}@example.com", "correct-horse-battery")
            db.session.commit()
            db.session.remove()

        def client(n: int):
            c = app.test_client()
            c.post("/login", data={"email": f"user{n}@example.com", "password": "correct-horse-battery"})
            return c

        reader = client(0)
        form = {"name": "Bench", "slug": "bench", "category": "Social", "icon": "rocket",
                "fields-0-name": "topic", "fields-0-label": "Topic", "fields-0-type": "text",
                "fields-0-sample": "x", "system_prompt": "Hi", "user_prompt": HOSTILE,
                "output-variants": "1", "output-format": "single"}

        def measure(during: bool) -> tuple[float, float]:
            stop = time.monotonic() + seconds

            def hostile(n: int):
                c = client(n)
                while time.monotonic() < stop:
                    c.post("/workspace/templates/preview", data=form)

            threads = [threading.Thread(target=hostile, args=(n + 1,)) for n in range(hostile_users)] if during else []
            for thread in threads:
                thread.start()
            samples = []
            while time.monotonic() < stop:
                start = time.perf_counter()
                assert reader.get("/templates").status_code == 200
                samples.append((time.perf_counter() - start) * 1000)
            for thread in threads:
                thread.join()
            samples.sort()
            return statistics.median(samples), samples[int(len(samples) * 0.95)]

        print(f"GET /templates in the same process, alone and with {hostile_users} users previewing a hostile "
              "template non-stop, median / p95 ms:")
        for label, during in (("alone", False), ("hostile previews", True)):
            median, p95 = measure(during)
            print(f"  {label:20} {median:8.1f} / {p95:8.1f}")
    finally:
        redis_process.terminate()
        redis_process.wait(10)


if __name__ == "__main__":
    main()
    pages_while_hostile_previews()
