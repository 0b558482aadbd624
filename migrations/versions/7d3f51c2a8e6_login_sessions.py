"""login sessions: one row per logged-in browser, so sessions can end on the server

Revision ID: 7d3f51c2a8e6
Revises: 7b3d9e1f2a60
Create Date: 2026-12-02 04:05:00

Existing session cookies carry a bare user id, which no longer loads a user: everyone logs in
once more after this upgrade.
"""
from alembic import op
import sqlalchemy as sa


revision = '7d3f51c2a8e6'
down_revision = '7b3d9e1f2a60'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'login_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('remember', sa.Boolean(), nullable=False),
        sa.Column('user_agent', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash'),
    )
    op.create_index('ix_login_sessions_user_id', 'login_sessions', ['user_id'], unique=False)
    op.create_index('ix_login_sessions_expires_at', 'login_sessions', ['expires_at'], unique=False)


def downgrade():
    op.drop_index('ix_login_sessions_expires_at', table_name='login_sessions')
    op.drop_index('ix_login_sessions_user_id', table_name='login_sessions')
    op.drop_table('login_sessions')
