"""Turn generations into downloadable files: CSV, DOCX (python-docx) and Markdown.

Every format is built from the same rows (`rows_of`), one per usable variant, so the three files
always hold the same copy. A refunded variant was not paid for, and a variant held for review is not
yet cleared for use (`Variant.is_copyable`): both are left out, as they are left out of "Copy all".

CSV opened in a spreadsheet runs a cell that starts with = + - @ (or a tab/CR) as a formula, and
model output is untrusted: such cells get a leading apostrophe (OWASP's "CSV injection" advice).
Markdown escapes the characters that would turn copy into markup, so the file shows the text as written.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.generation.models import Generation

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "md": ("text/markdown; charset=utf-8", "md"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
}
MAX_SELECTION = 100  # generations in one History export: a bound on what one request builds
CSV_COLUMNS = ("generation_id", "created_at", "template", "variant", "text", "characters", "favourite",
               "tone", "language")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
MD_LINE_START = re.compile(r"^(\s*)([-+=]|\d+[.)])")  # would start a list or an underline


class ExportError(ValueError):
    """An export that cannot be built as asked (unknown format, nothing selected, too many)."""


@dataclass(frozen=True)
class Row:
    generation_id: int
    created_at: datetime
    template: str
    position: int
    text: str
    favourite: bool
    tone: str
    language: str


def generations_for_export(workspace_id: int, ids: list[int]) -> list[Generation]:
    """The workspace's generations among `ids` (others' ids are silently not there), newest first."""
    if not ids:
        raise ExportError("Select at least one result to export.")
    if len(ids) > MAX_SELECTION:
        raise ExportError(f"Export at most {MAX_SELECTION} results at a time.")
    return list(db.session.scalars(
        select(Generation).where(Generation.workspace_id == workspace_id, Generation.id.in_(ids))
        .options(selectinload(Generation.variants), selectinload(Generation.template))
        .order_by(Generation.created_at.desc(), Generation.id.desc())))


def rows_of(generations: list[Generation]) -> list[Row]:
    """One row per variant that may be copied (refunded ones, and ones held for review, are not)."""
    rows = []
    for gen in generations:
        for number, variant in enumerate((v for v in gen.variants if v.is_copyable), 1):
            rows.append(Row(gen.id, gen.created_at, gen.template.name, number, variant.text,
                            bool(variant.is_favourite), gen.tone, gen.language))
    return rows


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text: a leading formula character gets an apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(rows: list[Row]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([csv_cell(v) for v in (r.generation_id, r.created_at.strftime("%Y-%m-%d %H:%M"), r.template,
                                               r.position, r.text, len(r.text), "yes" if r.favourite else "",
                                               r.tone, r.language)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM makes Excel read UTF-8


def md_escape(text: str) -> str:
    """Copy as literal Markdown text: markup characters escaped, line breaks kept."""
    return "  \n".join(MD_LINE_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], MD_SPECIAL.sub(r"\\\1", line))
                       for line in text.splitlines())


def _grouped(rows: list[Row]):
    groups: dict[int, list[Row]] = {}
    for r in rows:
        groups.setdefault(r.generation_id, []).append(r)
    return groups.values()


def to_markdown(rows: list[Row]) -> bytes:
    parts = []
    for group in _grouped(rows):
        head = group[0]
        parts.append(f"# {md_escape(head.template)}\n\n*{head.created_at.strftime('%Y-%m-%d %H:%M')} UTC · "
                     f"{md_escape(head.tone)} · {md_escape(head.language)}*\n")
        for r in group:
            parts.append(f"## Variant {r.position}{' (favourite)' if r.favourite else ''}\n\n{md_escape(r.text)}\n")
    return "\n".join(parts).encode("utf-8")


def to_docx(rows: list[Row]) -> bytes:
    from docx import Document  # imported here: only exports need it

    document = Document()
    for group in _grouped(rows):
        head = group[0]
        document.add_heading(head.template, level=1)
        document.add_paragraph(f"{head.created_at.strftime('%Y-%m-%d %H:%M')} UTC · {head.tone} · {head.language}")
        for r in group:
            document.add_heading(f"Variant {r.position}{' (favourite)' if r.favourite else ''}", level=2)
            for line in r.text.splitlines() or [""]:
                document.add_paragraph(_xml_safe(line))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _xml_safe(text: str) -> str:
    """Drop the control characters XML cannot hold (python-docx refuses them)."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text)


def build(fmt: str, generations: list[Generation]) -> tuple[bytes, str, str]:
    """(file body, content type, extension) of `generations` in format `fmt`."""
    if fmt not in FORMATS:
        raise ExportError("Export as csv, docx or md.")
    rows = rows_of(generations)
    body = {"csv": to_csv, "md": to_markdown, "docx": to_docx}[fmt](rows)
    content_type, ext = FORMATS[fmt]
    return body, content_type, ext
