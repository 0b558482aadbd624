"""Editing templates: create, save a new immutable version, publish, roll back, compare.

Used by the site admin console (site templates) and by workspace managers
(their workspace's private templates); the caller passes the scope. Every change
is audited in its own transaction, and a template whose prompts do not render
is refused before anything is written.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.admin import audit, model_policy
from app.auth.models import User
from app.bounds import escape_like
from app.catalog.models import Template, TemplateVersion
from app.catalog.rendering import PromptError
from app.catalog.schema import check_prompt, validate_template_data
from app.core import NotFound
from app.extensions import db

# The data-format keys in the order they are written (export, diff).
KEY_ORDER = ("slug", "name", "category", "description", "icon", "fields", "output", "llm",
             "system_prompt", "user_prompt")


class EditorError(Exception):
    """A change that cannot be made; the message says why and what to do."""


def _check_models(workspace_id: int | None, llm: dict[str, Any] | None) -> None:
    """Workspace templates may use only the operator's allowed models, within their ceilings."""
    if workspace_id is None:
        return
    try:
        model_policy.check_workspace_llm(llm)
    except model_policy.ModelNotAllowed as exc:
        raise EditorError(str(exc)) from exc


def template_in_scope_or_404(template_id: int, workspace_id: int | None) -> Template:
    """A template of this scope: site templates for site admins, the workspace's own for its managers."""
    template = db.session.get(Template, template_id)
    if template is None or template.workspace_id != workspace_id:
        raise NotFound(f"template {template_id}")
    return template


def version_or_404(template: Template, number: int) -> TemplateVersion:
    version = db.session.scalars(select(TemplateVersion).where(
        TemplateVersion.template_id == template.id, TemplateVersion.number == number)).first()
    if version is None:
        raise NotFound(f"version {number} of template {template.id}")
    return version


def templates_in_scope(workspace_id: int | None, query: str = "") -> list[Template]:
    stmt = select(Template).where(
        Template.workspace_id.is_(None) if workspace_id is None else Template.workspace_id == workspace_id)
    if query.strip():
        like = f"%{escape_like(query.strip().lower())}%"
        stmt = stmt.where(func.lower(Template.name).like(like, escape="\\")
                          | func.lower(Template.slug).like(like, escape="\\"))
    # The list shows each template's published version number: loaded with the list, not per row.
    return list(db.session.scalars(stmt.options(selectinload(Template.published_version))
                                   .order_by(Template.category, Template.name)))


def versions_of(template: Template) -> list[TemplateVersion]:
    return list(db.session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template.id)
                                   .order_by(TemplateVersion.number.desc())))


def latest_versions(templates: list[Template]) -> dict[int, TemplateVersion | None]:
    """latest_version() of many templates in one query ({template id: version}), for lists."""
    ids = [t.id for t in templates]
    if not ids:
        return {}
    newest = (select(TemplateVersion.template_id, func.max(TemplateVersion.number).label("number"))
              .where(TemplateVersion.template_id.in_(ids)).group_by(TemplateVersion.template_id).subquery())
    found = {v.template_id: v for v in db.session.scalars(select(TemplateVersion).join(
        newest, (newest.c.template_id == TemplateVersion.template_id) & (newest.c.number == TemplateVersion.number)))}
    return {template_id: found.get(template_id) for template_id in ids}


def latest_version(template: Template) -> TemplateVersion | None:
    return db.session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template.id)
                              .order_by(TemplateVersion.number.desc()).limit(1)).first()


