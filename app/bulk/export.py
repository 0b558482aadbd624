"""Results as CSV and XLSX: the original columns, then status and error, then per variant its text,
character count and an over-limit flag. Formula-injection safe: in CSV a text cell that a spreadsheet
would run (=, +, -, @, tab, CR first) gets a leading apostrophe; in XLSX every text cell is written as a
string (openpyxl would otherwise store "=..." as a formula)."""
from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select

from app.bulk.models import BulkRow, BulkRun
from app.extensions import db
from app.generation.models import Variant

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
STATUS_LABELS = {"done": "Done", "failed": "Failed", "skipped": "Skipped", "pending": "Not started",
                 "queued": "Queued", "running": "Running"}


def csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def table(run: BulkRun) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the results sheet (values, not yet made safe)."""
    rows = list(db.session.scalars(select(BulkRow).where(BulkRow.run_id == run.id).order_by(BulkRow.position)))
    generation_ids = [r.generation_id for r in rows if r.generation_id]
    variants: dict[int | None, list[Variant]] = {}
    for start in range(0, len(generation_ids), 500):
        for variant in db.session.scalars(select(Variant).where(
                Variant.generation_id.in_(generation_ids[start:start + 500])).order_by(Variant.position)):
            variants.setdefault(variant.generation_id, []).append(variant)
    width = max([len(variants.get(r.generation_id, [])) for r in rows] + [r.variant_count for r in rows] + [1])
    header = list(run.columns) + ["Status", "Error"]
    for n in range(1, width + 1):
        header += [f"Variant {n}", f"Variant {n} characters", f"Variant {n} over limit"]
    out = []
    for row in rows:
        line: list[Any] = list(row.cells) + [""] * (len(run.columns) - len(row.cells))
        line += [STATUS_LABELS.get(row.status, row.status), row.note or ""]
        for variant in variants.get(row.generation_id, []) if row.status == "done" else []:
            line += [variant.text, len(variant.text), "yes" if variant.over_limit else "no"]
        line += [""] * (len(header) - len(line))
        out.append(line)
    return header, out


def as_csv(run: BulkRun) -> str:
    header, rows = table(run)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_safe(h) for h in header])
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
    return "\ufeff" + buffer.getvalue()  # a BOM, so Excel opens UTF-8 as UTF-8


def as_xlsx(run: BulkRun) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    header, rows = table(run)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Results")
    from openpyxl.cell import WriteOnlyCell

    def cell(value: Any):
        if isinstance(value, str):
            c = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
            c.data_type = "s"  # text, never a formula
            return c
        return WriteOnlyCell(sheet, value=value)

    sheet.append([cell(h) for h in header])
    for row in rows:
        sheet.append([cell(v) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def errors_csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([csv_safe(v) for v in row])
    return "\ufeff" + buffer.getvalue()
