"""The API's part of `make bench`: `api_ttft_added_ms`.

Time to first token through /api/v1 (POST /generations with a Bearer key, then its SSE stream on the
live-stream server, as an API client behind the same routing as the browser) against one direct
streaming call with the openai client, BENCH_API_RUNS times alternating; the figure is the
difference of the medians (target <= 30 ms, as the browser path's ttft_added_ms).
`BENCH_ONLY=api make bench` runs only this part (no bursts): the full bench is heavy for a shared machine.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from bench.client import Timing, User, direct_call, template_form

# Run inside the stack's environment: a Business workspace of its own and a key charging its owner.
SETUP = """
import sys
from app import create_app
from app.extensions import db
from app.auth import services as auth
from app.api import keys
from app.workspaces import services as teams
from app.workspaces.models import Membership, Workspace
app = create_app()
with app.app_context():
    user = auth.sign_up("bench-api@bench.copydeck.app", "bench-password-1")
    workspace_id = db.session.query(Membership.workspace_id).filter_by(user_id=user.id).scalar()
    teams.set_seats(workspace_id, 1, generations_per_seat=10000, plan="business")
    made = keys.create(db.session.get(Workspace, workspace_id), user, name="bench", scopes=["generate", "read"],
                       charge_user_id=user.id, expires_at=None)
    db.session.commit()
    print(made.secret)
"""


class ApiUser(User):
    """A developer's script: POST /api/v1/generations, then follow /api/v1/generations/<id>/stream."""

    def __init__(self, base_url: str, stream_url: str, key: str, timeout: float):
        super().__init__(base_url, 9999, timeout, stream_url.rstrip("/") + "/api/v1")
        self.session.headers["Authorization"] = f"Bearer {key}"

    def generate_api(self, slug: str, fields: dict) -> Timing:
        self.session.close()
        t = Timing(submitted=time.monotonic())
        try:
            resp = self.session.post(f"{self.base_url}/api/v1/generations", timeout=(10, self.timeout),
                                     json={"template": slug, "variants": 1, "fields": fields})
            t.redirected = time.monotonic()
            if resp.status_code != 202:
                t.outcome = f"http {resp.status_code} on submit"
                return t
            t.generation_id = resp.json()["id"]
            self._follow(t, t.submitted + self.timeout)
        except Exception as exc:  # noqa: BLE001 - every failure is a counted error
            t.outcome = f"error: {type(exc).__name__}: {exc}"[:200]
        return t


def make_key(stack) -> str:
    from bench.stack import ROOT
    done = subprocess.run([sys.executable, "-c", SETUP], env=stack.env, cwd=str(ROOT), capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"could not create the bench's API key: {done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def measure(bench) -> dict:
    """(api) BENCH_API_RUNS API generations, direct openai calls and browser generations, in rotation."""
    import openai

    from bench.run import db_rows

    runs = int(os.environ.get("BENCH_API_RUNS") or 8)
    stack = bench.stack
    user = ApiUser(stack.base_url, stack.stream_url, make_key(stack), bench.timeout)
    fields = {name[2:]: value for name, value in template_form(bench.slug, 1).items() if name.startswith("f_")}
    warm = [user.generate_api(bench.slug, fields) for _ in range(2)]  # this path's first-use costs
    if not warm[-1].ok:
        raise RuntimeError(f"API warm-up generation failed: {warm[-1].outcome}")
    row = db_rows(stack.env["DATABASE_URL"], [warm[-1].generation_id])[warm[-1].generation_id]
    messages = [{"role": "system", "content": row["system_prompt"]}, {"role": "user", "content": row["user_prompt"]}]
    max_tokens = int(os.environ.get("LLM_MAX_TOKENS") or 800)
    client = openai.OpenAI(base_url=stack.llm_url, api_key="bench", max_retries=0, timeout=30)
    direct_call(client, row["model"], messages, row["creativity"], max_tokens)
    # The browser's path in the same minutes, for comparison on a machine whose load varies.
    browser = User(stack.base_url, 9998, bench.timeout, stack.stream_url)
    browser.signup()
    browser.prepare(bench.slug)
    form1 = template_form(bench.slug, 1)
    browser.generate(bench.slug, form1)
    api_runs: list[Timing] = []
    direct_runs: list[Timing] = []
    browser_runs: list[Timing] = []
    kinds = ("api", "direct", "browser")
    for i in range(min(runs, 18)):  # the browser user has 20 Free generations
        for kind in kinds[i % 3:] + kinds[:i % 3]:
            time.sleep(0.3)
            if kind == "api":
                api_runs.append(user.generate_api(bench.slug, fields))
            elif kind == "browser":
                browser_runs.append(browser.generate(bench.slug, form1))
            else:
                direct_runs.append(direct_call(client, row["model"], messages, row["creativity"], max_tokens))
    client.close()
    failed = [t.outcome for t in api_runs + direct_runs + browser_runs if not t.ok]
    if failed:
        raise RuntimeError(f"(api) had failed generations: {failed}")

    def med(items: list[Timing], attr: str) -> float:
        return statistics.median(t.ms(attr) for t in items)

    return {"runs": runs, "api_ttft": med(api_runs, "first_token"), "direct_ttft": med(direct_runs, "first_token"),
            "api_submit": med(api_runs, "redirected"), "api_total": med(api_runs, "finished"),
            "direct_total": med(direct_runs, "finished"), "browser_ttft": med(browser_runs, "first_token"),
            "browser_submit": med(browser_runs, "redirected"),
            "api_ttft_all": [round(t.ms("first_token"), 1) for t in api_runs],
            "direct_ttft_all": [round(t.ms("first_token"), 1) for t in direct_runs]}


def added_ms(report: dict) -> int | None:
    api = report.get("api")
    return round(api["api_ttft"] - api["direct_ttft"]) if api else None


def report_lines(api: dict) -> list[str]:
    return [f"(api) {api['runs']} generations through /api/v1 (POST, then its SSE stream) vs direct openai calls",
            f"    time to first token: API {api['api_ttft']:.0f} ms, direct {api['direct_ttft']:.0f} ms "
            f"(added {api['api_ttft'] - api['direct_ttft']:.0f} ms; target <= 30)",
            f"    POST -> 202: {api['api_submit']:.0f} ms; total: API {api['api_total']:.0f} ms, "
            f"direct {api['direct_total']:.0f} ms",
            f"    the browser's path meanwhile: TTFT {api['browser_ttft']:.0f} ms (added "
            f"{api['browser_ttft'] - api['direct_ttft']:.0f} ms), POST -> 302 {api['browser_submit']:.0f} ms",
            f"    API TTFTs: {api['api_ttft_all']}", f"    direct TTFTs: {api['direct_ttft_all']}"]
