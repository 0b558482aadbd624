"""Imports every feature's models so metadata and relationships are complete."""
from app.auth.models import User  # noqa: F401
from app.catalog.models import Template, TemplateVersion  # noqa: F401
from app.generation.models import Generation, Variant  # noqa: F401
from app.quota.models import QuotaAlert, QuotaCharge, QuotaLedger  # noqa: F401
from app.brand.models import BrandVoice  # noqa: F401
from app.projects.models import Project, ProjectItem  # noqa: F401
from app.workspaces.models import Invitation, Membership, Workspace  # noqa: F401
from app.billing.models import Plan, StripeEvent  # noqa: F401
from app.admin.models import AuditEntry, SiteSetting  # noqa: F401
from app.outbox.models import OutboxMessage  # noqa: F401
from app.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent  # noqa: F401
from app.checks.models import ReadingTarget, StyleEntry, StyleGuide  # noqa: F401
from app.bulk.models import BulkMapping, BulkRow, BulkRun, BulkSlots  # noqa: F401
from app.knowledge.models import KnowledgeItem, KnowledgePassage  # noqa: F401
from app.api.models import ApiGeneration, ApiKey, IdempotencyRecord  # noqa: F401
