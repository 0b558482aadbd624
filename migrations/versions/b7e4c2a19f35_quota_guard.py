"""quota guard: Free allowance only with the personal workspace

Revision ID: b7e4c2a19f35
Revises: 5c1e7a2b9d40
Create Date: 2026-12-02 04:10:00

Runs on SQLite and PostgreSQL. Existing workspaces keep their Free allowance
(server default true); workspaces created from now on by "New workspace" start
without it.
"""
from alembic import op
import sqlalchemy as sa


revision = 'b7e4c2a19f35'
down_revision = '5c1e7a2b9d40'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('workspaces', sa.Column('free_allowance', sa.Boolean(), server_default='1', nullable=False))


def downgrade():
    with op.batch_alter_table('workspaces') as batch_op:
        batch_op.drop_column('free_allowance')
