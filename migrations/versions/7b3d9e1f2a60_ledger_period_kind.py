"""quota ledgers: the period kind (calendar month or billing period) joins the unique key

Revision ID: 7b3d9e1f2a60
Revises: 5c1e7a2b9d40
Create Date: 2026-12-02 04:10:00

A subscription whose billing period starts on the 1st used to share the
calendar month's ledger (same period_start), carrying Free usage into the paid
period. Existing rows are calendar months unless they match their workspace's
billing period start, in which case they belong to that billing period.
"""
from alembic import op
import sqlalchemy as sa


revision = '7b3d9e1f2a60'
down_revision = '5c1e7a2b9d40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('quota_ledgers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('period_kind', sa.String(length=10), server_default='calendar', nullable=False))
        batch_op.drop_constraint('uq_ledger_period', type_='unique')
        batch_op.create_unique_constraint('uq_ledger_period', ['workspace_id', 'subject', 'period_kind', 'period_start'])
    op.execute(
        "UPDATE quota_ledgers SET period_kind = 'billing' WHERE EXISTS ("
        " SELECT 1 FROM workspaces w WHERE w.id = quota_ledgers.workspace_id"
        " AND w.period_start IS NOT NULL AND w.period_start = quota_ledgers.period_start)"
    )


def downgrade():
    collisions = op.get_bind().exec_driver_sql(
        "SELECT COUNT(*) FROM quota_ledgers b JOIN quota_ledgers c ON c.workspace_id = b.workspace_id"
        " AND c.subject = b.subject AND c.period_start = b.period_start"
        " WHERE b.period_kind = 'billing' AND c.period_kind = 'calendar'").scalar()
    if collisions:
        raise RuntimeError(f"{collisions} billing ledgers share their start with a calendar month; "
                           "downgrading would have to merge two allowances, so it stops here")
    with op.batch_alter_table('quota_ledgers', schema=None) as batch_op:
        batch_op.drop_constraint('uq_ledger_period', type_='unique')
        batch_op.create_unique_constraint('uq_ledger_period', ['workspace_id', 'subject', 'period_start'])
        batch_op.drop_column('period_kind')
