"""Bench phase (d): interactive generations while a bulk run is in progress, and the run's throughput.

A Business user uploads a BENCH_BULK_ROWS-row sheet (1,000 by default) through the real pages (upload, map,
check, run). While its rows run on the bulk queue, the single user of (a) makes BENCH_RUNS generations
again; `bulk_interactive_ratio` is the larger of the two medians' ratios (time to first token, total) to
(a)'s without a bulk run (target <= 1.2: the interactive queue comes first and a workspace has at most
BULK_CONCURRENCY rows in flight). `bulk_rows_per_s` is rows done / (finished - started) of the run.
"""
from __future__ import annotations

import csv
import io
import time

from sqlalchemy import create_engine, text

from bench.client import User

SLUG = "product-description"


def _sheet(rows: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Product name", "Features & details", "Target customer"])
    for i in range(rows):
        writer.writerow([f"Bench mug {i}", f"Stoneware, {200 + i} ml, dishwasher safe", "Coffee lovers"])
    return buffer.getvalue().encode()


def start_run(base_url: str, stream_url: str, database_url: str, index: int, rows: int) -> tuple[int, object]:
    """Sign a user up, make their workspace Business, and start a run of `rows` rows; (run id, engine)."""
    user = User(base_url, index, 60.0, stream_url)
    user.signup()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE workspaces SET plan = 'business', generations_per_seat = :n WHERE id IN "
                          "(SELECT m.workspace_id FROM memberships m JOIN users u ON u.id = m.user_id "
                          "WHERE u.email = :email)"), {"n": rows * 2, "email": user.email})
    token = user._csrf_from(f"/bulk/new/{SLUG}")
    resp = user.session.post(f"{base_url}/bulk/new/{SLUG}", data={"csrf_token": token}, allow_redirects=False,
                             files={"file": ("bench.csv", _sheet(rows), "text/csv")}, timeout=120)
    if resp.status_code != 302:
        raise RuntimeError(f"bulk upload answered {resp.status_code}")
    run_id = int(resp.headers["Location"].split("/")[2])
    token = user._csrf_from(f"/bulk/{run_id}/map")
    mapping = {"csrf_token": token, "action": "mapping", "field_product_column": "Product name",
               "field_features_column": "Features & details", "field_audience_column": "Target customer",
               "setting_tone_value": "Friendly", "setting_language_value": "English",
               "setting_variant_count_value": "1", "setting_creativity_value": "balanced"}
    resp = user.session.post(f"{base_url}/bulk/{run_id}/map", data=mapping, allow_redirects=False, timeout=120)
    if resp.status_code != 302:
        raise RuntimeError(f"bulk mapping answered {resp.status_code}")
    token = user._csrf_from(f"/bulk/{run_id}/check")
    resp = user.session.post(f"{base_url}/bulk/{run_id}/check", data={"csrf_token": token, "scope": "all"},
                             allow_redirects=False, timeout=120)
    if resp.status_code != 302:
        raise RuntimeError(f"bulk start answered {resp.status_code}")
    return run_id, engine


def counts(engine, run_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT status, COUNT(*) FROM bulk_rows WHERE run_id = :r GROUP BY status"),
                                 {"r": run_id}).all())


def wait_finished(engine, run_id: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT status, started_at, finished_at, total_rows FROM bulk_runs "
                                    "WHERE id = :r"), {"r": run_id}).one()
        if row.finished_at is not None:
            done = counts(engine, run_id)
            started, finished = (row.started_at, row.finished_at)
            if isinstance(started, str):
                from datetime import datetime
                started, finished = datetime.fromisoformat(started), datetime.fromisoformat(finished)
            seconds = max((finished - started).total_seconds(), 0.001)
            return {"rows": row.total_rows, "counts": done, "seconds": seconds,
                    "rows_per_s": done.get("done", 0) / seconds}
        time.sleep(1.0)
    raise RuntimeError(f"bulk run {run_id} did not finish within {timeout:.0f} s: {counts(engine, run_id)}")
