"""Upgrading keeps existing data: every migration, from the first, on a database with rows in it.

SQLite alters tables by rebuilding them; with foreign keys on, dropping the old
table would cascade and delete every row that references it. This test fills
the first schema with a user, workspace, membership, generation, variant and
quota rows, upgrades to the head, and checks nothing was lost.
"""
from __future__ import annotations

from pathlib import Path

from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text


MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
FIRST = "a000fc399e43"

ROWS = [
    "INSERT INTO users (id, email, password_hash, is_site_admin, is_suspended, created_at) "
    "VALUES (1, 'kept@example.com', 'x', 0, 0, '2026-11-01 10:00:00')",
    "INSERT INTO workspaces (id, name, plan, seats, generations_per_seat, created_at) "
    "VALUES (1, 'Kept', 'free', 1, 20, '2026-11-01 10:00:00')",
    "INSERT INTO memberships (id, workspace_id, user_id, role, created_at) VALUES (1, 1, 1, 'owner', '2026-11-01 10:00:00')",
    "INSERT INTO templates (id, slug, name, category, description, icon, source, created_at) "
    "VALUES (1, 'kept', 'Kept', 'Ads', '', 'sparkles', 'seed', '2026-11-01 10:00:00')",
    "INSERT INTO template_versions (id, template_id, number, fields, system_prompt, user_prompt, output, message, created_at) "
    "VALUES (1, 1, 1, '[]', 's', 'u', '{}', '', '2026-11-01 10:00:00')",
    "UPDATE templates SET published_version_id = 1 WHERE id = 1",
    "INSERT INTO generations (id, workspace_id, user_id, template_id, template_version_id, inputs, tone, language, "
    "variant_count, creativity, system_prompt, user_prompt, status, prompt_tokens, completion_tokens, search_document, created_at) "
    "VALUES (1, 1, 1, 1, 1, '{}', 'Bold', 'English', 1, 0.7, 's', 'u', 'succeeded', 1, 1, 'kept', '2026-11-01 10:00:00')",
    "INSERT INTO variants (id, generation_id, position, text, over_limit, repaired, is_favourite, rating, created_at) "
    "VALUES (1, 1, 0, 'Kept copy', 0, 0, 1, 1, '2026-11-01 10:00:00')",
    "INSERT INTO quota_ledgers (id, workspace_id, subject, period_start, allowance, used, reserved, created_at) "
    "VALUES (1, 1, 'user:1', '2026-11-01', 20, 1, 0, '2026-11-01 10:00:00')",
    "INSERT INTO quota_charges (id, generation_id, ledger_id, amount, state, created_at, updated_at) "
    "VALUES (1, 1, 1, 1, 'settled', '2026-11-01 10:00:00', '2026-11-01 10:00:00')",
]
TABLES = ("users", "workspaces", "memberships", "generations", "variants", "quota_ledgers", "quota_charges")


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}
    engine.dispose()
    return counts


def test_upgrading_a_filled_sqlite_database_loses_nothing(tmp_path, make_app):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    app = make_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision=FIRST)
        from app.extensions import db
        with db.engine.begin() as conn:
            for statement in ROWS:
                conn.execute(text(statement))
        before = _counts(url)
        assert all(before[t] == 1 for t in TABLES)
        upgrade(directory=MIGRATIONS)
        assert _counts(url) == before
        downgrade(directory=MIGRATIONS, revision=FIRST)  # and back, still intact
        assert _counts(url) == before
        # The app's pooled connections have foreign keys on again after a migration.
        for _ in range(3):
            with db.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        db.engine.dispose()
