"""Idle footprint of `make run`'s stack: processes and PSS, with the default pool and the local-model pool.

    .venv/bin/python -m bench.footprint

Starts the stack twice the way `make run` does (bench/stack.py; the fake LLM stands in for the model
in both, so only the pool in front of it differs), waits until it is healthy and 10 s idle, then
counts the processes of every component and sums their PSS (smaps_rollup). "local" applies
scripts/run.py's LOCAL_MODEL_POOL, the sizing `make run` uses in front of the bundled local model.
Prints one line per configuration and a JSON summary last.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.stack import Stack, _process_stats, group_pss_mib, make_run_module

COMPONENTS = ("redis", "web", "stream", "worker")


def measure(pool: dict[str, str]) -> dict:
    saved = {k: os.environ.get(k) for k in pool}
    os.environ.update(pool)
    try:
        with tempfile.TemporaryDirectory(prefix="copydeck-footprint-") as tmp:
            stack = Stack(Path(tmp), ttft_ms=0, tokens=5, token_ms=0)
            try:
                stack.start()
                time.sleep(10)  # idle: start-up work (imports, forks, first connections) is over
                stats = _process_stats()
                result = {"rq_workers": stack.rq_workers, "processes": 0, "pss_mib": 0.0, "by": {}}
                for name in COMPONENTS:
                    proc = stack.procs.get(name)
                    if proc is None:
                        continue
                    count = sum(1 for _pid, group, _f in stats if group == proc.pid)
                    pss = group_pss_mib(proc.pid)
                    result["by"][name] = {"processes": count, "pss_mib": round(pss, 1)}
                    result["processes"] += count
                    result["pss_mib"] += pss
                result["pss_mib"] = round(result["pss_mib"], 1)
                return result
            finally:
                stack.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main() -> None:
    local_pool = make_run_module().LOCAL_MODEL_POOL
    bench_names = {"RQ_WORKERS": "BENCH_RQ_WORKERS", "WEB_CONCURRENCY": "BENCH_WEB_WORKERS",
                   "WEB_THREADS": "BENCH_WEB_THREADS"}  # bench/stack.py scrubs these, and reads the BENCH_ names
    local = {bench_names.get(k, k): v for k, v in local_pool.items()}
    results = {"cores": os.cpu_count(), "default": measure({}), "local": measure(local)}
    for name in ("default", "local"):
        r = results[name]
        parts = ", ".join(f"{k} {v['processes']} proc {v['pss_mib']} MiB" for k, v in r["by"].items())
        print(f"{name:8s} {r['processes']:3d} processes, {r['pss_mib']:7.1f} MiB PSS, {r['rq_workers']} RQ workers ({parts})")
    print(json.dumps(results))


if __name__ == "__main__":
    main()


def first_hour_figures() -> dict:
    """Issue 14's figures for `make bench`'s last line: idle footprint of both pools, list compliance (fake LLM)."""
    from bench import list_compliance
    from app.llm import LLMSettings
    from tests.fakes.openai_server import FakeOpenAI

    local_pool = make_run_module().LOCAL_MODEL_POOL
    bench_names = {"RQ_WORKERS": "BENCH_RQ_WORKERS", "WEB_CONCURRENCY": "BENCH_WEB_WORKERS",
                   "WEB_THREADS": "BENCH_WEB_THREADS"}
    default, local = measure({}), measure({bench_names.get(k, k): v for k, v in local_pool.items()})
    with FakeOpenAI() as fake:
        settings = LLMSettings(base_url=fake.base_url, api_key="local", model="fake-model", max_attempts=1)
        plain = list_compliance.run(settings, 10, None, "google-ads-headlines")
        structured = list_compliance.run(settings, 10, "llama_cpp", "google-ads-headlines")
    return {"idle_procs_default": default["processes"], "idle_pss_mib_default": default["pss_mib"],
            "idle_procs_local": local["processes"], "idle_pss_mib_local": local["pss_mib"],
            "list_ok_plain_fake": f"{plain['both']}/{plain['runs']}",
            "list_ok_structured_fake": f"{structured['both']}/{structured['runs']}"}


def first_hour_keys(m: dict) -> str:
    """The keys first_hour_figures adds to the last line (after the existing ones), when measured."""
    keys = ("idle_procs_default", "idle_pss_mib_default", "idle_procs_local", "idle_pss_mib_local",
            "list_ok_plain_fake", "list_ok_structured_fake")
    return "".join(f" {key}={m[key]}" for key in keys if key in m)
