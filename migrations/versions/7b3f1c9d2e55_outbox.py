"""outbox: jobs and stream endings recorded in the transaction that needs them

Revision ID: 7b3f1c9d2e55
Revises: 7e3c9a1f5b20
Create Date: 2026-12-02 04:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '7b3f1c9d2e55'
down_revision = '7e3c9a1f5b20'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('target', sa.String(length=200), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('available_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_outbox_target', 'outbox', ['target'], unique=False)
    op.create_index('ix_outbox_available_at', 'outbox', ['available_at'], unique=False)


def downgrade():
    op.drop_index('ix_outbox_available_at', table_name='outbox')
    op.drop_index('ix_outbox_target', table_name='outbox')
    op.drop_table('outbox')
