"""`make bench-scale` / `python -m bench.scale`: Copydeck's pages at a million generations.

Against the scratch PostgreSQL database named by DATABASE_URL it
  1. refuses unless the database is empty or one this bench filled before (its marker
     table `bench_scale_marker`); its name must contain "test" or "bench";
  2. migrates it to the head and seeds the catalogue and plans, as `make run` does;
  3. seeds BENCH_GENERATIONS (1,000,000) generations with 3 variants each, across 100
     workspaces (the largest gets 30%: 300,000, with 50 members), spread over the last 365
     days, with a settled quota charge each on its member's monthly ledger, using COPY
     (psycopg); secondary indexes are dropped for the load and rebuilt after it;
  4. measures, in-process with Flask's test client logged in as the largest workspace's
     owner, the server time of: history first page, history page 50 (by cursor), search
     for a common word, a rare word and a phrase, usage for the last full month, members (50), the
     catalogue; BENCH_RUNS (30) runs each after 3 warm-up runs; p50/p95;
  5. prints the EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of the slowest page;
  6. empties the database again (drops the public schema's tables), unless BENCH_KEEP=1.
BENCH_REUSE=1 measures again the rows a BENCH_KEEP=1 run left (no seeding).

The very last line of stdout:
  history_p95_ms=<n> search_p95_ms=<n> usage_p95_ms=<n> members_p95_ms=<n>
(history = the slower of first page and page 50; search = the slowest of the three).
Target: 50 ms each. Progress goes to stderr. Recorded figures: bench/README.md.
"""
from __future__ import annotations

import os
import random
import re
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "bench_scale_marker"
TARGET_MS = 50
WORKSPACES = 100
LARGEST_SHARE = 0.30
MEMBERS_LARGEST = 50
VARIANTS = 3
COMMON_WORD = "launch"  # in about a third of the copy
RARE_WORD = "zanzibarine"  # in 12 generations of the largest workspace
PHRASE = '"summer sale"'

# Copy is assembled from these, so some words are common and some rare, as in real copy.
OPENERS = ["Meet", "Discover", "Say hello to", "Introducing", "Get ready for", "Unwrap", "Try", "Love"]
PRODUCTS = ["juniper mugs", "trail shoes", "oat milk", "desk lamps", "linen shirts", "cold brew", "yoga mats",
            "wool socks", "travel mugs", "garden tools", "phone cases", "herbal tea", "city bikes", "rain jackets"]
CLAIMS = ["built to last", "made for mornings", "designed in Lisbon", "loved by makers", "now with free shipping",
          "crafted by hand", "ready for the weekend", "good for the planet", "light as air", "twice as warm"]
CLOSERS = ["Shop the summer sale today.", "Order now and save 20%.", "Join the launch list.",
           "See what's new this week.", "Limited stock: don't wait.", "Free returns, always.",
           "Our spring launch starts now.", "Tag a friend who needs this."]
TOPICS = ["Spring launch", "Black Friday", "Summer sale", "New collection", "Back to school", "Holiday gifts",
          "Customer stories", "Product update", "Brand refresh", "Weekend offer"]


