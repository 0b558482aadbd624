"""api: workspace API keys, the generations each key started, Idempotency-Key results

Revision ID: 025319670659
Revises: 3ad074a06b07
Create Date: 2026-12-02 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '025319670659'
down_revision = '3ad074a06b07'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('display', sa.String(length=24), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('charge_user_id', sa.Integer(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.Column('last_used_ip', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_api_keys_workspace_id_workspaces'),
        sa.ForeignKeyConstraint(['charge_user_id'], ['users.id'], ondelete='SET NULL',
                                name='fk_api_keys_charge_user_id_users'),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], ondelete='SET NULL',
                                name='fk_api_keys_created_by_id_users'),
        sa.PrimaryKeyConstraint('id', name='pk_api_keys'),
        sa.UniqueConstraint('secret_hash', name='uq_api_keys_secret_hash'),
    )
    op.create_index('ix_api_keys_workspace_id', 'api_keys', ['workspace_id'], unique=False)
    op.create_table(
        'api_generations',
        sa.Column('generation_id', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['generation_id'], ['generations.id'], ondelete='CASCADE',
                                name='fk_api_generations_generation_id_generations'),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], ondelete='CASCADE',
                                name='fk_api_generations_api_key_id_api_keys'),
        sa.PrimaryKeyConstraint('generation_id', name='pk_api_generations'),
    )
    op.create_index('ix_api_generations_api_key_id', 'api_generations', ['api_key_id'], unique=False)
    op.create_table(
        'api_idempotency',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('response_body', sa.Text(), nullable=True),
        sa.Column('location', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], ondelete='CASCADE',
                                name='fk_api_idempotency_api_key_id_api_keys'),
        sa.PrimaryKeyConstraint('id', name='pk_api_idempotency'),
        sa.UniqueConstraint('api_key_id', 'key', name='uq_api_idempotency_api_key_id'),
    )
    op.create_index('ix_api_idempotency_expires_at', 'api_idempotency', ['expires_at'], unique=False)


def downgrade():
    op.drop_index('ix_api_idempotency_expires_at', table_name='api_idempotency')
    op.drop_table('api_idempotency')
    op.drop_index('ix_api_generations_api_key_id', table_name='api_generations')
    op.drop_table('api_generations')
    op.drop_index('ix_api_keys_workspace_id', table_name='api_keys')
    op.drop_table('api_keys')
