"""Imports every feature's models so metadata and relationships are complete."""
from app.auth.models import User  # noqa: F401
from app.catalog.models import Template, TemplateVersion  # noqa: F401
from app.generation.models import Generation, Variant  # noqa: F401
from app.quota.models import QuotaCharge, QuotaLedger  # noqa: F401
from app.workspaces.models import Membership, Workspace  # noqa: F401
