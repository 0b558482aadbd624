"""admin console: workspace templates, versioned metadata and model parameters, audit log, site settings

Revision ID: 5c1e7a2b9d40
Revises: 0377829853ac
Create Date: 2026-11-29 10:00:00

Runs on SQLite and PostgreSQL. `templates` is never rebuilt on SQLite: a table
rebuild would drop it, and with foreign keys on that cascades into
template_versions. Its new foreign key is added with ALTER TABLE ... ADD COLUMN
... REFERENCES instead, which SQLite supports for a nullable column.
"""
from alembic import op
import sqlalchemy as sa


revision = '5c1e7a2b9d40'
down_revision = '0377829853ac'
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade():
    if _sqlite():
        op.execute("ALTER TABLE templates ADD COLUMN workspace_id INTEGER "
                   "CONSTRAINT fk_templates_workspace REFERENCES workspaces (id) ON DELETE CASCADE")
    else:
        op.add_column('templates', sa.Column('workspace_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_templates_workspace', 'templates', 'workspaces', ['workspace_id'], ['id'],
                              ondelete='CASCADE')
    op.create_index('ix_templates_workspace_id', 'templates', ['workspace_id'], unique=False)

    for column in (
        sa.Column('name', sa.String(length=120), nullable=True),
        sa.Column('category', sa.String(length=40), nullable=True),
        sa.Column('description', sa.String(length=300), nullable=True),
        sa.Column('icon', sa.String(length=40), nullable=True),
        sa.Column('model', sa.String(length=120), nullable=True),
        sa.Column('temperature', sa.Float(), nullable=True),
        sa.Column('max_tokens', sa.Integer(), nullable=True),
    ):
        op.add_column('template_versions', column)
    # Existing versions take their template's current metadata.
    for name in ('name', 'category', 'description', 'icon'):
        op.execute(f"UPDATE template_versions SET {name} = "
                   f"(SELECT templates.{name} FROM templates WHERE templates.id = template_versions.template_id)")

    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_email', sa.String(length=254), nullable=False),
        sa.Column('action', sa.String(length=60), nullable=False),
        sa.Column('target_type', sa.String(length=40), nullable=False),
        sa.Column('target_id', sa.String(length=120), nullable=False),
        sa.Column('before', sa.JSON(), nullable=True),
        sa.Column('after', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name='fk_audit_log_actor', ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_audit_log'),
    )
    op.create_index('ix_audit_log_actor_id', 'audit_log', ['actor_id'], unique=False)
    op.create_index('ix_audit_log_action', 'audit_log', ['action'], unique=False)
    op.create_index('ix_audit_log_created_at', 'audit_log', ['created_at'], unique=False)
    op.create_index('ix_audit_log_target', 'audit_log', ['target_type', 'target_id'], unique=False)

    op.create_table(
        'site_settings',
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key', name='pk_site_settings'),
    )


def downgrade():
    # Workspace templates have no place in the older schema: refuse rather than delete them
    # (and their generations would still point at them, so the DELETE would fail half-way).
    count = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM templates WHERE workspace_id IS NOT NULL")).scalar()
    if count:
        raise RuntimeError(
            f"Downgrade refused at 5c1e7a2b9d40 (this step undid nothing): {count} workspace template(s) exist, and the schema before "
            "5c1e7a2b9d40 cannot hold them. Export them (Team -> Templates) and delete them first, or stay on "
            "this revision.")
    op.drop_table('site_settings')
    op.drop_index('ix_audit_log_target', table_name='audit_log')
    op.drop_index('ix_audit_log_created_at', table_name='audit_log')
    op.drop_index('ix_audit_log_action', table_name='audit_log')
    op.drop_index('ix_audit_log_actor_id', table_name='audit_log')
    op.drop_table('audit_log')
    for name in ('max_tokens', 'temperature', 'model', 'icon', 'description', 'category', 'name'):
        op.drop_column('template_versions', name)
    op.drop_index('ix_templates_workspace_id', table_name='templates')
    # Workspace templates have no place in the older schema.
    op.execute("DELETE FROM templates WHERE workspace_id IS NOT NULL")
    if _sqlite():
        # SQLite (3.35+) cannot drop a column that a foreign key uses; the column stays, unused.
        return
    op.drop_constraint('fk_templates_workspace', 'templates', type_='foreignkey')
    op.drop_column('templates', 'workspace_id')
