"""The bench's figures and its last line, from a recorded report (the harness itself: bench/test_smoke.py)."""
from __future__ import annotations

import re

from bench.run import last_line, metrics

LAST_LINE = re.compile(
    r"^ttft_added_ms=-?\d+ total_ratio=\d+\.\d\d burst_p95_ratio=\d+\.\d\d burst_errors=\d+ "
    r"burst300_p95_ratio=\d+\.\d\d burst300_errors=\d+ cpu_ratio=\d+\.\d\d cpu_ms_per_gen=\d+ "
    r"mib_per_inflight=-?\d+\.\d\d( [a-z0-9_]+=[0-9./]+)*$")  # then later issues' keys (bulk, claims, API, first hour)


def _burst(users: int, p95: float, errors: int, cpu: dict, memory: dict | None = None) -> dict:
    return {"users": users, "variants": 1, "e2e_p95": p95, "errors": errors, "cpu_s": cpu, "memory": memory}


def test_figures_and_last_line_from_a_report():
    report = {
        "single": {"app_ttft": 230.0, "direct_ttft": 205.0, "app_total": 1240.0, "direct_total": 1210.0,
                   "direct_client_cpu_ms": 40.0},
        # 100 generations: 6 CPU-s of stack (the load generator and the fake LLM are not the stack's)
        "burst": _burst(100, 2480.0, 0, {"web": 1.5, "stream": 0.5, "worker": 3.5, "redis": 0.5,
                                         "fake_llm": 2.0, "load generator": 1.0, "other processes": 0.3}),
        "burst300": _burst(300, 3720.0, 2, {}, {"in_flight": 250, "pss_mib": 600.0}),
        "worker_pss_idle_mib": 100.0,
        "api": {"api_ttft": 228.4, "direct_ttft": 206.0},
    }
    m = metrics(report)
    assert m == {"ttft_added_ms": 25, "total_ratio": 1240 / 1210, "burst_p95_ratio": 2.0, "burst_errors": 0,
                 "burst300_p95_ratio": 3.0, "burst300_errors": 2, "cpu_ratio": 1.5, "cpu_ms_per_gen": 60,
                 "mib_per_inflight": 2.0, "api_ttft_added_ms": 22}
    line = last_line({**m, "claims_precision": 0.95, "claims_recall": 0.9})
    assert LAST_LINE.match(line), line
    assert line == ("ttft_added_ms=25 total_ratio=1.02 burst_p95_ratio=2.00 burst_errors=0 burst300_p95_ratio=3.00 "
                    "burst300_errors=2 cpu_ratio=1.50 cpu_ms_per_gen=60 mib_per_inflight=2.00 "
                    "claims_precision=0.95 claims_recall=0.90 api_ttft_added_ms=22")


def test_the_first_hour_keys_follow_the_existing_ones():
    from bench.footprint import first_hour_keys
    m = {"ttft_added_ms": 25, "total_ratio": 1.0, "burst_p95_ratio": 2.0, "burst_errors": 0, "burst300_p95_ratio": 3.0,
         "burst300_errors": 0, "cpu_ratio": 1.5, "cpu_ms_per_gen": 60, "mib_per_inflight": 2.0,
         "idle_procs_default": 12, "idle_pss_mib_default": 900.5, "idle_procs_local": 7, "idle_pss_mib_local": 500.1,
         "list_ok_plain_fake": "0/10", "list_ok_structured_fake": "10/10"}
    line = last_line(m)
    assert LAST_LINE.match(line), line
    assert line.endswith(" mib_per_inflight=2.00" + first_hour_keys(m))
    assert line.endswith("idle_procs_local=7 idle_pss_mib_local=500.1 list_ok_plain_fake=0/10 list_ok_structured_fake=10/10")


def test_the_api_key_follows_when_measured():
    m = {"ttft_added_ms": 25, "total_ratio": 1.0, "burst_p95_ratio": 2.0, "burst_errors": 0, "burst300_p95_ratio": 3.0,
         "burst300_errors": 0, "cpu_ratio": 1.5, "cpu_ms_per_gen": 60, "mib_per_inflight": 2.0,
         "bulk_interactive_ratio": 1.1, "bulk_rows_per_s": 2.5, "api_ttft_added_ms": 22}
    line = last_line(m)
    assert LAST_LINE.match(line), line
    assert line.endswith("mib_per_inflight=2.00 bulk_interactive_ratio=1.10 bulk_rows_per_s=2.50 api_ttft_added_ms=22")


def test_the_api_only_run_has_its_own_last_line():
    m = metrics({"only": "api", "api": {"api_ttft": 230.0, "direct_ttft": 204.6}})
    assert last_line(m) == "api_ttft_added_ms=25"