def log(message: str) -> None:
    print(f"[bench-scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def check_database(url: str, reuse: bool = False) -> bool:
    """Refuse anything but an empty scratch PostgreSQL database or one this bench filled."""
    import psycopg

    if not url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        sys.exit("bench-scale: DATABASE_URL must name a scratch PostgreSQL database")
    name = url.rsplit("/", 1)[-1].split("?")[0]
    if "test" not in name and "bench" not in name:
        sys.exit(f"bench-scale: refusing database {name!r}: a scratch database's name contains 'test' or 'bench'")
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        if tables and MARKER not in tables:
            sys.exit(f"bench-scale: refusing database {name!r}: it has {len(tables)} tables and was not "
                     f"filled by this bench (no {MARKER} table). Use an empty scratch database.")
        if reuse and "generations" in tables:
            log(f"measuring the rows an earlier run left in {name}")
            return True
        if tables:
            log(f"emptying {name} (filled by an earlier run)")
        empty(conn)
        conn.execute(f"CREATE TABLE {MARKER} (created_at timestamp DEFAULT now())")
    return False


def empty(conn) -> None:
    """Drop every table of the public schema (this bench's own database only)."""
    conn.execute("DROP SCHEMA public CASCADE")
    conn.execute("CREATE SCHEMA public")


def _libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def seed(app, url: str, total: int) -> dict:
    """Users, workspaces, memberships and ledgers through SQL; generations, variants and charges by COPY."""
    import psycopg
    from werkzeug.security import generate_password_hash

    from app.extensions import db
    from app.catalog.models import Template

    rng = random.Random(13)
    with app.app_context():
        templates = [(t.id, t.published_version_id, t.name) for t in db.session.query(Template)
                     .filter(Template.published_version_id.isnot(None)).order_by(Template.id)]
    password_hash = generate_password_hash("bench-password-1")
    largest = int(total * LARGEST_SHARE)
    sizes = [largest] + [(total - largest) // (WORKSPACES - 1)] * (WORKSPACES - 1)
    sizes[-1] += total - sum(sizes)
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    start = now - timedelta(days=365)

    with psycopg.connect(_libpq(url)) as conn:
        # Workspaces and members: the largest has 50 members, the others 1 to 3.
        members: dict[int, list[int]] = {}
        user_id = 0
        with conn.cursor() as cur:
            with cur.copy("COPY users (id, email, password_hash, is_site_admin, is_suspended, created_at) "
                          "FROM STDIN") as copy:
                for ws in range(1, WORKSPACES + 1):
                    count = MEMBERS_LARGEST if ws == 1 else rng.randint(1, 3)
                    members[ws] = []
                    for _ in range(count):
                        user_id += 1
                        members[ws].append(user_id)
                        copy.write_row((user_id, f"user{user_id}@bench.example", password_hash, False, False, start))
            with cur.copy("COPY workspaces (id, name, plan, seats, generations_per_seat, quota_mode, free_allowance, "
                          "cancel_at_period_end, created_at) FROM STDIN") as copy:
                for ws in range(1, WORKSPACES + 1):
                    copy.write_row((ws, f"Workspace {ws}", "business", max(len(members[ws]), 1), 100000,
                                    "per_seat", False, False, start))
            with cur.copy("COPY memberships (id, workspace_id, user_id, role, created_at) FROM STDIN") as copy:
                mid = 0
                for ws, users in members.items():
                    for i, uid in enumerate(users):
                        mid += 1
                        copy.write_row((mid, ws, uid, "owner" if i == 0 else ("admin" if i < 3 else "member"), start))
            # One calendar ledger per member and month.
            months = []
            day = date(start.year, start.month, 1)
            while day <= now.date():
                months.append(day)
                day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
            ledger_of: dict[tuple[int, date], int] = {}
            with cur.copy("COPY quota_ledgers (id, workspace_id, subject, period_kind, period_start, allowance, "
                          "used, reserved, created_at) FROM STDIN") as copy:
                lid = 0
                for ws, users in members.items():
                    for uid in users:
                        for month in months:
                            lid += 1
                            ledger_of[(uid, month)] = lid
                            copy.write_row((lid, ws, f"user:{uid}", "calendar", month, 100000, 0, 0, start))
        conn.commit()
        log(f"{user_id} users, {WORKSPACES} workspaces, {len(ledger_of)} ledgers")

        # Copy pools: variant texts and topics, so text generation is not the bottleneck.
        texts = [f"{rng.choice(OPENERS)} our {rng.choice(PRODUCTS)}: {rng.choice(CLAIMS)}, "
                 f"{rng.choice(CLAIMS)}. {rng.choice(CLOSERS)}" for _ in range(4000)]
        for i in range(0, 4000, 3):  # a third of the copy mentions the launch
            texts[i] = texts[i].replace("Meet", "Launch").replace("Try", "Launch day:") + " Launch week!"
        system_prompt = "You are an expert copywriter. Write in English with a friendly tone. " * 2
        dropped = _drop_secondary_indexes(conn, ("generations", "variants", "quota_charges"))
        conn.execute("SET session_replication_role = replica")  # no FK triggers during the load
        seconds = time.monotonic()
        gid = vid = cid = 0
        rare_left = 12
        step = timedelta(seconds=365 * 86400 / max(total, 1))
        with conn.cursor() as cur:
            with cur.copy("COPY generations (id, workspace_id, user_id, template_id, template_version_id, inputs, "
                          "tone, language, variant_count, creativity, system_prompt, user_prompt, status, model, "
                          "prompt_tokens, completion_tokens, search_document, created_at, started_at, finished_at) "
                          "FROM STDIN") as gcopy:
                # Interleave workspaces over time: generation n of the whole site at start + n * step.
                order = [ws for ws, size in enumerate(sizes, start=1) for _ in range(size)]
                rng.shuffle(order)
                variant_rows = []
                charge_rows = []
                for n, ws in enumerate(order):
                    gid += 1
                    created = start + step * n
                    uid = members[ws][n % len(members[ws])]
                    template_id, version_id, template_name = templates[n % len(templates)]
                    topic = TOPICS[n % len(TOPICS)]
                    chosen = [texts[(n * 7 + k * 13) % len(texts)] for k in range(VARIANTS)]
                    if ws == 1 and rare_left and n % 9973 == 0:
                        chosen[0] += f" {RARE_WORD.capitalize()} spice inside."
                        rare_left -= 1
                    status = "failed" if n % 97 == 0 else "succeeded"
                    inputs = '{"topic": "%s", "audience": "busy parents"}' % topic
                    document = "\n".join([template_name, topic, "busy parents", *chosen]).lower()
                    gcopy.write_row((gid, ws, uid, template_id, version_id, inputs, "Friendly", "English", VARIANTS,
                                     0.7, system_prompt, f"Write about {topic} for busy parents.", status,
                                     "gpt-4o-mini", 120, 180, document, created, created, created))
                    for k, text in enumerate(chosen):
                        vid += 1
                        variant_rows.append((vid, gid, k, text, False, False, False, k == 0 and n % 50 == 0, 0,
                                             created))
                    if status == "succeeded":
                        cid += 1
                        ledger = ledger_of[(uid, date(created.year, created.month, 1))]
                        charge_rows.append((cid, gid, ledger, VARIANTS, "settled", created, created))
                    if gid % 100000 == 0:
                        log(f"  {gid:,} generations written ({time.monotonic() - seconds:.0f} s)")
            log(f"generations copied in {time.monotonic() - seconds:.0f} s")
            with cur.copy("COPY variants (id, generation_id, position, text, over_limit, repaired, cut_off, "
                          "is_favourite, rating, created_at) FROM STDIN") as copy:
                for row in variant_rows:
                    copy.write_row(row)
            variant_rows.clear()
            log(f"variants copied ({time.monotonic() - seconds:.0f} s)")
            with cur.copy("COPY quota_charges (id, generation_id, ledger_id, amount, state, created_at, updated_at) "
                          "FROM STDIN") as copy:
                for row in charge_rows:
                    copy.write_row(row)
            charge_rows.clear()
            log(f"charges copied ({time.monotonic() - seconds:.0f} s)")
            # Ledgers say what their charges used.
            cur.execute("UPDATE quota_ledgers l SET used = s.amount FROM (SELECT ledger_id, SUM(amount) AS amount "
                        "FROM quota_charges GROUP BY ledger_id) s WHERE s.ledger_id = l.id")
            # The usage report's rollup, as the settle path would have kept it (app/quota/rollup.py).
            from app.checks.figures import backfill_statements as check_backfill
            from app.quota.rollup import backfill_statements
            for statement in backfill_statements("postgresql") + check_backfill("postgresql"):
                cur.execute(statement)
            log(f"usage_daily and check_daily rolled up ({time.monotonic() - seconds:.0f} s)")
            for table, column in (("users", "id"), ("workspaces", "id"), ("memberships", "id"),
                                  ("quota_ledgers", "id"), ("generations", "id"), ("variants", "id"),
                                  ("quota_charges", "id")):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                            f"(SELECT COALESCE(MAX({column}), 1) FROM {table}))")
        conn.execute("SET session_replication_role = origin")
        conn.commit()
        rebuilt = time.monotonic()
        conn.execute("SET maintenance_work_mem = '512MB'")
        for statement in dropped:
            conn.execute(statement)
        conn.commit()
        log(f"{len(dropped)} indexes rebuilt in {time.monotonic() - rebuilt:.0f} s")
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        vacuumed = time.monotonic()
        conn.execute("VACUUM (ANALYZE)")
        log(f"VACUUM ANALYZE in {time.monotonic() - vacuumed:.0f} s")
    return {"owner_email": "user1@bench.example", "largest": largest, "seconds": time.monotonic() - seconds}


def _drop_secondary_indexes(conn, tables: tuple[str, ...]) -> list[str]:
    """Drop the tables' indexes that back no constraint; return the statements that rebuild them."""
    rows = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' AND i.tablename = ANY(%s) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", (list(tables),)).fetchall()
    for name, _definition in rows:
        conn.execute(f'DROP INDEX "{name}"')
    conn.commit()
    return [definition for _name, definition in rows]


def _last_full_month() -> date:
    today = datetime.now(timezone.utc).date()
    return date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)


