"""`python -m bench.hold`: what holding N live streams costs, gevent stream server vs page threads.

Starts the bench stack twice: as make run does (live streams on the gunicorn gevent
stream server), and with BENCH_STREAM_SERVER=0 (streams on the gthread page server,
its threads raised to hold them all). Each time it opens N streams (BENCH_HOLD_STREAMS,
300) of one generation that stays live, measures the holding server's PSS and a page's
latency while they are open, then fans 50 token entries (20 ms apart) and `done` out
to all of them and measures that server's CPU. Prints one line per configuration.
Nothing here is asserted; the figures go to bench/README.md.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from redis import Redis

from bench.client import User, template_form
from bench.run import TOKEN_MS, TOKENS, TTFT_MS, log
from bench.stack import Stack

STREAMS = int(os.environ.get("BENCH_HOLD_STREAMS") or 300)


def measure(stream_server: bool) -> dict:
    os.environ["BENCH_STREAM_SERVER"] = "1" if stream_server else "0"
    os.environ.update(STREAM_MAX_PER_USER=str(STREAMS), STREAM_MAX_PER_GENERATION=str(STREAMS),
                      STREAM_MAX_PER_PROCESS=str(STREAMS + 10))
    if not stream_server:  # one thread per stream, plus some for pages, in each of 2 processes
        os.environ["BENCH_WEB_THREADS"] = str(STREAMS // 2 + 32)
    stack = Stack(Path(tempfile.mkdtemp(prefix="copydeck-hold-")), ttft_ms=TTFT_MS, tokens=TOKENS, token_ms=TOKEN_MS)
    try:
        stack.start()
        user = User(stack.base_url, 0, 60, stack.stream_url)
        user.signup()
        user.prepare("instagram-caption")
        timing = user.generate("instagram-caption", template_form("instagram-caption", 1))
        redis = Redis.from_url(stack.env["REDIS_URL"])
        key = f"gen:{timing.generation_id}"
        redis.delete(key)
        redis.xadd(key, {"type": "started", "data": "{}"})
        holder = "stream" if stream_server else "web"
        cookies = user.session.cookies.get_dict()
        opened = threading.Barrier(STREAMS + 1, timeout=120)
        ended: list[bool] = []

        def follow() -> None:
            with requests.get(f"{stack.stream_url}/generations/{timing.generation_id}/stream", cookies=cookies,
                              stream=True, timeout=120) as resp:
                lines = resp.iter_lines()
                if resp.status_code == 200:
                    next(line for line in lines if line.startswith(b"data:"))
                opened.wait()
                ended.append(any(b'["done"' in line for line in lines))

        threads = [threading.Thread(target=follow, daemon=True) for _ in range(STREAMS)]
        for thread in threads:
            thread.start()
        opened.wait()
        time.sleep(1.0)
        pss = stack.pss_mib(holder)
        pages = []
        for _ in range(20):
            t0 = time.monotonic()
            requests.get(stack.base_url + "/login", timeout=60)
            pages.append((time.monotonic() - t0) * 1000)
        cpu0 = stack.cpu_seconds()[holder]
        for i in range(TOKENS):
            redis.xadd(key, {"type": "token", "data": f'{{"v":0,"t":"w{i} "}}'})
            time.sleep(TOKEN_MS / 1000)
        redis.xadd(key, {"type": "done", "data": "{}"})
        for thread in threads:
            thread.join(60)
        cpu = stack.cpu_seconds()[holder] - cpu0
        redis.close()
        return {"server": "gevent stream server" if stream_server else f"gthread page server, {STREAMS // 2 + 32} threads x 2",
                "streams": STREAMS, "ended": sum(ended), "pss_mib": pss,
                "page_p50_ms": statistics.median(pages), "page_max_ms": max(pages),
                "fanout_cpu_ms_per_stream": cpu * 1000 / STREAMS}
    finally:
        stack.stop()


def main() -> int:
    results = []
    for stream_server in (True, False):
        log(f"holding {STREAMS} streams: {'gevent stream server' if stream_server else 'gthread page server'}...")
        results.append(measure(stream_server))
    for r in results:
        print(f"{r['server']}: {r['ended']}/{r['streams']} streams got done; holder PSS {r['pss_mib']:.0f} MiB "
              f"with all open; /login p50 {r['page_p50_ms']:.0f} ms (max {r['page_max_ms']:.0f}) meanwhile; "
              f"fan-out of {TOKENS} entries + done: {r['fanout_cpu_ms_per_stream']:.1f} ms CPU per stream", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
