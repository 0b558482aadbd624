"""schema: the naming convention for existing constraints and indexes, leaner indexes, CHECKs on states

Revision ID: 9ad51cd99dcc
Revises: 2523b339819b
Create Date: 2026-12-02 06:50:00

- Renames constraints and indexes to the models' naming convention (app/extensions.py):
  pk_<table>, fk_<table>_<column>_<referred table>, uq_<table>_<columns>, ck_<table>_<name>,
  ix_<table>_<columns>. PostgreSQL: every one (its generated names such as generations_pkey
  and memberships_user_id_fkey included). SQLite: the indexes and the named UNIQUE and CHECK
  constraints (its other constraints have no name to change; SQLite never addresses them).
- Drops indexes that repeat the first column of a unique constraint, the boolean
  ix_variants_is_favourite and ix_generations_status (a four-value column; recovery, its only
  reader, gets a partial index instead).
- Adds (workspace_id, template_id, created_at) for history's template filter and a partial
  index of unfinished generations for stale-job recovery.
- Adds CHECK constraints on the status, role, state and kind columns. Refuses, naming the
  rows, when existing data has other values (nothing is changed then).
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.sql.elements import conv

from app.history.search import SQLITE_FTS_REBUILD, SQLITE_FTS_TRIGGERS

revision = '9ad51cd99dcc'
down_revision = '2523b339819b'
branch_labels = None
depends_on = None

# (kind, table, old name, new name), as PostgreSQL has them at 2523b339819b.
RENAMES = [
    ('fk', 'audit_log', 'fk_audit_log_actor', 'fk_audit_log_actor_id_users'),
    ('ix', 'audit_log', 'ix_audit_log_target', 'ix_audit_log_target_type_target_id'),
    ('pk', 'brand_voices', 'brand_voices_pkey', 'pk_brand_voices'),
    ('fk', 'brand_voices', 'brand_voices_workspace_id_fkey', 'fk_brand_voices_workspace_id_workspaces'),
    ('pk', 'generations', 'generations_pkey', 'pk_generations'),
    ('fk', 'generations', 'fk_generation_parent_variant', 'fk_generations_parent_variant_id_variants'),
    ('fk', 'generations', 'fk_generations_brand_voice', 'fk_generations_brand_voice_id_brand_voices'),
    ('fk', 'generations', 'generations_template_id_fkey', 'fk_generations_template_id_templates'),
    ('fk', 'generations', 'generations_template_version_id_fkey', 'fk_generations_template_version_id_template_versions'),
    ('fk', 'generations', 'generations_user_id_fkey', 'fk_generations_user_id_users'),
    ('fk', 'generations', 'generations_workspace_id_fkey', 'fk_generations_workspace_id_workspaces'),
    ('ix', 'generations', 'ix_generations_workspace_created', 'ix_generations_workspace_id_created_at'),
    ('pk', 'invitations', 'invitations_pkey', 'pk_invitations'),
    ('fk', 'invitations', 'invitations_invited_by_id_fkey', 'fk_invitations_invited_by_id_users'),
    ('fk', 'invitations', 'invitations_workspace_id_fkey', 'fk_invitations_workspace_id_workspaces'),
    ('pk', 'login_sessions', 'login_sessions_pkey', 'pk_login_sessions'),
    ('fk', 'login_sessions', 'login_sessions_user_id_fkey', 'fk_login_sessions_user_id_users'),
    ('uq', 'login_sessions', 'login_sessions_key_hash_key', 'uq_login_sessions_key_hash'),
    ('pk', 'memberships', 'memberships_pkey', 'pk_memberships'),
    ('fk', 'memberships', 'memberships_user_id_fkey', 'fk_memberships_user_id_users'),
    ('fk', 'memberships', 'memberships_workspace_id_fkey', 'fk_memberships_workspace_id_workspaces'),
    ('uq', 'memberships', 'uq_membership', 'uq_memberships_workspace_id_user_id'),
    ('pk', 'outbox', 'outbox_pkey', 'pk_outbox'),
    ('pk', 'plans', 'plans_pkey', 'pk_plans'),
    ('uq', 'plans', 'plans_key_key', 'uq_plans_key'),
    ('uq', 'plans', 'plans_stripe_price_id_key', 'uq_plans_stripe_price_id'),
    ('pk', 'project_items', 'project_items_pkey', 'pk_project_items'),
    ('fk', 'project_items', 'project_items_project_id_fkey', 'fk_project_items_project_id_projects'),
    ('fk', 'project_items', 'project_items_variant_id_fkey', 'fk_project_items_variant_id_variants'),
    ('uq', 'project_items', 'uq_project_variant', 'uq_project_items_project_id_variant_id'),
    ('pk', 'projects', 'projects_pkey', 'pk_projects'),
    ('fk', 'projects', 'projects_created_by_id_fkey', 'fk_projects_created_by_id_users'),
    ('fk', 'projects', 'projects_workspace_id_fkey', 'fk_projects_workspace_id_workspaces'),
    ('pk', 'quota_alerts', 'quota_alerts_pkey', 'pk_quota_alerts'),
    ('fk', 'quota_alerts', 'quota_alerts_ledger_id_fkey', 'fk_quota_alerts_ledger_id_quota_ledgers'),
    ('uq', 'quota_alerts', 'uq_quota_alert', 'uq_quota_alerts_ledger_id_threshold'),
    ('pk', 'quota_charges', 'quota_charges_pkey', 'pk_quota_charges'),
    ('fk', 'quota_charges', 'fk_quota_charges_test_run', 'fk_quota_charges_test_run_id_test_runs'),
    ('fk', 'quota_charges', 'quota_charges_generation_id_fkey', 'fk_quota_charges_generation_id_generations'),
    ('fk', 'quota_charges', 'quota_charges_ledger_id_fkey', 'fk_quota_charges_ledger_id_quota_ledgers'),
    ('uq', 'quota_charges', 'uq_charge_generation_ledger', 'uq_quota_charges_generation_id_ledger_id'),
    ('uq', 'quota_charges', 'uq_charge_test_run_ledger', 'uq_quota_charges_test_run_id_ledger_id'),
    ('ck', 'quota_charges', 'ck_charge_one_owner', 'ck_quota_charges_one_owner'),
    ('pk', 'quota_ledgers', 'quota_ledgers_pkey', 'pk_quota_ledgers'),
    ('fk', 'quota_ledgers', 'quota_ledgers_workspace_id_fkey', 'fk_quota_ledgers_workspace_id_workspaces'),
    ('uq', 'quota_ledgers', 'uq_ledger_period', 'uq_quota_ledgers_workspace_id_subject_period_kind_period_start'),
    ('ck', 'quota_ledgers', 'ck_ledger_nonnegative', 'ck_quota_ledgers_nonnegative'),
    ('pk', 'stripe_events', 'stripe_events_pkey', 'pk_stripe_events'),
    ('pk', 'template_versions', 'template_versions_pkey', 'pk_template_versions'),
    ('fk', 'template_versions', 'template_versions_author_id_fkey', 'fk_template_versions_author_id_users'),
    ('fk', 'template_versions', 'template_versions_template_id_fkey', 'fk_template_versions_template_id_templates'),
    ('uq', 'template_versions', 'uq_template_version', 'uq_template_versions_template_id_number'),
    ('pk', 'templates', 'templates_pkey', 'pk_templates'),
    ('fk', 'templates', 'fk_template_published_version', 'fk_templates_published_version_id_template_versions'),
    ('fk', 'templates', 'fk_templates_workspace', 'fk_templates_workspace_id_workspaces'),
    ('pk', 'test_runs', 'test_runs_pkey', 'pk_test_runs'),
    ('fk', 'test_runs', 'test_runs_user_id_fkey', 'fk_test_runs_user_id_users'),
    ('fk', 'test_runs', 'test_runs_workspace_id_fkey', 'fk_test_runs_workspace_id_workspaces'),
    ('uq', 'test_runs', 'test_runs_job_id_key', 'uq_test_runs_job_id'),
    ('pk', 'users', 'users_pkey', 'pk_users'),
    ('pk', 'variants', 'variants_pkey', 'pk_variants'),
    ('fk', 'variants', 'variants_generation_id_fkey', 'fk_variants_generation_id_generations'),
    ('uq', 'variants', 'uq_variant_position', 'uq_variants_generation_id_position'),
    ('pk', 'workspaces', 'workspaces_pkey', 'pk_workspaces'),
    ('uq', 'workspaces', 'uq_workspaces_stripe_customer', 'uq_workspaces_stripe_customer_id'),
]
# Indexes of columns that need no index of their own: (name, table, columns).
DROPPED_INDEXES = [
    ('ix_quota_ledgers_workspace_id', 'quota_ledgers', ['workspace_id']),
    ('ix_quota_charges_generation_id', 'quota_charges', ['generation_id']),
    ('ix_memberships_workspace_id', 'memberships', ['workspace_id']),
    ('ix_variants_generation_id', 'variants', ['generation_id']),
    ('ix_variants_is_favourite', 'variants', ['is_favourite']),
    ('ix_generations_status', 'generations', ['status']),
]
UNFINISHED = "status IN ('queued', 'running')"
NEW_INDEXES = [
    ('ix_generations_workspace_id_template_id_created_at', 'generations', ['workspace_id', 'template_id', 'created_at'],
     None),
    ('ix_generations_status_created_at', 'generations', ['status', 'created_at'], UNFINISHED),
]
# (table, column, allowed values): ck_<table>_<column>.
CHECKS = [
    ('generations', 'status', ('queued', 'running', 'succeeded', 'failed')),
    ('test_runs', 'status', ('queued', 'running', 'succeeded', 'failed')),
    ('memberships', 'role', ('owner', 'admin', 'member')),
    ('invitations', 'role', ('admin', 'member')),
    ('quota_charges', 'state', ('reserved', 'settled', 'refunded')),
    ('quota_ledgers', 'period_kind', ('calendar', 'billing')),
    ('workspaces', 'quota_mode', ('per_seat', 'pooled')),
]
CHECK_RENAMES = {'ck_charge_one_owner': 'ck_quota_charges_one_owner',
                 'ck_ledger_nonnegative': 'ck_quota_ledgers_nonnegative'}
CHECK_TEXT = {'ck_quota_charges_one_owner': '(generation_id IS NULL) <> (test_run_id IS NULL)',
              'ck_quota_ledgers_nonnegative': 'used >= 0 AND reserved >= 0'}


def _sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


def _check_sql(column: str, values: tuple) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _refuse_bad_values() -> None:
    """A CHECK cannot be added over rows that break it: say which, change nothing."""
    problems = []
    for table, column, values in CHECKS:
        bad = op.get_bind().execute(sa.text(
            f"SELECT {column}, COUNT(*) FROM {table} WHERE NOT ({_check_sql(column, values)}) GROUP BY {column}")).all()
        problems += [f"{table}.{column} = {value!r} in {count} row(s) (allowed: {', '.join(values)})"
                     for value, count in bad]
    if problems:
        raise RuntimeError("Upgrade refused, nothing changed: these rows break the new CHECK constraints: "
                           + "; ".join(problems) + ". Correct them, then upgrade again.")


def upgrade():
    _refuse_bad_values()
    for name, table, _columns in DROPPED_INDEXES:
        op.drop_index(name, table_name=table, if_exists=True)
    if _sqlite():
        _upgrade_sqlite()
    else:
        for kind, table, old, new in RENAMES:
            if kind == 'ix':
                op.execute(f'ALTER INDEX "{old}" RENAME TO "{new}"')
            else:
                op.execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{old}" TO "{new}"')
        for table, column, values in CHECKS:
            op.create_check_constraint(conv(f'ck_{table}_{column}'), table, _check_sql(column, values))
    for name, table, columns, where in NEW_INDEXES:
        op.create_index(name, table, columns, postgresql_where=sa.text(where) if where else None,
                        sqlite_where=sa.text(where) if where else None)


def _sqlite_renames() -> dict[str, list[tuple[str, str]]]:
    """Per table, the named UNIQUE constraints to rename (SQLite's other constraints have no name)."""
    per_table: dict[str, list[tuple[str, str]]] = {}
    for kind, table, old, new in RENAMES:
        if kind == 'uq' and old.startswith('uq_'):
            per_table.setdefault(table, []).append((old, new))
    return per_table


def _upgrade_sqlite():
    for kind, table, old, new in RENAMES:
        if kind == 'ix':
            columns = {'ix_audit_log_target': ['target_type', 'target_id'],
                       'ix_generations_workspace_created': ['workspace_id', 'created_at']}[old]
            op.drop_index(old, table_name=table)
            op.create_index(new, table, columns)
    uniques = _sqlite_renames()
    checks = {table: (column, values) for table, column, values in CHECKS}
    inspector = sa.inspect(op.get_bind())
    for table in sorted(set(uniques) | set(checks) | {'quota_charges', 'quota_ledgers'}):
        existing_checks = {c['name'] for c in inspector.get_check_constraints(table)}
        unique_columns = {u['name']: u['column_names'] for u in inspector.get_unique_constraints(table)}
        with op.batch_alter_table(table, recreate='always') as batch:
            for old, new in uniques.get(table, []):
                if old in unique_columns:
                    batch.drop_constraint(old, type_='unique')
                    batch.create_unique_constraint(conv(new), unique_columns[old])
            for old, new in CHECK_RENAMES.items():
                if old in existing_checks:
                    batch.drop_constraint(old, type_='check')
                    batch.create_check_constraint(conv(new), CHECK_TEXT[new])
            if table in checks:
                column, values = checks[table]
                batch.create_check_constraint(conv(f'ck_{table}_{column}'), _check_sql(column, values))
    # Rebuilding generations dropped its full-text triggers with the old table.
    for statement in SQLITE_FTS_TRIGGERS:
        op.execute(statement)
    op.execute(SQLITE_FTS_REBUILD)


def downgrade():
    for name, table, _columns, _where in NEW_INDEXES:
        op.drop_index(name, table_name=table)
    if _sqlite():
        _downgrade_sqlite()
    else:
        for table, column, _values in CHECKS:
            op.drop_constraint(f'ck_{table}_{column}', table, type_='check')
        for kind, table, old, new in reversed(RENAMES):
            if kind == 'ix':
                op.execute(f'ALTER INDEX "{new}" RENAME TO "{old}"')
            else:
                op.execute(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{new}" TO "{old}"')
    for name, table, columns in DROPPED_INDEXES:
        op.create_index(name, table, columns)


def _downgrade_sqlite():
    uniques = _sqlite_renames()
    checks = {table: column for table, column, _values in CHECKS}
    inspector = sa.inspect(op.get_bind())
    for table in sorted(set(uniques) | set(checks) | {'quota_charges', 'quota_ledgers'}):
        existing_checks = {c['name'] for c in inspector.get_check_constraints(table)}
        unique_columns = {u['name']: u['column_names'] for u in inspector.get_unique_constraints(table)}
        with op.batch_alter_table(table, recreate='always') as batch:
            for old, new in uniques.get(table, []):
                if new in unique_columns:
                    batch.drop_constraint(new, type_='unique')
                    batch.create_unique_constraint(old, unique_columns[new])
            for old, new in CHECK_RENAMES.items():
                if new in existing_checks:
                    batch.drop_constraint(new, type_='check')
                    batch.create_check_constraint(old, CHECK_TEXT[new])
            if table in checks and f'ck_{table}_{checks[table]}' in existing_checks:
                batch.drop_constraint(f'ck_{table}_{checks[table]}', type_='check')
    for kind, table, old, new in RENAMES:
        if kind == 'ix':
            columns = {'ix_audit_log_target': ['target_type', 'target_id'],
                       'ix_generations_workspace_created': ['workspace_id', 'created_at']}[old]
            op.drop_index(new, table_name=table)
            op.create_index(old, table, columns)
    for statement in SQLITE_FTS_TRIGGERS:
        op.execute(statement)
    op.execute(SQLITE_FTS_REBUILD)
