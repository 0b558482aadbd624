"""Bulk run rules: read and map a sheet, check every row before paying, run rows at a bounded
concurrency per workspace on their own queue, pause / resume / cancel / retry, finish.

Each row becomes a normal Generation through `generation.services.start` (so History, favourites and
every action work), made and run by a row job on the `bulk` queue (app/bulk/tasks.py). Quota is reserved
per row when the row starts and settled per row (see ARCHITECTURE.md, "Bulk runs", for why). Row
validation is the generate form's own validators, run on each row: no second copy of the field rules.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from app.auth.models import User

from app.core import required, rowcount, utcnow
from app.billing.services import has_feature
from app.bulk import parsing
from app.bulk.models import FINAL, IN_FLIGHT, BulkMapping, BulkRow, BulkRun, BulkSlots
from app.catalog.models import Template, TemplateVersion
from app.catalog.rendering import PromptError, render_prompt
from app.extensions import db
from app.generation.forms import build_generate_form
from app.generation.options import CREATIVITY
from app.generation.services import LANGUAGES, TONES, build_context
from app.outbox.services import enqueue_after_commit
from app.quota import services as quota
from app.workspaces.models import Membership, Workspace

FEATURE = "bulk_runs"
SETTINGS = ("tone", "language", "variant_count", "creativity")
SETTING_LABELS = {"tone": "Tone of voice", "language": "Output language", "variant_count": "Variants per row",
                  "creativity": "Creativity"}
PREVIEW_ROWS = 3
KEY_CHUNK = 500


class BulkError(Exception):
    """A refusal the user can act on; the message says what to do. Nothing was written or charged."""


class NotAllowed(BulkError):
    """The workspace's plan has no bulk runs."""


class QuotaShort(BulkError):
    """The remaining quota does not cover the rows asked for."""


class RowsInvalid(BulkError):
    """Rows given in memory (the API's JSON rows) that the checks refuse; `errors` maps
    `rows[<index>].<field>` to messages. Nothing was written."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(f"{len({k.split('.')[0] for k in errors})} row(s) are invalid; nothing was written.")
        self.errors = errors


# --- who sees what -------------------------------------------------------------------------------------

def can_manage_all(membership: Membership) -> bool:
    """Owners and admins see and cancel every run of the workspace; members their own."""
    return membership.can_manage


def visible_runs(workspace: Workspace, membership: Membership, limit: int = 50) -> list[BulkRun]:
    stmt = select(BulkRun).where(BulkRun.workspace_id == workspace.id, BulkRun.status != "draft")
    if not can_manage_all(membership):
        stmt = stmt.where(BulkRun.user_id == membership.user_id)
    return list(db.session.scalars(stmt.order_by(BulkRun.id.desc()).limit(limit)))


def may_see(run: BulkRun, membership: Membership) -> bool:
    return can_manage_all(membership) or run.user_id == membership.user_id


def require_feature(workspace: Workspace) -> None:
    if not has_feature(workspace, FEATURE):
        raise NotAllowed("Bulk runs come with the Business plan.")


# --- upload and mapping --------------------------------------------------------------------------------

def create_draft(workspace: Workspace, user: User, template: Template, filename: str, data: bytes) -> BulkRun:
    """Read the file once (detecting how) and keep it on a draft run; SheetError if it is unusable."""
    require_feature(workspace)
    sheet = parsing.read(data)
    run = BulkRun(workspace_id=workspace.id, user_id=user.id, template_id=template.id,
                  template_version_id=template.published_version_id, status="draft",
                  filename=(filename or "upload")[:200], source=data, options=sheet.options.as_dict(),
                  columns=sheet.headers)
    db.session.add(run)
    db.session.flush()
    return run


def expire_drafts(older_than: timedelta) -> int:
    """Delete drafts (uploads never started) older than `older_than`: each keeps its whole file (up to
    10 MB) in `source`, and an abandoned upload would keep it for ever. A draft has no rows and charged
    nothing; its template's remembered mapping stays. Returns how many were deleted (the caller commits)."""
    return rowcount(db.session.execute(
        delete(BulkRun).where(BulkRun.status == "draft", BulkRun.created_at < utcnow() - older_than)
        .execution_options(synchronize_session=False)))


