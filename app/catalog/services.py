"""Catalogue rules: seeding from data files, listing, finding a published template."""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import yaml
from sqlalchemy import and_, func, or_, select

from app.bounds import escape_like
from app.catalog.models import CATEGORIES, Template, TemplateVersion
from app.catalog.schema import TemplateDataError, validate_extras, validate_template_data
from app.extensions import db

SEED_DIR = Path(__file__).resolve().parent / "seed"

ICONS = {
    "megaphone": "📣", "newspaper": "📰", "globe": "🌐", "mail": "✉️", "chat": "💬",
    "sparkles": "✨", "pencil": "✏️", "target": "🎯", "rocket": "🚀", "tag": "🏷️",
    "search": "🔎", "bolt": "⚡",
}


def load_seed_files(directory: Path = SEED_DIR) -> list[dict]:
    """Read and validate every seed file; one bad file fails the whole load."""
    templates, slugs = [], set()
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise TemplateDataError(f"{path.name}: not valid YAML ({exc})") from exc
        data = validate_template_data(raw, path.name)
        if data["slug"] in slugs:
            raise TemplateDataError(f"{path.name}: slug '{data['slug']}' is used twice")
        slugs.add(data["slug"])
        templates.append(data)
    return templates


@functools.cache
def seed_extras(directory: Path = SEED_DIR) -> dict[str, dict]:
    """slug -> {"keywords": [...], "example": {field: value}} of the built-in templates (read once).

    From the seed files rather than the database: they are the catalogue's own metadata, change with
    the code, and need no migration; an admin's template has none (its search is name and description).
    """
    extras = {}
    for path in sorted(directory.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        data = validate_template_data(raw, path.name)
        extras[data["slug"]] = validate_extras(raw, data["fields"], path.name)
    return extras


def keyword_matches(query: str) -> list[str]:
    """Slugs of built-in templates with a keyword containing the query, or contained in it ("cta button")."""
    query = " ".join(query.lower().split())
    if not query:
        return []
    words = set(query.split())
    return [slug for slug, extra in seed_extras().items()
            if any(query in k or k in words for k in extra["keywords"])]


def example_for(template: Template) -> dict[str, str]:
    """The example input of a built-in template, limited to the fields its published version still has."""
    if template.workspace_id is not None or template.published_version is None:
        return {}
    names = {f["name"] for f in template.published_version.fields}
    return {k: v for k, v in seed_extras().get(template.slug, {}).get("example", {}).items() if k in names}


def _content_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _next_version_number(template: Template) -> int:
    current = db.session.scalar(
        select(func.max(TemplateVersion.number)).where(TemplateVersion.template_id == template.id)
    )
    return (current or 0) + 1


def seed_templates(directory: Path = SEED_DIR) -> dict[str, int]:
    """Create or update the built-in templates from the data files, idempotently.

    A template whose file is unchanged is left alone; a changed file adds a new
    version and publishes it (older versions stay, generations keep theirs).
    Templates taken over by an admin (source != "seed") are never overwritten. The caller commits.
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for data in load_seed_files(directory):
        digest = _content_hash(data)
        template = db.session.scalars(select(Template).where(Template.slug == data["slug"])).first()
        # An admin's edit (source "admin") or a workspace's template is never overwritten.
        if template is not None and (template.seed_hash == digest or template.source != "seed"):
            counts["unchanged"] += 1
            continue
        if template is None:
            template = Template(slug=data["slug"], source="seed")
            db.session.add(template)
            counts["created"] += 1
        else:
            counts["updated"] += 1
        template.name = data["name"]
        template.category = data["category"]
        template.description = data["description"]
        template.icon = data["icon"]
        template.seed_hash = digest
        db.session.flush()
        version = TemplateVersion(
            template_id=template.id,
            number=_next_version_number(template),
            fields=data["fields"],
            system_prompt=data["system_prompt"],
            user_prompt=data["user_prompt"],
            output=data["output"],
            message="Seeded from app/catalog/seed",
            name=data["name"], category=data["category"], description=data["description"], icon=data["icon"],
            model=(data.get("llm") or {}).get("model"),
            temperature=(data.get("llm") or {}).get("temperature"),
            max_tokens=(data.get("llm") or {}).get("max_tokens"),
        )
        db.session.add(version)
        db.session.flush()
        template.published_version_id = version.id
    return counts


def visible_to(workspace_id: int | None):
    """Site templates, plus the given workspace's own."""
    if workspace_id is None:
        return Template.workspace_id.is_(None)
    return or_(Template.workspace_id.is_(None), Template.workspace_id == workspace_id)


def list_templates(query: str = "", category: str = "", workspace_id: int | None = None) -> list[Template]:
    """Published templates the workspace may use, filtered by a name search and a category."""
    stmt = select(Template).where(Template.published_version_id.is_not(None), visible_to(workspace_id))
    if category in CATEGORIES:
        stmt = stmt.where(Template.category == category)
    query = query.strip()
    if query:
        like = f"%{escape_like(query.lower())}%"
        by_keyword = keyword_matches(query)
        stmt = stmt.where(or_(func.lower(Template.name).like(like, escape="\\"),
                              func.lower(Template.description).like(like, escape="\\"),
                              and_(Template.workspace_id.is_(None), Template.slug.in_(by_keyword))))
    templates = list(db.session.scalars(stmt.order_by(Template.name)))
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(templates, key=lambda t: (order.get(t.category, 99), t.name))


def get_published(slug: str, workspace_id: int | None = None) -> Template | None:
    """The published template by slug, if the workspace may use it (another's private one: None)."""
    template = db.session.scalars(select(Template).where(Template.slug == slug, visible_to(workspace_id))).first()
    if template is None or template.published_version is None:
        return None
    return template
