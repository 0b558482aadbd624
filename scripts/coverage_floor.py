"""`make test`'s last step: the modules where a bug costs users money or data stay above 90% covered.

The total is reported by pytest-cov; a total hides a thin module, so this reads the run's .coverage
data and fails, naming each one, when an important module falls below the floor.
Usage: python -m scripts.coverage_floor [data file]   (after `pytest --cov`)
"""
from __future__ import annotations

import sys
from fnmatch import fnmatch
from pathlib import Path

import coverage

FLOOR = 90.0
# Money (quota, billing, bulk charges), the generation's life (job, streams, recovery, outbox),
# who may do what (auth, API keys, idempotency, workspaces), what leaves the building (webhooks).
IMPORTANT = (
    "app/quota/*.py",
    "app/billing/services.py", "app/billing/gateway.py", "app/billing/views.py",
    "app/generation/tasks.py", "app/generation/services.py", "app/generation/streams.py",
    "app/generation/recovery.py", "app/generation/stop.py", "app/generation/output.py",
    "app/outbox/services.py",
    "app/llm/__init__.py", "app/llm/settings.py",
    "app/auth/services.py", "app/auth/sessions.py",
    "app/workspaces/services.py",
    "app/api/auth.py", "app/api/keys.py", "app/api/idempotency.py",
    "app/bulk/services.py", "app/bulk/tasks.py",
    "app/webhooks/guard.py", "app/webhooks/services.py", "app/webhooks/tasks.py",
    "app/catalog/rendering.py", "app/security.py",
)
# Not listed: workers/threaded.py and workers/__main__.py run only in the real worker processes that
# tests/workers/ starts and signals; coverage measures the pytest process, not those.


def percent(cov: coverage.Coverage, path: str) -> float:
    _name, statements, _excluded, missing, _text = cov.analysis2(path)
    return 100.0 if not statements else 100.0 * (len(statements) - len(missing)) / len(statements)


def _in_repo(path: str) -> str | None:
    """`app/...` or `workers/...` for a measured file (wherever the checkout that measured it was)."""
    parts = Path(path).parts
    for index, part in enumerate(parts):
        if part in ("app", "workers"):
            return "/".join(parts[index:])
    return None


def main(data_file: str = ".coverage") -> int:
    cov = coverage.Coverage(data_file=data_file)
    cov.load()
    measured = {relative: f for f in cov.get_data().measured_files() if (relative := _in_repo(f))}
    low, checked = [], 0
    for pattern in IMPORTANT:
        files = sorted(p for p in measured if fnmatch(p, pattern))
        if not files:
            low.append(f"{pattern}: not measured (moved or renamed? update scripts/coverage_floor.py)")
        for relative in files:
            checked += 1
            value = percent(cov, measured[relative])
            if value < FLOOR:
                low.append(f"{relative}: {value:.1f}%")
    if low:
        print(f"coverage floor: {len(low)} important module(s) below {FLOOR:.0f}%:\n  " + "\n  ".join(low))
        return 1
    print(f"coverage floor: {checked} important modules at or above {FLOOR:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
