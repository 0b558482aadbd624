"""variants.cut_off: the model stopped at its output limit (finish_reason=length) or the text was capped

Revision ID: 7e3c9a1f5b20
Revises: b7e4c2a19f35
Create Date: 2026-12-02 04:20:00

A plain ADD COLUMN with a server default: no table rebuild on SQLite.
"""
from alembic import op
import sqlalchemy as sa


revision = '7e3c9a1f5b20'
down_revision = 'b7e4c2a19f35'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('variants', sa.Column('cut_off', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('variants') as batch:
        batch.drop_column('cut_off')