def read_sheet(run: BulkRun, options: dict[str, Any] | None = None) -> parsing.Sheet:
    """The draft's file read with its stored options (or these corrections)."""
    if run.source is None:
        raise BulkError("This run has started; its file is no longer kept. Upload it again for a new run.")
    stored = dict(run.options)
    stored.update(options or {})
    return parsing.read(run.source, parsing.Options(stored["kind"], stored.get("encoding"),
                                                    stored.get("delimiter"), int(stored.get("header_row") or 0)))


def set_options(run: BulkRun, options: dict[str, Any]) -> parsing.Sheet:
    """Correct the encoding, separator or header row; the mapping is matched again."""
    sheet = read_sheet(run, options)
    run.options = sheet.options.as_dict()
    if sheet.headers != run.columns:
        run.mapping = None
    run.columns = sheet.headers
    return sheet


def normalize(name: str) -> str:
    """Case, spaces and punctuation ignored, "&" read as "and": "Product name", "product_name" and
    "PRODUCT-NAME" match, and so do "Features & details" and "Features and details"."""
    return re.sub(r"[\W_]+", "", name.casefold().replace("&", "and"))


def default_mapping(version: TemplateVersion, headers: list[str], saved: dict[str, Any] | None) -> dict[str, Any]:
    """Fields matched to columns by name (field name or label), unless a saved mapping fits this file."""
    by_key = {normalize(h): h for h in headers}
    mapping: dict[str, Any] = {"fields": {}, "settings": {}}
    saved = saved or {}
    for spec in version.fields:
        remembered = (saved.get("fields") or {}).get(spec["name"]) or {}
        column = remembered.get("column") if remembered.get("column") in headers else None
        if column is None and not remembered.get("value"):
            column = by_key.get(normalize(spec["name"])) or by_key.get(normalize(spec["label"]))
        mapping["fields"][spec["name"]] = {"column": column or "", "value": "" if column else remembered.get("value", "")}
    defaults = {"tone": "Professional", "language": "English", "variant_count": str(version.default_variants),
                "creativity": "balanced"}
    for name in SETTINGS:
        remembered = (saved.get("settings") or {}).get(name) or {}
        column = remembered.get("column") if remembered.get("column") in headers else None
        if column is None and not saved:
            column = by_key.get(normalize(name)) or by_key.get(normalize(SETTING_LABELS[name]))
            if name == "variant_count":
                column = column or by_key.get("variants")
        mapping["settings"][name] = {"column": column or "", "value": str(remembered.get("value") or defaults[name])}
    return mapping


def saved_mapping(workspace_id: int, template_id: int) -> dict[str, Any] | None:
    row = db.session.scalars(select(BulkMapping).where(BulkMapping.workspace_id == workspace_id,
                                                       BulkMapping.template_id == template_id)).first()
    return row.mapping if row else None


def mapping_problems(version: TemplateVersion, headers: list[str], mapping: dict[str, Any]) -> list[str]:
    """What is wrong with the mapping itself (before any row is looked at)."""
    problems = []
    used: dict[str, str] = {}
    labels = {spec["name"]: spec["label"] for spec in version.fields} | SETTING_LABELS
    entries = [(n, e) for n, e in mapping.get("fields", {}).items()] + list(mapping.get("settings", {}).items())
    for name, entry in entries:
        column = entry.get("column") or ""
        if not column:
            continue
        if column not in headers:
            problems.append(f"{labels.get(name, name)}: the column “{column}” is not in this file.")
        elif column in used:
            problems.append(f"The column “{column}” is mapped to both {used[column]} and {labels.get(name, name)}. "
                            "Map each column once; use a fixed value for the other.")
        else:
            used[column] = labels.get(name, name)
    for spec in version.fields:
        entry = mapping.get("fields", {}).get(spec["name"]) or {}
        if spec.get("required") and not entry.get("column") and not str(entry.get("value") or "").strip():
            problems.append(f"{spec['label']} is required: pick its column, or type a value for every row.")
    return problems


def set_mapping(run: BulkRun, mapping: dict[str, Any]) -> list[str]:
    """Store the mapping on the draft and remember it for the template; returns its problems (none: stored)."""
    version = run.template_version
    problems = mapping_problems(version, run.columns, mapping)
    if problems:
        return problems
    run.mapping = mapping
    _remember(run.workspace_id, run.template_id, mapping)
    return []


