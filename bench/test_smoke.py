"""The bench harness end to end with tiny sizes: `pytest bench/test_smoke.py` (about a minute).

Outside tests/ on purpose: it starts a whole private stack, too slow for `make test`.
It checks that the harness runs and prints its last line, never the figures themselves.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.bench.test_last_line import LAST_LINE

ROOT = Path(__file__).resolve().parent.parent
TINY = {"BENCH_USERS": "2", "BENCH_USERS300": "3", "BENCH_RUNS": "1", "BENCH_WARMUP": "1",
        "BENCH_QUIET_WAIT": "0", "BENCH_RQ_WORKERS": "2", "BENCH_API_RUNS": "1"}


def test_the_bench_runs_and_prints_its_last_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    proc = subprocess.run([sys.executable, "-m", "bench.run"], cwd=ROOT, env={**env, **TINY},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert LAST_LINE.match(last), last
    assert "burst_errors=0" in last and "burst300_errors=0" in last
