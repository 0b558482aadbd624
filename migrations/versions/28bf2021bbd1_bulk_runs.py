"""bulk runs: runs, their rows, saved mappings, per-workspace slots; generations.bulk_row_id

Revision ID: 28bf2021bbd1
Revises: 97ef9be273fc
Create Date: 2026-12-02 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '28bf2021bbd1'
down_revision = '97ef9be273fc'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'bulk_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('template_id', sa.Integer(), nullable=False),
        sa.Column('template_version_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('source', sa.LargeBinary(), nullable=True),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('columns', sa.JSON(), nullable=False),
        sa.Column('mapping', sa.JSON(), nullable=True),
        sa.Column('redo_done', sa.Boolean(), nullable=False),
        sa.Column('total_rows', sa.Integer(), nullable=False),
        sa.Column('message', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_bulk_runs_workspace_id_workspaces'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL', name='fk_bulk_runs_user_id_users'),
        sa.ForeignKeyConstraint(['template_id'], ['templates.id'], name='fk_bulk_runs_template_id_templates'),
        sa.ForeignKeyConstraint(['template_version_id'], ['template_versions.id'],
                                name='fk_bulk_runs_template_version_id_template_versions'),
        sa.PrimaryKeyConstraint('id', name='pk_bulk_runs'),
    )
    op.create_index('ix_bulk_runs_workspace_id_created_at', 'bulk_runs', ['workspace_id', 'created_at'])
    op.create_table(
        'bulk_rows',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('line', sa.Integer(), nullable=False),
        sa.Column('cells', sa.JSON(), nullable=False),
        sa.Column('inputs', sa.JSON(), nullable=False),
        sa.Column('tone', sa.String(length=40), nullable=False),
        sa.Column('language', sa.String(length=40), nullable=False),
        sa.Column('variant_count', sa.Integer(), nullable=False),
        sa.Column('creativity', sa.String(length=20), nullable=False),
        sa.Column('row_key', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('note', sa.String(length=1000), nullable=True),
        sa.Column('generation_id', sa.Integer(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['bulk_runs.id'], ondelete='CASCADE', name='fk_bulk_rows_run_id_bulk_runs'),
        sa.PrimaryKeyConstraint('id', name='pk_bulk_rows'),
        sa.UniqueConstraint('run_id', 'position', name='uq_bulk_rows_run_id_position'),
    )
    op.create_index('ix_bulk_rows_run_id_status', 'bulk_rows', ['run_id', 'status'])
    op.create_index('ix_bulk_rows_workspace_id_row_key', 'bulk_rows', ['workspace_id', 'row_key'])
    op.create_table(
        'bulk_mappings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('template_id', sa.Integer(), nullable=False),
        sa.Column('mapping', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_bulk_mappings_workspace_id_workspaces'),
        sa.ForeignKeyConstraint(['template_id'], ['templates.id'], ondelete='CASCADE',
                                name='fk_bulk_mappings_template_id_templates'),
        sa.PrimaryKeyConstraint('id', name='pk_bulk_mappings'),
        sa.UniqueConstraint('workspace_id', 'template_id', name='uq_bulk_mappings_workspace_id'),
    )
    op.create_table(
        'bulk_slots',
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('in_flight', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_bulk_slots_workspace_id_workspaces'),
        sa.PrimaryKeyConstraint('workspace_id', name='pk_bulk_slots'),
    )
    with op.batch_alter_table('generations') as batch:
        batch.add_column(sa.Column('bulk_row_id', sa.Integer(), nullable=True))
        batch.create_index('ix_generations_bulk_row_id', ['bulk_row_id'])
        batch.create_foreign_key('fk_generations_bulk_row_id_bulk_rows', 'bulk_rows', ['bulk_row_id'], ['id'],
                                 ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('generations') as batch:
        batch.drop_constraint('fk_generations_bulk_row_id_bulk_rows', type_='foreignkey')
        batch.drop_index('ix_generations_bulk_row_id')
        batch.drop_column('bulk_row_id')
    op.drop_table('bulk_slots')
    op.drop_table('bulk_mappings')
    op.drop_index('ix_bulk_rows_workspace_id_row_key', table_name='bulk_rows')
    op.drop_index('ix_bulk_rows_run_id_status', table_name='bulk_rows')
    op.drop_table('bulk_rows')
    op.drop_index('ix_bulk_runs_workspace_id_created_at', table_name='bulk_runs')
    op.drop_table('bulk_runs')