def _remember(workspace_id: int, template_id: int, mapping: dict[str, Any]) -> None:
    row = db.session.scalars(select(BulkMapping).where(BulkMapping.workspace_id == workspace_id,
                                                       BulkMapping.template_id == template_id)).first()
    if row is None:
        try:
            with db.session.begin_nested():
                db.session.add(BulkMapping(workspace_id=workspace_id, template_id=template_id, mapping=mapping))
            return
        except IntegrityError:
            row = db.session.scalars(select(BulkMapping).where(BulkMapping.workspace_id == workspace_id,
                                                               BulkMapping.template_id == template_id)).one()
    row.mapping = mapping
    row.updated_at = utcnow()


# --- checking every row --------------------------------------------------------------------------------

@dataclass
class RowCheck:
    position: int
    line: int
    cells: list[str]
    inputs: dict[str, Any]
    tone: str
    language: str
    variant_count: int
    creativity: str
    errors: list[str] = field(default_factory=list)
    key: str = ""
    done_in_run: int | None = None
    field_errors: dict[str, list[str]] = field(default_factory=dict)  # field or setting name -> messages

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass
class Check:
    rows: list[RowCheck]
    remaining: int
    previews: list[tuple[int, str, str]]  # (line, system prompt, user prompt)
    notes: list[str]
    redo_done: bool = False

    @property
    def invalid(self) -> list[RowCheck]:
        return [r for r in self.rows if not r.valid]

    @property
    def already_done(self) -> list[RowCheck]:
        return [r for r in self.rows if r.valid and r.done_in_run is not None]

    @property
    def runnable(self) -> list[RowCheck]:
        return [r for r in self.rows if r.valid and (self.redo_done or r.done_in_run is None)]

    @property
    def cost(self) -> int:
        return sum(r.variant_count for r in self.runnable)

    def fitting(self) -> list[RowCheck]:
        """The runnable rows, in file order, that the remaining quota covers."""
        chosen, spent = [], 0
        for row in self.runnable:
            if spent + row.variant_count > self.remaining:
                break
            chosen.append(row)
            spent += row.variant_count
        return chosen


def _choice(value: str, options: tuple[str, ...] | list[str]) -> str:
    """A select value written in any case ("friendly") is the option ("Friendly")."""
    folded = value.casefold()
    return next((o for o in options if o.casefold() == folded), value)


def _value(entry: dict[str, Any], cells: list[str], index: dict[str, int]) -> str:
    column = entry.get("column") or ""
    if column:
        return cells[index[column]]
    return str(entry.get("value") or "").strip()


def row_key(version_id: int, inputs: dict[str, Any], tone: str, language: str, variants: int, creativity: str) -> str:
    payload = json.dumps([version_id, inputs, tone, language, variants, creativity], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def check_rows(run: BulkRun, sheet: parsing.Sheet, user_id: int, redo_done: bool = False,
               previews: bool = True) -> Check:
    """Validate every row with the generate form's validators; find rows already done; cost it."""
    version = run.template_version
    mapping = run.mapping or {}
    index = {h: i for i, h in enumerate(sheet.headers)}
    form_class = type(build_generate_form(version))
    specs = {spec["name"]: spec for spec in version.fields}
    rows: list[RowCheck] = []
    for position, (cells, line) in enumerate(zip(sheet.rows, sheet.lines, strict=False), start=1):
        raw = {name: _value(entry, cells, index) for name, entry in mapping.get("fields", {}).items() if name in specs}
        for name, spec in specs.items():
            raw.setdefault(name, "")
            if spec["type"] == "select" and raw[name]:
                raw[name] = _choice(raw[name], spec["options"])
        settings = {name: _value(mapping.get("settings", {}).get(name, {}), cells, index) for name in SETTINGS}
        settings["tone"] = _choice(settings["tone"], TONES)
        settings["language"] = _choice(settings["language"], LANGUAGES)
        settings["creativity"] = _choice(settings["creativity"], tuple(CREATIVITY))
        formdata = MultiDict({f"f_{k}": v for k, v in raw.items()} | settings | {"brand_voice": "0"})
        form = form_class(formdata=formdata, meta={"csrf": False})
        errors = []
        if position - 1 in sheet.ragged:
            errors.append(f"This row has {sheet.ragged[position - 1]} values but the file has "
                          f"{len(sheet.headers)} columns (a separator inside a value that is not quoted?).")
        too_long = [sheet.headers[i] for i, c in enumerate(cells) if len(c) > parsing.MAX_CELL_CHARS]
        if too_long:
            errors.append(f"“{too_long[0]}” is over {parsing.MAX_CELL_CHARS:,} characters.")
        if not form.validate():
            for messages in form.errors.values():
                errors.extend(messages)
        inputs = {}
        if not errors:
            for name in specs:
                value = form[f"f_{name}"].data
                inputs[name] = "" if value is None else value
        variant_count = form.variant_count.data if isinstance(form.variant_count.data, int) else 0
        check = RowCheck(position, line, cells, inputs, form.tone.data or "", form.language.data or "",
                         variant_count, form.creativity.data or "", errors,
                         field_errors={name.removeprefix("f_"): [str(m) for m in messages]
                                       for name, messages in form.errors.items()})
        if not errors:
            check.key = row_key(version.id, inputs, check.tone, check.language, variant_count, check.creativity)
        rows.append(check)
    _mark_done(run, rows)
    remaining = quota.remaining(run_workspace(run), user_id).remaining
    result = Check(rows, remaining, [], list(sheet.notes), redo_done)
    if previews:
        result.previews = preview_prompts(version, [r for r in rows if r.valid][:PREVIEW_ROWS])
    return result


def run_workspace(run: BulkRun) -> Workspace:
    return required(db.session.get(Workspace, run.workspace_id), f"workspace {run.workspace_id}")


def _mark_done(run: BulkRun, rows: list[RowCheck]) -> None:
    """Rows whose key (inputs, settings, template version) was already written in this workspace."""
    keys = [r.key for r in rows if r.key]
    done: dict[str, int] = {}
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start:start + KEY_CHUNK]
        for key, run_id in db.session.execute(
                select(BulkRow.row_key, BulkRow.run_id).where(BulkRow.workspace_id == run.workspace_id,
                                                              BulkRow.status == "done", BulkRow.row_key.in_(chunk))):
            done[key] = run_id
    for row in rows:
        if row.key in done:
            row.done_in_run = done[row.key]