def measure(app, seeded: dict, runs: int) -> tuple[dict, dict]:
    """p50/p95 server time of each page, and the statements of each page's last run with their times."""
    from sqlalchemy import event

    from app.extensions import db

    client = app.test_client()
    response = client.post("/login", data={"email": seeded["owner_email"], "password": "bench-password-1"})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    # Page 50 by cursor: walk the 49 pages before it (not timed).
    url = "/history"
    for _ in range(49):
        page = client.get(url).get_data(as_text=True)
        found = re.search(r'href="(/history\?after=[^"]+)"', page)
        url = found.group(1).replace("&amp;", "&")
    pages = {
        "history_first": "/history",
        "history_page50": url,
        "search_common": f"/history?q={COMMON_WORD}",
        "search_rare": f"/history?q={RARE_WORD}",
        "search_phrase": f"/history?q={PHRASE}",
        # The last full month (about 25,000 generations of the largest workspace), not the current one,
        # which may be a day old.
        "usage_month": f"/workspace/usage?period={_last_full_month().isoformat()}",
        "members_50": "/workspace/members",
        "catalogue": "/templates",
    }
    with app.app_context():
        engine = db.engine
    timings: dict[str, list[float]] = {}
    cpu_ms: dict[str, list[float]] = {}  # the app's own CPU (Python) per request, without the database's
    statements: dict[str, list] = {}
    for name, path in pages.items():
        for _ in range(3):
            assert client.get(path).status_code == 200, path
        values, cpu = [], []
        for _ in range(runs):
            started, cpu_started = time.perf_counter(), time.thread_time()
            response = client.get(path)
            values.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - cpu_started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        timings[name] = values
        cpu_ms[name] = cpu
        recorded: list = []

        def before(conn, cursor, statement, parameters, context, executemany):
            conn.info["bench_started"] = time.perf_counter()

        def after(conn, cursor, statement, parameters, context, executemany):
            # The listener is removed before the loop moves on, so `recorded` is this round's list.
            recorded.append(((time.perf_counter() - conn.info.pop("bench_started")) * 1000, statement, parameters))  # noqa: B023

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        client.get(path)
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        statements[name] = recorded
        log(f"{name}: p50 {percentile(values, 50):.1f} ms, p95 {percentile(values, 95):.1f} ms "
            f"({len(recorded)} statements)")
    return timings, cpu_ms, statements


