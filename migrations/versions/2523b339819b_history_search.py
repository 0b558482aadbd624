"""history search: a full-text index of generations on PostgreSQL (tsvector + GIN) and SQLite (FTS5)

Revision ID: 2523b339819b
Revises: 025319670659
Create Date: 2026-12-02 06:30:00

PostgreSQL: a stored generated column search_vector = to_tsvector('simple', search_document)
and a GIN index of (workspace_id, search_vector). Adding a stored column rewrites the table (minutes for millions of rows);
the GIN index is built after it. SQLite: the FTS5 table generations_fts with triggers, filled
from the existing rows. Why words and not trigrams: app/history/search.py.
"""
from alembic import op
import sqlalchemy as sa

from app.history.search import SQLITE_FTS_DROP, SQLITE_FTS_REBUILD, SQLITE_FTS_TABLE, SQLITE_FTS_TRIGGERS

revision = '2523b339819b'
down_revision = '025319670659'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE generations ADD COLUMN search_vector tsvector "
                   "GENERATED ALWAYS AS (to_tsvector('simple', search_document)) STORED")
        # One GIN index of (workspace_id, search_vector) (btree_gin, a trusted contrib extension): a rare
        # word in one workspace is found from its few postings, instead of AND-ing a bitmap of every
        # row of the workspace (300,000 in the bench) with the word's. Without btree_gin: the word alone.
        if op.get_bind().execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gin'")).first():
            op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
            op.execute("CREATE INDEX ix_generations_workspace_id_search_vector ON generations "
                       "USING gin (workspace_id, search_vector)")
        else:
            op.execute("CREATE INDEX ix_generations_search_vector ON generations USING gin (search_vector)")
    else:
        op.execute(SQLITE_FTS_TABLE)
        for statement in SQLITE_FTS_TRIGGERS:
            op.execute(statement)
        op.execute(SQLITE_FTS_REBUILD)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_generations_workspace_id_search_vector")
        op.execute("DROP INDEX IF EXISTS ix_generations_search_vector")
        op.execute("ALTER TABLE generations DROP COLUMN IF EXISTS search_vector")
    else:
        for statement in SQLITE_FTS_DROP:
            op.execute(statement)