def preview_prompts(version: TemplateVersion, rows: list[RowCheck]) -> list[tuple[int, str, str]]:
    previews = []
    for row in rows:
        context = build_context(version, row.inputs, tone=row.tone, language=row.language,
                                variant_count=row.variant_count)
        try:
            previews.append((row.line, render_prompt(version.system_prompt, context),
                             render_prompt(version.user_prompt, context)))
        except PromptError as exc:
            previews.append((row.line, "", f"This row's prompt could not be prepared: {exc}"))
    return previews


def errors_csv_rows(check: Check) -> list[list[str]]:
    out = [["Row", "Problem"]]
    for row in check.invalid:
        for error in row.errors:
            out.append([str(row.line), error])
    return out


# --- starting and steering a run -----------------------------------------------------------------------

def start_run(run: BulkRun, user: User, *, only_fitting: bool, redo_done: bool, checked: Check | None = None) -> int:
    """Turn the draft into a run: one row per data row of the file, the runnable ones pending.

    `only_fitting`: run as many rows as the remaining quota covers (in file order), the rest skipped.
    Otherwise all runnable rows, refused if the quota is short. Returns the number of rows to run.
    `checked`: the rows' check when the caller made it for this run in this transaction, with the same
    `redo_done` (the API's creates), so a 10,000-row file is not read and checked twice.
    """
    from app.billing import services as billing

    workspace = run_workspace(run)
    require_feature(workspace)
    if run.status != "draft":
        raise BulkError("This run has already started.")
    if not run.mapping:
        raise BulkError("Map the columns first.")
    if not billing.has_seat(workspace, user.id):
        raise BulkError("You are not in a seat of this workspace's plan, so you cannot generate. Ask the owner "
                        "to add seats.")
    problems = mapping_problems(run.template_version, run.columns, run.mapping)
    if problems:
        raise BulkError(problems[0])
    check = checked if checked is not None else \
        check_rows(run, read_sheet(run), user.id, redo_done=redo_done, previews=False)
    runnable = check.runnable
    chosen = check.fitting() if only_fitting else runnable
    if not runnable:
        raise BulkError("No row can run: every row is invalid or already done. Fix the file, or tick "
                        "“Write rows already done again”.")
    if not chosen:
        raise QuotaShort("Your remaining quota does not cover even the first row. Nothing was charged.")
    if not only_fitting and check.cost > check.remaining:
        raise QuotaShort(f"These rows need {check.cost} generations and {check.remaining} are left. Run only "
                        "the rows the quota covers, or ask the owner for more. Nothing was charged.")
    chosen_positions = {r.position for r in chosen}
    records = []
    for row in check.rows:
        status, note = "pending", None
        if not row.valid:
            status, note = "skipped", "Invalid: " + " ".join(row.errors)
        elif row.done_in_run is not None and not redo_done:
            status, note = "skipped", f"Already written in run #{row.done_in_run} (same inputs and template version)."
        elif row.position not in chosen_positions:
            status, note = "skipped", "Not run: beyond the quota chosen for this run."
        records.append(dict(run_id=run.id, workspace_id=run.workspace_id, position=row.position, line=row.line,
                            cells=row.cells, inputs=row.inputs, tone=row.tone or "Professional",
                            language=row.language or "English", variant_count=row.variant_count or 1,
                            creativity=row.creativity or "balanced", row_key=row.key or "", status=status,
                            note=note[:1000] if note else None, attempts=0, updated_at=utcnow()))
    moved = rowcount(db.session.execute(update(BulkRun).where(BulkRun.id == run.id, BulkRun.status == "draft").values(
        status="running", started_at=utcnow(), total_rows=len(records), redo_done=redo_done, source=None,
        user_id=user.id)))
    if not moved:
        db.session.rollback()
        raise BulkError("This run has already started.")
    for start in range(0, len(records), 1000):
        db.session.execute(insert(BulkRow), records[start:start + 1000])
    pump(run.workspace_id)
    return len(chosen)