def version_data(template: Template, version: TemplateVersion) -> dict[str, Any]:
    """A version in the data format (seed files, import/export)."""
    data: dict[str, Any] = {
        "slug": template.slug,
        "name": version.name or template.name,
        "category": version.category or template.category,
        "description": version.description if version.description is not None else template.description,
        "icon": version.icon or template.icon,
        "fields": version.fields,
        "output": version.output,
        "system_prompt": version.system_prompt,
        "user_prompt": version.user_prompt,
    }
    if version.llm:
        data["llm"] = version.llm
    return {key: data[key] for key in KEY_ORDER if key in data}


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as YAML block literals, so prompts read well in a pull request."""


def _str_presenter(dumper, value):
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_LiteralDumper.add_representer(str, _str_presenter)


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True, width=1000)


def slug_taken(slug: str, except_id: int | None = None) -> bool:
    stmt = select(Template.id).where(Template.slug == slug)
    if except_id is not None:
        stmt = stmt.where(Template.id != except_id)
    return db.session.scalar(stmt) is not None


def free_slug(slug: str) -> str:
    """Slugs are unique across the site; a workspace template gets a numbered suffix when needed."""
    if not slug_taken(slug):
        return slug
    for n in range(2, 1000):
        candidate = f"{slug[:75]}-{n}"
        if not slug_taken(candidate):
            return candidate
    raise EditorError("Choose another slug: this one is taken.")


def _new_version(template: Template, data: dict[str, Any], author: User | None, message: str) -> TemplateVersion:
    number = (db.session.scalar(select(func.max(TemplateVersion.number))
                                .where(TemplateVersion.template_id == template.id)) or 0) + 1
    llm = data.get("llm") or {}
    version = TemplateVersion(
        template_id=template.id, number=number, fields=data["fields"], output=data["output"],
        system_prompt=data["system_prompt"], user_prompt=data["user_prompt"],
        message=(message or "").strip()[:300], author_id=author.id if author else None,
        name=data["name"], category=data["category"], description=data["description"], icon=data["icon"],
        model=llm.get("model"), temperature=llm.get("temperature"), max_tokens=llm.get("max_tokens"),
    )
    db.session.add(version)
    db.session.flush()
    return version


def create_template(raw: dict[str, Any], *, author: User | None, workspace_id: int | None,
                    message: str = "", publish_now: bool = False) -> Template:
    """A new template with its first version (unpublished unless publish_now); the caller commits."""
    data = validate_template_data(raw)
    _check_models(workspace_id, data.get("llm"))
    slug = data["slug"]
    if workspace_id is not None:
        slug = free_slug(slug)
    elif slug_taken(slug):
        raise EditorError(f"The slug '{slug}' is already used by another template. Choose another one.")
    template = Template(slug=slug, name=data["name"], category=data["category"], description=data["description"],
                        icon=data["icon"], source="admin" if workspace_id is None else "workspace",
                        workspace_id=workspace_id)
    db.session.add(template)
    db.session.flush()
    version = _new_version(template, {**data, "slug": slug}, author, message or "Created")
    audit.record(author, "template.create", "template", template.id, None,
                 {"slug": slug, "version": version.number, "workspace_id": workspace_id})
    if publish_now:
        _publish(template, version, author)
    return template


def save_version(template: Template, raw: dict[str, Any], *, author: User | None, message: str,
                 publish_now: bool = False) -> TemplateVersion:
    """Every save is a new immutable version; the published one changes only on publish. The caller commits."""
    data = validate_template_data({**raw, "slug": template.slug})
    _check_models(template.workspace_id, data.get("llm"))
    before = latest_version(template)
    version = _new_version(template, data, author, message)
    if template.workspace_id is None and template.source == "seed":
        template.source = "admin"  # seeding never overwrites it from now on
    audit.record(author, "template.save", "template", template.id,
                 {"version": before.number if before else None}, {"version": version.number, "message": version.message})
    if publish_now:
        _publish(template, version, author)
    return version


def _publish(template: Template, version: TemplateVersion, actor: User | None) -> str:
    old = template.published_version
    action = "template.rollback" if old is not None and version.number < old.number else "template.publish"
    template.published_version_id = version.id
    template.name = version.name or template.name
    template.category = version.category or template.category
    template.description = version.description if version.description is not None else template.description
    template.icon = version.icon or template.icon
    if template.workspace_id is None and template.source == "seed":
        template.source = "admin"
    audit.record(actor, action, "template", template.id,
                 {"published_version": old.number if old else None}, {"published_version": version.number})
    return action


def publish(template: Template, version: TemplateVersion, actor: User | None) -> str:
    """Make this version the one users get; an earlier one than the current is a rollback."""
    if version.template_id != template.id:
        raise NotFound(f"version {version.id} of template {template.id}")
    if template.published_version_id == version.id:
        raise EditorError(f"Version {version.number} is already published.")
    _check_renders(version)
    _check_models(template.workspace_id, version.llm)
    return _publish(template, version, actor)


def _check_renders(version: TemplateVersion) -> None:
    """A version saved before today's render bounds (or import rules) may not render within them: not published."""
    for key, label in (("system_prompt", "system"), ("user_prompt", "user")):
        try:
            check_prompt(getattr(version, key), version.fields)
        except PromptError as exc:
            raise EditorError(f"Version {version.number} cannot be published: its {label} prompt does not render "
                              f"({exc}). Save a corrected version instead.") from exc


def unpublish(template: Template, actor: User | None) -> None:
    """Take the template out of the catalogue; its versions and generations stay."""
    old = template.published_version
    if old is None:
        raise EditorError("This template is not published.")
    template.published_version_id = None
    audit.record(actor, "template.unpublish", "template", template.id, {"published_version": old.number},
                 {"published_version": None})


# --- compare -------------------------------------------------------------------------


@dataclass
class DiffRow:
    kind: str              # equal | replace | delete | insert
    left_no: int | None
    left: str
    right_no: int | None
    right: str


@dataclass
class DiffSection:
    title: str
    rows: list[DiffRow]

    @property
    def changed(self) -> bool:
        return any(r.kind != "equal" for r in self.rows)


def _sections(data: dict[str, Any]) -> dict[str, str]:
    details = {k: data.get(k) for k in ("name", "category", "description", "icon")}
    return {
        "Details": to_yaml(details),
        "Fields": to_yaml(data["fields"]),
        "Output rules": to_yaml(data["output"]),
        "Model": to_yaml(data.get("llm") or {"model": "site default"}),
        "System prompt": data["system_prompt"],
        "User prompt": data["user_prompt"],
    }


def compare(template: Template, left: TemplateVersion, right: TemplateVersion) -> list[DiffSection]:
    """Side-by-side line diff per section (rendered autoescaped: prompts are untrusted)."""
    a, b = _sections(version_data(template, left)), _sections(version_data(template, right))
    sections = []
    for title in a:
        la, lb = a[title].splitlines(), b[title].splitlines()
        rows: list[DiffRow] = []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
            span = max(i2 - i1, j2 - j1)
            for k in range(span):
                li, rj = i1 + k, j1 + k
                rows.append(DiffRow(
                    tag,
                    li + 1 if li < i2 else None, la[li] if li < i2 else "",
                    rj + 1 if rj < j2 else None, lb[rj] if rj < j2 else "",
                ))
        sections.append(DiffSection(title, rows))
    return sections
