"""Templates as files: export in the seed format, import with everything checked first.

An import is all or nothing. Every file is parsed and validated (field types,
prompts that render, known variables) and every slug checked before anything is
written; one problem anywhere means nothing is imported and every problem is
reported. A slug that already exists is a clash, unless the admin ticked
"update existing templates": then that file becomes a new version of it.
Workspace templates are never updated by an import.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import select

from app.auth.models import User
from app.catalog import versions
from app.catalog.models import Template
from app.catalog.schema import TemplateDataError, validate_template_data
from app.extensions import db

MAX_FILES = 200
MAX_FILE_BYTES = 256 * 1024


class ImportRefused(Exception):
    """Nothing was imported; `problems` lists every reason, file by file."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class ImportPlan:
    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[tuple[Template, dict[str, Any]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def read_upload(filename: str, content: bytes) -> list[tuple[str, str]]:
    """(name, text) of each YAML file in an upload: one .yaml/.yml file or a .zip of them."""
    lower = filename.lower()
    if lower.endswith((".yaml", ".yml")):
        files = [(filename, content)]
    elif lower.endswith(".zip"):
        try:
            archive = zipfile.ZipFile(io.BytesIO(content))
        except zipfile.BadZipFile as exc:
            raise ImportRefused([f"{filename}: not a valid zip file"]) from exc
        infos = [i for i in archive.infolist() if not i.is_dir() and i.filename.lower().endswith((".yaml", ".yml"))
                 and not i.filename.split("/")[-1].startswith(".")]
        if not infos:
            raise ImportRefused([f"{filename}: no .yaml files inside"])
        if len(infos) > MAX_FILES:
            raise ImportRefused([f"{filename}: at most {MAX_FILES} files at once"])
        too_big = [i.filename for i in infos if i.file_size > MAX_FILE_BYTES]
        if too_big:
            raise ImportRefused([f"{name}: larger than {MAX_FILE_BYTES // 1024} KB" for name in too_big])
        files = [(i.filename, archive.read(i)) for i in sorted(infos, key=lambda i: i.filename)]
    else:
        raise ImportRefused([f"{filename}: upload a .yaml file or a .zip of .yaml files"])
    out = []
    for name, raw in files:
        if len(raw) > MAX_FILE_BYTES:
            raise ImportRefused([f"{name}: larger than {MAX_FILE_BYTES // 1024} KB"])
        try:
            out.append((name, raw.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise ImportRefused([f"{name}: not UTF-8 text"]) from exc
    return out


def plan(files: list[tuple[str, str]], *, allow_updates: bool) -> ImportPlan:
    """Check every file; raise ImportRefused listing every problem, else say what will happen."""
    problems: list[str] = []
    result = ImportPlan()
    seen: dict[str, str] = {}
    for name, text in files:
        try:
            raw = yaml.safe_load(text)
            data = validate_template_data(raw, name)
        except yaml.YAMLError as exc:
            problems.append(f"{name}: not valid YAML ({str(exc).splitlines()[0]})")
            continue
        except TemplateDataError as exc:
            problems.append(str(exc))
            continue
        slug = data["slug"]
        if slug in seen:
            problems.append(f"{name}: slug '{slug}' is also used by {seen[slug]}")
            continue
        seen[slug] = name
        existing = db.session.scalars(select(Template).where(Template.slug == slug)).first()
        if existing is None:
            result.create.append(data)
        elif existing.workspace_id is not None:
            problems.append(f"{name}: slug '{slug}' is taken by a workspace's private template; rename it")
        elif not allow_updates:
            problems.append(f"{name}: a template with slug '{slug}' already exists; tick "
                            "“Update existing templates” to import this file as its new version")
        else:
            latest = versions.latest_version(existing)
            if latest is not None and versions.version_data(existing, latest) == versions.version_data(
                    existing, _as_version(existing, data)):
                result.unchanged.append(slug)
            else:
                result.update.append((existing, data))
    if problems:
        raise ImportRefused(problems)
    return result


def _as_version(template: Template, data: dict[str, Any]):
    """An unsaved version object, only to compare content with the latest one."""
    from app.catalog.models import TemplateVersion
    llm = data.get("llm") or {}
    return TemplateVersion(fields=data["fields"], output=data["output"], system_prompt=data["system_prompt"],
                           user_prompt=data["user_prompt"], name=data["name"], category=data["category"],
                           description=data["description"], icon=data["icon"], model=llm.get("model"),
                           temperature=llm.get("temperature"), max_tokens=llm.get("max_tokens"))


def apply(result: ImportPlan, *, actor: User, publish_now: bool, filename: str) -> dict[str, int]:
    """Write the plan (with its audit entries) in the caller's transaction: it commits all or nothing."""
    message = f"Imported from {filename}"[:300]
    for data in result.create:
        versions.create_template(data, author=actor, workspace_id=None, message=message, publish_now=publish_now)
    for template, data in result.update:
        versions.save_version(template, data, author=actor, message=message, publish_now=publish_now)
    return {"created": len(result.create), "updated": len(result.update), "unchanged": len(result.unchanged)}


def export_zip(templates: list[Template]) -> bytes:
    """A zip of <slug>.yaml files: each template's published version (else its latest)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for template in templates:
            version = template.published_version or versions.latest_version(template)
            if version is not None:
                archive.writestr(f"{template.slug}.yaml", versions.to_yaml(versions.version_data(template, version)))
    return buffer.getvalue()