ROW_SETTINGS = {"tone": "tone", "language": "language", "variants": "variant_count", "creativity": "creativity"}


def start_from_rows(workspace: Workspace, user: User, template: Template, rows: list[dict[str, Any]], *,
                    only_fitting: bool = False, redo_done: bool = False,
                    on_record: Callable[[BulkRun], None] | None = None) -> BulkRun:
    """Start a run from rows already in memory (the API's JSON rows: the template's fields by name plus
    optional tone / language / variants / creativity), through the same path as an uploaded file: the rows
    become the run's sheet (a CSV), mapped by name, checked by `check_rows` and started by `start_run`.
    Unlike the browser, any invalid row refuses the whole run (RowsInvalid) and nothing is written.
    `on_record(run)` runs inside the starting transaction (the API's idempotency record)."""
    require_feature(workspace)
    version = required(template.published_version, f"published version of {template.slug}")
    names = [spec["name"] for spec in version.fields]
    allowed = set(names) | set(ROW_SETTINGS)
    errors: dict[str, list[str]] = {}
    for index, row in enumerate(rows):
        for name in sorted(set(row) - allowed):
            errors[f"rows[{index}].{name}"] = ["Unknown field for this template."]
        for name, value in row.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
                errors[f"rows[{index}].{name}"] = ["Must be a string or an integer."]
        if not any(str(v).strip() for v in row.values() if v is not None):
            errors[f"rows[{index}]"] = ["The row is empty."]
    if any("." not in name for name in errors):  # an empty row would shift the sheet's rows: stop here
        raise RowsInvalid(errors)
    headers = names + [s for s in ROW_SETTINGS if any(s in row for row in rows)]
    defaults = {"tone": "Professional", "language": "English", "variant_count": str(version.default_variants),
                "creativity": "balanced"}
    blank = {column: defaults[setting] for column, setting in ROW_SETTINGS.items()}  # a row without the setting
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([blank.get(h, "") if row.get(h) is None else str(row[h]) for h in headers])
    mapping = {"fields": {n: {"column": n, "value": ""} for n in names},
               "settings": {setting: {"column": column if column in headers else "",
                                      "value": "" if column in headers else defaults[setting]}
                            for column, setting in ROW_SETTINGS.items()}}
    run = BulkRun(workspace_id=workspace.id, user_id=user.id, template_id=template.id,
                  template_version_id=version.id, status="draft", filename="api-rows.csv",
                  source=buffer.getvalue().encode(), options=parsing.Options("csv", "utf-8", ",", 1).as_dict(),
                  columns=headers, mapping=mapping)
    db.session.add(run)
    db.session.flush()
    check = check_rows(run, read_sheet(run), user.id, redo_done=redo_done, previews=False)
    setting_names = {v: k for k, v in ROW_SETTINGS.items()}
    for bad in check.invalid:
        where = f"rows[{bad.position - 1}]"
        if not bad.field_errors:
            errors[where] = bad.errors
        for name, messages in bad.field_errors.items():
            errors[f"{where}.{setting_names.get(name, name)}"] = messages
    if errors:
        db.session.rollback()
        raise RowsInvalid(errors)
    if on_record is not None:
        on_record(run)
    start_run(run, user, only_fitting=only_fitting, redo_done=redo_done, checked=check)
    return run


