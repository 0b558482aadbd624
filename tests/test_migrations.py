"""Upgrading keeps existing data: every migration, from the first, on a database with rows in it,
on SQLite and, when DATABASE_URL names PostgreSQL, on a scratch PostgreSQL database of its own.

SQLite alters tables by rebuilding them; with foreign keys on, dropping the old
table would cascade and delete every row that references it. This test fills
the first schema with a user, workspace, membership, generation, variant and
quota rows, upgrades to the head, and checks nothing was lost.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from alembic import command
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, text


MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
FIRST = "a000fc399e43"

ROWS = [
    "INSERT INTO users (id, email, password_hash, is_site_admin, is_suspended, created_at) "
    "VALUES (1, 'kept@example.com', 'x', FALSE, FALSE, '2026-11-01 10:00:00')",
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
    "VALUES (1, 1, 0, 'Kept copy', FALSE, FALSE, TRUE, 1, '2026-11-01 10:00:00')",
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


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path, base_env):
    """An empty database: a SQLite file, or a PostgreSQL database created next to DATABASE_URL's."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url = base_env["DATABASE_URL"]
    if not url.startswith("postgresql"):
        pytest.skip("DATABASE_URL does not name PostgreSQL")
    base, name = url.rsplit("/", 1)
    scratch = f"{name.split('?')[0]}_migrations"
    admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}"'))
        conn.execute(text(f'CREATE DATABASE "{scratch}"'))
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{scratch}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    admin.dispose()


def _alembic_config(app):
    """Alembic's own config, to see a migration's exception (Flask-Migrate turns it into exit 1)."""
    return app.extensions["migrate"].migrate.get_config(MIGRATIONS)


def _filled(make_app, url: str):
    """An app on the database, migrated to the first revision and filled with ROWS."""
    app = make_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    context = app.app_context()
    context.push()
    upgrade(directory=MIGRATIONS, revision=FIRST)
    from app.extensions import db
    with db.engine.begin() as conn:
        for statement in ROWS:
            conn.execute(text(statement))
    return app, context, db


def test_upgrading_a_filled_database_loses_nothing(empty_database, make_app):
    url = empty_database
    app, context, db = _filled(make_app, url)
    try:
        before = _counts(url)
        assert all(before[t] == 1 for t in TABLES)
        upgrade(directory=MIGRATIONS)
        assert _counts(url) == before
        downgrade(directory=MIGRATIONS, revision=FIRST)  # and back, still intact
        assert _counts(url) == before
        if url.startswith("postgresql"):
            # And up again: the downgrades restored every name the upgrades use. (Not on SQLite, where
            # 5c1e7a2b9d40's downgrade leaves templates.workspace_id in place: SQLite cannot drop it.)
            upgrade(directory=MIGRATIONS)
            assert _counts(url) == before
        else:
            # The app's pooled connections have foreign keys on again after a migration.
            for _ in range(3):
                with db.engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.engine.dispose()
        context.pop()


@pytest.mark.parametrize("rows, refusal", [
    (["INSERT INTO templates (id, slug, name, category, description, icon, source, workspace_id, created_at) "
      "VALUES (2, 'ours', 'Ours', 'Ads', '', 'sparkles', 'workspace', 1, '2026-11-01 10:00:00')"],
     "1 workspace template(s) exist"),
    (["UPDATE workspaces SET quota_mode = 'pooled' WHERE id = 1",
      "INSERT INTO quota_ledgers (id, workspace_id, subject, period_kind, period_start, allowance, used, reserved, "
      "created_at) VALUES (2, 1, 'pool', 'calendar', '2026-11-01', 20, 1, 0, '2026-11-01 10:00:00')",
      "INSERT INTO quota_charges (id, generation_id, ledger_id, amount, state, created_at, updated_at) "
      "VALUES (2, 1, 2, 1, 'settled', '2026-11-01 10:00:00', '2026-11-01 10:00:00')"],
     "1 generation(s) have two quota charges"),
], ids=["workspace-templates", "pooled-charges"])
def test_downgrades_that_would_lose_data_refuse(empty_database, rows, refusal, make_app):
    url = empty_database
    app, context, db = _filled(make_app, url)
    try:
        upgrade(directory=MIGRATIONS)
        with db.engine.begin() as conn:
            for statement in rows:
                conn.execute(text(statement))
        before = _counts(url)
        with pytest.raises(RuntimeError, match=re.escape(refusal)):
            command.downgrade(_alembic_config(app), FIRST)
        assert _counts(url) == before
    finally:
        db.engine.dispose()
        context.pop()


def test_a_check_constraint_refuses_bad_existing_rows(empty_database, make_app):
    url = empty_database
    app, context, db = _filled(make_app, url)
    try:
        upgrade(directory=MIGRATIONS, revision="2523b339819b")
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE memberships SET role = 'boss'"))
        with pytest.raises(RuntimeError, match=re.escape("memberships.role = 'boss' in 1 row(s)")):
            command.upgrade(_alembic_config(app), "head")
    finally:
        db.engine.dispose()
        context.pop()
