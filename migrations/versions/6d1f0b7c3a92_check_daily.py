"""check_daily: the check figures' daily rollup, backfilled from the stored variants

Revision ID: 6d1f0b7c3a92
Revises: 4811864173bf
Create Date: 2026-12-02 11:10:00

One row per (workspace, UTC day of the generation, template) with the variants checked and how
many had style findings, unsupported claims, the wrong language, a repair, and a repair that fixed
everything. The job adds to it when it stores variants (app/checks/figures.py); the backfill
counts the variants stored so far, as the live path would have. Downgrade drops the table: the
variants it was derived from stay, so nothing is lost.
"""
from alembic import op
import sqlalchemy as sa


revision = '6d1f0b7c3a92'
down_revision = '4811864173bf'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'check_daily',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('template_id', sa.Integer(), nullable=False),
        sa.Column('checked', sa.Integer(), nullable=False),
        sa.Column('style', sa.Integer(), nullable=False),
        sa.Column('claims', sa.Integer(), nullable=False),
        sa.Column('wrong_language', sa.Integer(), nullable=False),
        sa.Column('repaired', sa.Integer(), nullable=False),
        sa.Column('repaired_ok', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE',
                                name='fk_check_daily_workspace_id_workspaces'),
        sa.PrimaryKeyConstraint('id', name='pk_check_daily'),
        sa.UniqueConstraint('workspace_id', 'day', 'template_id', name='uq_check_daily_workspace_id'),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    day = "date(g.created_at)" if sqlite else "CAST(g.created_at AS DATE)"
    true = "1" if sqlite else "TRUE"
    failing = (f"(v.style_flagged = {true} OR v.claims_flagged = {true} OR v.wrong_language = {true} "
               f"OR v.over_limit = {true})")
    op.execute(f"""
        INSERT INTO check_daily (workspace_id, day, template_id, checked, style, claims, wrong_language,
                                 repaired, repaired_ok)
        SELECT g.workspace_id, {day}, g.template_id, COUNT(*),
               SUM(CASE WHEN v.style_flagged = {true} THEN 1 ELSE 0 END),
               SUM(CASE WHEN v.claims_flagged = {true} THEN 1 ELSE 0 END),
               SUM(CASE WHEN v.wrong_language = {true} THEN 1 ELSE 0 END),
               SUM(CASE WHEN v.repaired = {true} THEN 1 ELSE 0 END),
               SUM(CASE WHEN v.repaired = {true} AND NOT {failing} THEN 1 ELSE 0 END)
        FROM variants v JOIN generations g ON g.id = v.generation_id
        WHERE v.findings IS NOT NULL
        GROUP BY g.workspace_id, {day}, g.template_id
    """)


def downgrade():
    op.drop_table('check_daily')