class MappingInvalid(BulkError):
    """A mapping given with an upload that does not fit the template or the file; `errors` maps
    `mapping.fields.<name>` (a field the template does not have) or `mapping` to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(" ".join(m for messages in errors.values() for m in messages))
        self.errors = errors


def start_from_upload(workspace: Workspace, user: User, template: Template, filename: str, data: bytes, *,
                      options: dict[str, Any] | None = None, mapping: dict[str, Any] | None = None,
                      only_fitting: bool = False, redo_done: bool = False,
                      on_record: Callable[[BulkRun], None] | None = None) -> BulkRun:
    """The browser's upload, mapping and check screens in one call (the API's upload). The file is read as
    `create_draft` reads it, with `options` (encoding / delimiter / header_row) applied as `set_options`
    applies them. `mapping` has the shape `set_mapping` stores ({"fields"|"settings": {name: {"column",
    "value"}}}); the entries it names replace those of the automatic one (`default_mapping`: names matched,
    the workspace's saved mapping), so None is the browser's pre-filled screen. The mapping is checked by
    `mapping_problems` and remembered for the template, every row by `check_rows`, and `start_run` starts
    it. Unlike the browser, a mapping problem (MappingInvalid) or any invalid row (RowsInvalid, keyed
    `row <spreadsheet row>.<field>`) refuses the run; nothing is committed before `start_run`, so a refusal
    leaves no draft behind. `on_record(run)` runs inside the starting transaction."""
    require_feature(workspace)
    version = required(template.published_version, f"published version of {template.slug}")
    given = mapping or {}
    unknown = sorted(set(given.get("fields") or {}) - {spec["name"] for spec in version.fields})
    if unknown:
        raise MappingInvalid({f"mapping.fields.{name}": ["Unknown field for this template."] for name in unknown})
    sheet = parsing.read(data, parsing.Options("csv", **(options or {})))
    effective = default_mapping(version, sheet.headers, saved_mapping(workspace.id, template.id))
    for part in ("fields", "settings"):
        effective[part].update(given.get(part) or {})
    problems = mapping_problems(version, sheet.headers, effective)
    if problems:
        raise MappingInvalid({"mapping": problems})
    run = BulkRun(workspace_id=workspace.id, user_id=user.id, template_id=template.id,
                  template_version_id=version.id, status="draft", filename=(filename or "upload")[:200],
                  source=data, options=sheet.options.as_dict(), columns=sheet.headers, mapping=effective)
    db.session.add(run)
    db.session.flush()
    check = check_rows(run, sheet, user.id, redo_done=redo_done, previews=False)
    errors: dict[str, list[str]] = {}
    for bad in check.invalid:
        named = [m for messages in bad.field_errors.values() for m in messages]
        errors.update({f"row {bad.line}.{name}": messages for name, messages in bad.field_errors.items()})
        if [m for m in bad.errors if m not in named]:
            errors[f"row {bad.line}"] = [m for m in bad.errors if m not in named]
    if errors:
        db.session.rollback()
        raise RowsInvalid(errors)
    _remember(workspace.id, template.id, effective)
    if on_record is not None:
        on_record(run)
    start_run(run, user, only_fitting=only_fitting, redo_done=redo_done, checked=check)
    return run


def pause(run: BulkRun) -> bool:
    """Stop handing out rows; rows already running finish, queued ones go back to pending."""
    moved = rowcount(db.session.execute(update(BulkRun).where(BulkRun.id == run.id, BulkRun.status == "running")
                               .values(status="paused", message=None)))
    return bool(moved)


def resume(run: BulkRun) -> bool:
    moved = rowcount(db.session.execute(update(BulkRun).where(BulkRun.id == run.id, BulkRun.status == "paused")
                               .values(status="running", message=None)))
    if moved:
        pump(run.workspace_id)
    return bool(moved)


def cancel(run: BulkRun) -> int:
    """Cancel: every row not started is skipped (it holds no reservation, so nothing is charged for it);
    rows running finish. Returns the number of rows cancelled."""
    moved = rowcount(db.session.execute(update(BulkRun).where(BulkRun.id == run.id, BulkRun.status.in_(("running", "paused")))
                               .values(status="cancelled", message=None)))
    if not moved:
        db.session.rollback()
        return 0
    cancelled = rowcount(db.session.execute(update(BulkRow).where(BulkRow.run_id == run.id, BulkRow.status == "pending")
                                   .values(status="skipped", note="Cancelled before it started; nothing charged.",
                                           updated_at=utcnow())))
    maybe_finish(run.id)
    return cancelled


def retry_failed(run: BulkRun) -> int:
    """Failed rows go back to pending (each charges again only when it runs); the run runs again."""
    if run.status not in ("finished", "running", "paused"):
        raise BulkError("A cancelled run cannot be retried; upload the file again for a new run.")
    count = rowcount(db.session.execute(update(BulkRow).where(BulkRow.run_id == run.id, BulkRow.status == "failed")
                               .values(status="pending", note=None, updated_at=utcnow())))
    if not count:
        db.session.rollback()
        return 0
    db.session.execute(update(BulkRun).where(BulkRun.id == run.id)
                       .values(status="running" if run.status != "paused" else "paused", finished_at=None,
                               message=None))
    pump(run.workspace_id)
    return count


def finish_run(run_id: int) -> bool:
    """The one place a run ends (its last row settled, or its cancel took effect): runs once per ending,
    and records the `bulk_run.completed` webhook in the same transaction."""
    moved = rowcount(db.session.execute(
        update(BulkRun).where(BulkRun.id == run_id, BulkRun.finished_at.is_(None),
                              BulkRun.status.in_(("running", "cancelled")))
        .values(status=case((BulkRun.status == "cancelled", "cancelled"), else_="finished"), finished_at=utcnow())
    ))
    if moved:
        _announce_finished(run_id)
    return bool(moved)


def _announce_finished(run_id: int) -> None:
    from flask import url_for

    from app.webhooks import events as webhook_events

    run = required(db.session.get(BulkRun, run_id), f"bulk run {run_id}")
    db.session.refresh(run)
    counts = dict(db.session.execute(select(BulkRow.status, func.count()).where(BulkRow.run_id == run_id)
                                     .group_by(BulkRow.status)).tuples().all())
    try:
        results_path = url_for("bulk.results", run_id=run_id, fmt="csv")
    except RuntimeError:  # no request or app URL context (a worker without SERVER_NAME)
        results_path = f"/bulk/{run_id}/results.csv"
    webhook_events.bulk_run_completed(
        db.session, run.workspace_id, run_id=run_id, status=run.status, rows=run.total_rows,
        succeeded=counts.get("done", 0), failed=counts.get("failed", 0), created_at=run.created_at,
        finished_at=run.finished_at, results_path=results_path)


def maybe_finish(run_id: int) -> bool:
    """Finish the run when none of its rows is pending, queued or running (a paused run waits)."""
    open_rows = db.session.scalar(select(func.count()).select_from(BulkRow).where(
        BulkRow.run_id == run_id, BulkRow.status.in_(("pending",) + IN_FLIGHT)))
    if open_rows:
        return False
    run = required(db.session.get(BulkRun, run_id), f"bulk run {run_id}")
    db.session.refresh(run)
    if run.status == "paused":
        return False
    return finish_run(run_id)


# --- slots and the pump --------------------------------------------------------------------------------

def _ensure_slots(workspace_id: int) -> None:
    if db.session.get(BulkSlots, workspace_id) is None:
        try:
            with db.session.begin_nested():
                db.session.add(BulkSlots(workspace_id=workspace_id, in_flight=0))
        except IntegrityError:
            pass


def release_slot(workspace_id: int) -> None:
    """Give back a slot; called in the transaction of the row's move out of queued/running."""
    db.session.execute(update(BulkSlots).where(BulkSlots.workspace_id == workspace_id, BulkSlots.in_flight > 0)
                       .values(in_flight=BulkSlots.in_flight - 1).execution_options(synchronize_session=False))


def row_job_id(row_id: int, attempt: int) -> str:
    return f"bulk-row-{row_id}-{attempt}"


def pump(workspace_id: int) -> int:
    """Hand pending rows of the workspace's running runs to the bulk queue while it has free slots
    (BULK_CONCURRENCY). Each hand-out is a slot claimed with one conditional UPDATE and the row moved
    pending -> queued, in the caller's transaction; the jobs are enqueued after it commits (outbox)."""
    limit = current_app.config["BULK_CONCURRENCY"]
    _ensure_slots(workspace_id)
    handed = 0
    while True:
        candidate = db.session.execute(
            select(BulkRow.id, BulkRow.attempts).join(BulkRun, BulkRun.id == BulkRow.run_id)
            .where(BulkRun.workspace_id == workspace_id, BulkRun.status == "running", BulkRow.status == "pending")
            .order_by(BulkRun.id, BulkRow.position).limit(1)).first()
        if candidate is None:
            break
        claimed = rowcount(db.session.execute(
            update(BulkSlots).where(BulkSlots.workspace_id == workspace_id, BulkSlots.in_flight < limit)
            .values(in_flight=BulkSlots.in_flight + 1).execution_options(synchronize_session=False)))
        if not claimed:
            break
        row_id, attempt = candidate.id, candidate.attempts + 1
        moved = rowcount(db.session.execute(
            update(BulkRow).where(BulkRow.id == row_id, BulkRow.status == "pending")
            .values(status="queued", attempts=attempt, updated_at=utcnow())
            .execution_options(synchronize_session=False)))
        if not moved:
            release_slot(workspace_id)
            continue
        enqueue_after_commit(db.session, "app.bulk.tasks.run_row", row_id, job_id=row_job_id(row_id, attempt),
                             queue=current_app.config["BULK_QUEUE"])
        handed += 1
    return handed


def move_row(row_id: int, from_states: tuple[str, ...], status: str, note: str | None = None,
             generation_id: int | None = None) -> bool:
    """One conditional UPDATE moves a row; only the winner releases its slot (when it leaves queued/running)."""
    values: dict[str, Any] = {"status": status, "note": note[:1000] if note else None, "updated_at": utcnow()}
    if generation_id is not None:
        values["generation_id"] = generation_id
    row = required(db.session.get(BulkRow, row_id), f"bulk row {row_id}")
    moved = rowcount(db.session.execute(update(BulkRow).where(BulkRow.id == row_id, BulkRow.status.in_(from_states))
                               .values(**values).execution_options(synchronize_session=False)))
    if moved and any(s in IN_FLIGHT for s in from_states) and status not in IN_FLIGHT:
        release_slot(row.workspace_id)
    db.session.expire(row)
    return bool(moved)


# --- progress ------------------------------------------------------------------------------------------

@dataclass
class Progress:
    total: int
    counts: dict[str, int]
    rate: float  # rows per second over the last minute (or since the start)
    eta_seconds: int | None

    @property
    def finished(self) -> int:
        return sum(self.counts.get(s, 0) for s in FINAL)

    @property
    def remaining(self) -> int:
        return self.total - self.finished

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.finished / self.total)