def explain_slowest(app, timings: dict, statements: dict) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of the slowest page."""
    from app.extensions import db

    page = max(timings, key=lambda name: percentile(timings[name], 95))
    ms, statement, parameters = max(statements[page], key=lambda row: row[0])
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            raw.rollback()
        finally:
            raw.close()
    return f"slowest page: {page}; its slowest statement ({ms:.1f} ms):\n{statement}\n{parameters}\n\n{plan}"


def main() -> int:
    url = os.environ.get("DATABASE_URL", "")
    total = _env_int("BENCH_GENERATIONS", 1_000_000)
    runs = _env_int("BENCH_RUNS", 30)
    reused = check_database(url, reuse=os.environ.get("BENCH_REUSE") == "1")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("SECRET_KEY", "bench-scale")
    from flask_migrate import upgrade

    from app import create_app
    from app.billing.services import seed_plans
    from app.catalog.services import seed_templates
    from app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://" + url.split("://", 1)[1], "TESTING": True,
                      "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    try:
        if reused:
            seeded = {"owner_email": "user1@bench.example"}
        else:
            with app.app_context():
                upgrade(directory=str(ROOT / "migrations"))
                seed_templates()
                seed_plans()
                db.session.commit()
                db.session.remove()
            log(f"seeding {total:,} generations ({VARIANTS} variants each) across {WORKSPACES} workspaces")
            seeded = seed(app, url, total)
            log(f"seeded in {seeded['seconds']:.0f} s")
        log(f"measuring ({runs} runs per page)")
        timings, cpu_ms, statements = measure(app, seeded, runs)
        print(f"load average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
              f"on {os.cpu_count()} CPUs")
        print(f"{'page':<16} {'p50 ms':>8} {'p95 ms':>8} {'app CPU p50':>12} {'SQL ms':>8}  statements")
        for name, values in timings.items():
            sql = sum(row[0] for row in statements[name])
            print(f"{name:<16} {percentile(values, 50):>8.1f} {percentile(values, 95):>8.1f} "
                  f"{percentile(cpu_ms[name], 50):>12.1f} {sql:>8.1f}  {len(statements[name])}")
        print()
        print(explain_slowest(app, timings, statements))
        p95 = {name: percentile(values, 95) for name, values in timings.items()}
        figures = {
            "history_p95_ms": max(p95["history_first"], p95["history_page50"]),
            "search_p95_ms": max(p95["search_common"], p95["search_rare"], p95["search_phrase"]),
            "usage_p95_ms": p95["usage_month"],
            "members_p95_ms": p95["members_50"],
        }
        missed = [k for k, v in figures.items() if v > TARGET_MS]
        print()
        print(f"target <= {TARGET_MS} ms each: " + ("met" if not missed else "missed by " + ", ".join(missed)))
        print(" ".join(f"{k}={round(v)}" for k, v in figures.items()))
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if os.environ.get("BENCH_KEEP") != "1":
            import psycopg

            with psycopg.connect(_libpq(url), autocommit=True) as conn:
                empty(conn)
                conn.execute(f"CREATE TABLE {MARKER} (created_at timestamp DEFAULT now())")
            log("database emptied (BENCH_KEEP=1 keeps the rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
