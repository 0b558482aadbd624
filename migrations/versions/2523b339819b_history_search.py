"""history search: a full-text index of generations on PostgreSQL (tsvector + GIN) and SQLite (FTS5)

Revision ID: 2523b339819b
Revises: 7b3f1c9d2e55
Create Date: 2026-12-02 06:30:00

PostgreSQL: a stored generated column search_vector = to_tsvector('simple', search_document)
and its GIN index. Adding a stored column rewrites the table (minutes for millions of rows);
the GIN index is built after it. SQLite: the FTS5 table generations_fts with triggers, filled
from the existing rows. Why words and not trigrams: app/history/search.py.
"""
from alembic import op

from app.history.search import SQLITE_FTS_DROP, SQLITE_FTS_REBUILD, SQLITE_FTS_TABLE, SQLITE_FTS_TRIGGERS

revision = '2523b339819b'
down_revision = '7b3f1c9d2e55'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TABLE generations ADD COLUMN search_vector tsvector "
                   "GENERATED ALWAYS AS (to_tsvector('simple', search_document)) STORED")
        op.execute("CREATE INDEX ix_generations_search_vector ON generations USING gin (search_vector)")
    else:
        op.execute(SQLITE_FTS_TABLE)
        for statement in SQLITE_FTS_TRIGGERS:
            op.execute(statement)
        op.execute(SQLITE_FTS_REBUILD)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_generations_search_vector")
        op.execute("ALTER TABLE generations DROP COLUMN IF EXISTS search_vector")
    else:
        for statement in SQLITE_FTS_DROP:
            op.execute(statement)
