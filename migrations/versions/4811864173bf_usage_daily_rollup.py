"""usage_daily: the usage report's daily rollup, backfilled from the settled charges

Revision ID: 4811864173bf
Revises: 9ad51cd99dcc
Create Date: 2026-12-02 08:10:00

One row per (workspace, quota period, UTC day, member, template; 0 = template editor test runs)
with the generations and variants settled. app/quota/rollup.py keeps it in the transaction of
each settle and variant refund; the backfill counts each generation (and test run) once, by its
first charge (the lowest id), as the live path does. Downgrade drops the table: the charges it
was derived from stay, so nothing is lost.
"""
from alembic import op
import sqlalchemy as sa


revision = '4811864173bf'
down_revision = '9ad51cd99dcc'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'usage_daily',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('period_kind', sa.String(length=10), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('template_id', sa.Integer(), nullable=False),
        sa.Column('generations', sa.Integer(), nullable=False),
        sa.Column('variants', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_usage_daily_workspace_id_workspaces'),
        sa.PrimaryKeyConstraint('id', name='pk_usage_daily'),
        sa.UniqueConstraint('workspace_id', 'period_kind', 'period_start', 'day', 'user_id', 'template_id',
                            name='uq_usage_daily_workspace_id'),
    )
    day = "date({})" if op.get_bind().dialect.name == "sqlite" else "CAST({} AS DATE)"
    # Test runs: template 0 (a literal is not grouped by: "GROUP BY 0" would mean a column number).
    for owner, table, template, group in (("generation_id", "generations", "o.template_id", ", o.template_id"),
                                          ("test_run_id", "test_runs", "0", "")):
        op.execute(f"""
            INSERT INTO usage_daily (workspace_id, period_kind, period_start, day, user_id, template_id,
                                     generations, variants)
            SELECT l.workspace_id, l.period_kind, l.period_start, {day.format('o.created_at')},
                   COALESCE(o.user_id, 0), {template}, COUNT(*), SUM(c.amount)
            FROM (SELECT MIN(id) AS id FROM quota_charges WHERE {owner} IS NOT NULL GROUP BY {owner}) f
            JOIN quota_charges c ON c.id = f.id
            JOIN quota_ledgers l ON l.id = c.ledger_id
            JOIN {table} o ON o.id = c.{owner}
            WHERE c.state = 'settled'
            GROUP BY l.workspace_id, l.period_kind, l.period_start, {day.format('o.created_at')},
                     COALESCE(o.user_id, 0){group}
        """)


def downgrade():
    op.drop_table('usage_daily')