def progress(run: BulkRun) -> Progress:
    counts = dict(db.session.execute(select(BulkRow.status, func.count()).where(BulkRow.run_id == run.id)
                                     .group_by(BulkRow.status)).tuples().all())
    now = utcnow()
    since = max(run.started_at or now, now - timedelta(seconds=60))
    recent = db.session.scalar(select(func.count()).select_from(BulkRow).where(
        BulkRow.run_id == run.id, BulkRow.status.in_(("done", "failed")), BulkRow.updated_at >= since)) or 0
    elapsed = max((now - since).total_seconds(), 1.0)
    rate = recent / elapsed
    total = run.total_rows
    left = total - sum(counts.get(s, 0) for s in FINAL)
    eta = int(left / rate) if rate > 0 and left and run.status == "running" else None
    return Progress(total, counts, rate, eta)


def rows_of(run: BulkRun) -> list[BulkRow]:
    return list(db.session.scalars(select(BulkRow).where(BulkRow.run_id == run.id).order_by(BulkRow.position)))


def in_flight_rows(workspace_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(BulkRow).where(
        BulkRow.workspace_id == workspace_id, BulkRow.status.in_(IN_FLIGHT))) or 0




# --- History: generations grouped by run ---------------------------------------------------------------

def only_run(stmt, run_id: int):
    """Narrow a History query (of Generation) to one run's generations."""
    from app.generation.models import Generation
    return stmt.join(BulkRow, BulkRow.id == Generation.bulk_row_id).where(BulkRow.run_id == run_id)


def runs_of(generations) -> dict[int, tuple[int, int]]:
    """{generation id: (run id, row line)} for the bulk generations among these."""
    row_ids = {g.bulk_row_id for g in generations if getattr(g, "bulk_row_id", None)}
    if not row_ids:
        return {}
    lines = {r.id: (r.run_id, r.line) for r in db.session.execute(
        select(BulkRow.id, BulkRow.run_id, BulkRow.line).where(BulkRow.id.in_(row_ids)))}
    return {g.id: lines[g.bulk_row_id] for g in generations if g.bulk_row_id in lines}
