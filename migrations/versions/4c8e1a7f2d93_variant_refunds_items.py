"""variants.refunded_at and favourite_items; variant_refunds: one refund record per variant and ledger

Revision ID: 4c8e1a7f2d93
Revises: c41e7a9b2d08
Create Date: 2026-12-02 06:30:00

Plain ADD COLUMNs (nullable, no table rebuild on SQLite) and one new table whose unique key
(variant, ledger) makes a second refund of the same variant impossible at the database level.
"""
from alembic import op
import sqlalchemy as sa


revision = '4c8e1a7f2d93'
down_revision = 'c41e7a9b2d08'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('variants', sa.Column('refunded_at', sa.DateTime(), nullable=True))
    op.add_column('variants', sa.Column('favourite_items', sa.JSON(), nullable=True))
    op.create_table(
        'variant_refunds',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('variant_id', sa.Integer(), nullable=True),
        sa.Column('generation_id', sa.Integer(), nullable=False),
        sa.Column('ledger_id', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=20), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(['variant_id'], ['variants.id'], name='fk_variant_refunds_variant_id_variants',
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['generation_id'], ['generations.id'],
                                name='fk_variant_refunds_generation_id_generations', ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['ledger_id'], ['quota_ledgers.id'],
                                name='fk_variant_refunds_ledger_id_quota_ledgers', ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_variant_refunds_user_id_users',
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_variant_refunds'),
        sa.UniqueConstraint('variant_id', 'ledger_id', name='uq_variant_refunds_variant_id'),
        sa.CheckConstraint('amount > 0', name='ck_variant_refunds_positive'),
    )
    op.create_index('ix_variant_refunds_generation_id', 'variant_refunds', ['generation_id'], unique=False)
    op.create_index('ix_variant_refunds_ledger_id', 'variant_refunds', ['ledger_id'], unique=False)


def downgrade():
    op.drop_index('ix_variant_refunds_ledger_id', table_name='variant_refunds')
    op.drop_index('ix_variant_refunds_generation_id', table_name='variant_refunds')
    op.drop_table('variant_refunds')
    with op.batch_alter_table('variants') as batch:
        batch.drop_column('favourite_items')
        batch.drop_column('refunded_at')
