"""knowledge: items, passages, their full-text index per dialect, and generations.knowledge_passages

Revision ID: 3ad074a06b07
Revises: 28bf2021bbd1
Create Date: 2026-12-02 06:30:00

The full-text index differs by dialect and is kept in sync by the database itself:
- SQLite: an FTS5 external-content table over knowledge_passages (heading, text), kept in sync by
  insert/update/delete triggers; ranked with bm25().
- PostgreSQL: a generated tsvector column (english configuration) with a GIN index; ranked with ts_rank.
"""
from alembic import op
import sqlalchemy as sa


revision = '3ad074a06b07'
down_revision = '28bf2021bbd1'
branch_labels = None
depends_on = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE knowledge_passages_fts USING fts5("
    "heading, text, content='knowledge_passages', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER knowledge_passages_fts_insert AFTER INSERT ON knowledge_passages BEGIN "
    "INSERT INTO knowledge_passages_fts (rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
    "CREATE TRIGGER knowledge_passages_fts_delete AFTER DELETE ON knowledge_passages BEGIN "
    "INSERT INTO knowledge_passages_fts (knowledge_passages_fts, rowid, heading, text) "
    "VALUES ('delete', old.id, old.heading, old.text); END",
    "CREATE TRIGGER knowledge_passages_fts_update AFTER UPDATE ON knowledge_passages BEGIN "
    "INSERT INTO knowledge_passages_fts (knowledge_passages_fts, rowid, heading, text) "
    "VALUES ('delete', old.id, old.heading, old.text); "
    "INSERT INTO knowledge_passages_fts (rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
]
POSTGRES_FTS = [
    "ALTER TABLE knowledge_passages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(to_tsvector('english', coalesce(heading, '') || ' ' || text)) STORED",
    "CREATE INDEX ix_knowledge_passages_search_vector ON knowledge_passages USING gin (search_vector)",
]


def upgrade():
    op.create_table(
        'knowledge_items',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('tags', sa.JSON(), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=True),
        sa.Column('archived', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('updated_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_knowledge_items_workspace_id_workspaces'),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL',
                                name='fk_knowledge_items_created_by_id_users'),
        sa.PrimaryKeyConstraint('id', name='pk_knowledge_items'),
    )
    op.create_index('ix_knowledge_items_workspace_id', 'knowledge_items', ['workspace_id'], unique=False)
    op.create_table(
        'knowledge_passages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('heading', sa.String(length=200), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['knowledge_items.id'], ondelete='CASCADE',
                                name='fk_knowledge_passages_item_id_knowledge_items'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_knowledge_passages_workspace_id_workspaces'),
        sa.PrimaryKeyConstraint('id', name='pk_knowledge_passages'),
        sa.UniqueConstraint('item_id', 'position', name='uq_knowledge_passages_item_id'),
    )
    op.create_index('ix_knowledge_passages_workspace_id', 'knowledge_passages', ['workspace_id'], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == 'sqlite' else POSTGRES_FTS if dialect == 'postgresql' else []:
        op.execute(statement)
    op.add_column('generations', sa.Column('knowledge_passages', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('generations') as batch:
        batch.drop_column('knowledge_passages')
    if op.get_bind().dialect.name == 'sqlite':
        for name in ('insert', 'delete', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS knowledge_passages_fts_{name}")
        op.execute("DROP TABLE IF EXISTS knowledge_passages_fts")
    op.drop_index('ix_knowledge_passages_workspace_id', table_name='knowledge_passages')
    op.drop_table('knowledge_passages')
    op.drop_index('ix_knowledge_items_workspace_id', table_name='knowledge_items')
    op.drop_table('knowledge_items')
