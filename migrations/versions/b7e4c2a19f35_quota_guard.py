"""quota guard: Free allowance only with the personal workspace; test runs are charged

Revision ID: b7e4c2a19f35
Revises: 7d3f51c2a8e6
Create Date: 2026-12-02 04:10:00

Runs on SQLite and PostgreSQL.
- workspaces.free_allowance: existing workspaces keep their Free allowance (server
  default true); workspaces created from now on by "New workspace" start without it.
- test_runs, and quota_charges.test_run_id: a charge belongs to a generation or to a
  test run (exactly one), unique per (test run, ledger) as per (generation, ledger).
  SQLite rebuilds quota_charges (nothing references it, so no cascade can fire).
"""
from alembic import op
import sqlalchemy as sa


revision = 'b7e4c2a19f35'
down_revision = '7d3f51c2a8e6'
branch_labels = None
depends_on = None


def _quota_charges(with_test_runs: bool) -> sa.Table:
    """quota_charges after (with_test_runs) or before this revision: what SQLite's batch mode rebuilds from."""
    extra = []
    if with_test_runs:
        extra = [
            sa.Column('test_run_id', sa.Integer(),
                      sa.ForeignKey('test_runs.id', ondelete='CASCADE', name='fk_quota_charges_test_run'), nullable=True),
            sa.UniqueConstraint('test_run_id', 'ledger_id', name='uq_charge_test_run_ledger'),
            sa.CheckConstraint('(generation_id IS NULL) <> (test_run_id IS NULL)', name='ck_charge_one_owner'),
            sa.Index('ix_quota_charges_test_run_id', 'test_run_id'),
        ]
    return sa.Table(
        'quota_charges', sa.MetaData(),
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('generation_id', sa.Integer(), sa.ForeignKey('generations.id', ondelete='CASCADE'),
                  nullable=with_test_runs),
        sa.Column('ledger_id', sa.Integer(), sa.ForeignKey('quota_ledgers.id', ondelete='CASCADE'), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('generation_id', 'ledger_id', name='uq_charge_generation_ledger'),
        sa.Index('ix_quota_charges_ledger_id', 'ledger_id'),
        sa.Index('ix_quota_charges_generation_id', 'generation_id'),
        *extra,
    )


def upgrade():
    op.add_column('workspaces', sa.Column('free_allowance', sa.Boolean(), server_default='1', nullable=False))

    op.create_table(
        'test_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.String(length=60), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('variant_count', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('job_id'),
    )
    op.create_index('ix_test_runs_workspace_id', 'test_runs', ['workspace_id'], unique=False)
    op.create_index('ix_test_runs_user_id', 'test_runs', ['user_id'], unique=False)

    # SQLite rebuilds the table from copy_from (the table as it is) plus these changes;
    # PostgreSQL runs them as ALTER TABLE statements.
    with op.batch_alter_table('quota_charges', copy_from=_quota_charges(False)) as batch_op:
        batch_op.add_column(sa.Column('test_run_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_quota_charges_test_run', 'test_runs', ['test_run_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.alter_column('generation_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_unique_constraint('uq_charge_test_run_ledger', ['test_run_id', 'ledger_id'])
        batch_op.create_check_constraint('ck_charge_one_owner', '(generation_id IS NULL) <> (test_run_id IS NULL)')
        batch_op.create_index('ix_quota_charges_test_run_id', ['test_run_id'], unique=False)


def downgrade():
    op.execute("DELETE FROM quota_charges WHERE test_run_id IS NOT NULL")
    with op.batch_alter_table('quota_charges', copy_from=_quota_charges(True)) as batch_op:
        batch_op.drop_index('ix_quota_charges_test_run_id')
        batch_op.drop_constraint('ck_charge_one_owner', type_='check')
        batch_op.drop_constraint('uq_charge_test_run_ledger', type_='unique')
        batch_op.drop_constraint('fk_quota_charges_test_run', type_='foreignkey')
        batch_op.drop_column('test_run_id')
        batch_op.alter_column('generation_id', existing_type=sa.Integer(), nullable=False)
    op.drop_index('ix_test_runs_user_id', table_name='test_runs')
    op.drop_index('ix_test_runs_workspace_id', table_name='test_runs')
    op.drop_table('test_runs')
    with op.batch_alter_table('workspaces') as batch_op:
        batch_op.drop_column('free_allowance')
