"""style guide and checks: style_guides, style_entries, reading_targets; findings and hold state on variants

Revision ID: 97ef9be273fc
Revises: 4c8e1a7f2d93
Create Date: 2026-12-02 06:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '97ef9be273fc'
down_revision = '4c8e1a7f2d93'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'style_guides',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('ai_tells_enabled', sa.Boolean(), server_default='1', nullable=False),
        sa.Column('claims_enabled', sa.Boolean(), server_default='1', nullable=False),
        sa.Column('flag_action', sa.String(length=10), server_default='show', nullable=False),
        sa.Column('max_grade', sa.Integer(), nullable=True),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.CheckConstraint("flag_action IN ('show', 'hold')", name='ck_style_guides_flag_action'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_style_guides_workspace_id_workspaces'),
        sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], ondelete='SET NULL',
                                name='fk_style_guides_updated_by_id_users'),
        sa.PrimaryKeyConstraint('id', name='pk_style_guides'),
        sa.UniqueConstraint('workspace_id', name='uq_style_guides_workspace_id'),
    )
    op.create_table(
        'style_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('phrase', sa.String(length=80), nullable=False),
        sa.Column('phrase_key', sa.String(length=80), nullable=False),
        sa.Column('replacement', sa.String(length=80), nullable=True),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.CheckConstraint("kind IN ('banned', 'spelling', 'ai_tell')", name='ck_style_entries_kind'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_style_entries_workspace_id_workspaces'),
        sa.PrimaryKeyConstraint('id', name='pk_style_entries'),
        sa.UniqueConstraint('workspace_id', 'kind', 'phrase_key', name='uq_style_entries_workspace_id'),
    )
    op.create_index('ix_style_entries_workspace_id', 'style_entries', ['workspace_id'], unique=False)
    op.create_table(
        'reading_targets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('brand_voice_id', sa.Integer(), nullable=False),
        sa.Column('max_grade', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_reading_targets_workspace_id_workspaces'),
        sa.ForeignKeyConstraint(['brand_voice_id'], ['brand_voices.id'], ondelete='CASCADE',
                                name='fk_reading_targets_brand_voice_id_brand_voices'),
        sa.PrimaryKeyConstraint('id', name='pk_reading_targets'),
        sa.UniqueConstraint('brand_voice_id', name='uq_reading_targets_brand_voice_id'),
    )
    op.create_index('ix_reading_targets_workspace_id', 'reading_targets', ['workspace_id'], unique=False)
    with op.batch_alter_table('variants') as batch:
        batch.add_column(sa.Column('findings', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('style_flagged', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('claims_flagged', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('wrong_language', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('held', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('checked_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('checked_at', sa.DateTime(), nullable=True))
        batch.create_foreign_key('fk_variants_checked_by_id_users', 'users', ['checked_by_id'], ['id'],
                                 ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('variants') as batch:
        batch.drop_constraint('fk_variants_checked_by_id_users', type_='foreignkey')
        batch.drop_column('checked_at')
        batch.drop_column('checked_by_id')
        batch.drop_column('held')
        batch.drop_column('wrong_language')
        batch.drop_column('claims_flagged')
        batch.drop_column('style_flagged')
        batch.drop_column('findings')
    op.drop_index('ix_reading_targets_workspace_id', table_name='reading_targets')
    op.drop_table('reading_targets')
    op.drop_index('ix_style_entries_workspace_id', table_name='style_entries')
    op.drop_table('style_entries')
    op.drop_table('style_guides')
