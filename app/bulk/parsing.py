"""Reading an uploaded sheet: CSV (any of the encodings and separators spreadsheet programs write) or XLSX.

What is detected, and shown so the user can correct it: the encoding (UTF-8 with or without BOM, UTF-16
as Excel's "Unicode text" writes it, else Windows-1252), the separator (comma, semicolon, tab; csv.Sniffer,
then counting), and the header row (the first of the leading rows that is as wide as the table).
XLSX is read with openpyxl in read-only mode with `data_only=True`: a formula cell gives its saved value,
never the formula. Everything is bounded: bytes, rows, columns, cell length, and an XLSX's unpacked size.
Every refusal is a `SheetError` whose message a marketer can act on.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 10_000
MAX_COLUMNS = 100
MAX_CELL_CHARS = 10_000
MAX_UNPACKED_BYTES = 200 * 1024 * 1024  # an XLSX is a zip: refuse a small file that unpacks huge
HEADER_SCAN_ROWS = 10

ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16": "UTF-16 (Excel Unicode text)",
             "cp1252": "Windows-1252 (Western European)"}
DELIMITERS = {",": "Comma", ";": "Semicolon", "\t": "Tab"}


class SheetError(ValueError):
    """A file we cannot use; the message says why and what to do."""


@dataclass
class Options:
    kind: str  # csv | xlsx
    encoding: str | None = None
    delimiter: str | None = None
    header_row: int = 0  # 1-based line of the file; 0: detect

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "encoding": self.encoding, "delimiter": self.delimiter,
                "header_row": self.header_row}


@dataclass
class Sheet:
    options: Options
    headers: list[str]
    rows: list[list[str]]  # data rows, each as wide as the headers when it was not ragged
    lines: list[int]  # the spreadsheet's row number of each data row
    ragged: dict[int, int] = field(default_factory=dict)  # data row index -> its cell count, when too wide
    notes: list[str] = field(default_factory=list)


def sniff_kind(data: bytes) -> str:
    """xlsx, csv, or a SheetError for what we cannot read."""
    if not data or not data.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise SheetError("The file is empty. Export your sheet again with its header row and at least one row.")
    if len(data) > MAX_BYTES:
        raise SheetError(f"The file is {len(data) / 1024 / 1024:.1f} MB; the limit is {MAX_BYTES // 1024 // 1024} MB. "
                         "Split it into smaller files.")
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise SheetError("This spreadsheet is password-protected (or an old .xls file), so it cannot be read. "
                         "Remove the password, or save it as .xlsx or CSV, and upload it again.")
    head = data[:8192]
    if not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and _looks_binary(head):
        raise SheetError("This does not look like a CSV or Excel (.xlsx) file. Save your sheet as CSV or .xlsx "
                         "and upload that.")
    return "csv"


def _looks_binary(head: bytes) -> bool:
    if _utf16_without_bom(head):
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > len(head) // 20


def _utf16_without_bom(head: bytes) -> str | None:
    if len(head) >= 4 and head[1::2].count(0) > len(head) // 4 and head[0::2].count(0) == 0:
        return "utf-16-le"
    if len(head) >= 4 and head[0::2].count(0) > len(head) // 4 and head[1::2].count(0) == 0:
        return "utf-16-be"
    return None


def detect_encoding(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_without_bom(data[:8192]):
        return "utf-16"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def decode(data: bytes, encoding: str) -> str:
    if encoding == "utf-16" and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = _utf16_without_bom(data[:8192]) or "utf-16-le"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        name = ENCODINGS.get(encoding, encoding)
        raise SheetError(f"The file is not valid {name} (byte {exc.start + 1}). Pick another encoding above.") from None
    except LookupError:
        raise SheetError("Unknown encoding; pick one from the list.") from None
    return text.lstrip("\ufeff")


def detect_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        first = next((line for line in text.splitlines() if line.strip()), "")
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.__getitem__)
        return best if counts[best] else ","


def cell_text(value: Any) -> str:
    """A cell as the text a field receives: 12.0 -> "12", dates as ISO, booleans as TRUE/FALSE."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value).strip()


def _trim(rows: list[list[str]]) -> list[list[str]]:
    """Drop trailing empty cells of each row and trailing empty rows."""
    out = []
    for row in rows:
        while row and row[-1] == "":
            row = row[:-1]
        out.append(row)
    while out and not out[-1]:
        out.pop()
    return out


def _read_csv(data: bytes, options: Options) -> tuple[list[list[str]], list[str]]:
    options.encoding = options.encoding or detect_encoding(data)
    text = decode(data, options.encoding)
    options.delimiter = options.delimiter or detect_delimiter(text)
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=options.delimiter)
    try:
        for row in reader:
            if len(rows) > MAX_ROWS + HEADER_SCAN_ROWS:
                break
            if len(row) > MAX_COLUMNS and any(c.strip() for c in row[MAX_COLUMNS:]):
                raise SheetError(f"Row {reader.line_num} has more than {MAX_COLUMNS} columns; "
                                 f"the limit is {MAX_COLUMNS}.")
            rows.append([c.strip() for c in row[:MAX_COLUMNS + 1]])
    except csv.Error as exc:
        raise SheetError(f"The CSV could not be read near row {reader.line_num}: {exc}. "
                         "Check for an unclosed quote.") from None
    return rows, []


def _merged_ranges(data: bytes) -> list[str]:
    """Merged-cell ranges of the workbook's sheets (read-only openpyxl does not expose them)."""
    ranges = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/sheet") and name.endswith(".xml"):
                with archive.open(name) as handle:
                    chunk = handle.read(MAX_UNPACKED_BYTES)
                ranges += [m.decode() for m in re.findall(rb'<mergeCell ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"', chunk)]
    return ranges


def _read_xlsx(data: bytes, options: Options) -> tuple[list[list[str]], list[str]]:
    import openpyxl
    from openpyxl.utils.cell import range_boundaries

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        raise SheetError("This .xlsx file is damaged and cannot be opened. Save it again from your "
                         "spreadsheet program, or export it as CSV.") from None
    if "EncryptedPackage" in names or "xl/workbook.xml" not in names:
        raise SheetError("This file is not an Excel workbook we can read (password-protected, or another "
                         "format). Save it as .xlsx without a password, or as CSV.")
    if unpacked > MAX_UNPACKED_BYTES:
        raise SheetError("This workbook unpacks to more than 200 MB. Remove other sheets or images, or export "
                         "the sheet as CSV.")
    notes: list[str] = []
    try:
        values_book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formula_book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise SheetError(f"This .xlsx file could not be read ({type(exc).__name__}). Save it again from your "
                         "spreadsheet program, or export it as CSV.") from None
    try:
        sheet, formulas = values_book.active, formula_book.active
        if len(values_book.sheetnames) > 1:
            notes.append(f"The workbook has {len(values_book.sheetnames)} sheets; the first one, "
                         f"“{sheet.title}”, is used.")
        rows: list[list[str]] = []
        formula_cells = 0
        missing_values: list[str] = []
        pairs = zip(sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True),
                    formulas.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True), strict=False)
        for line, (values, sources) in enumerate(pairs, start=1):
            if len(rows) > MAX_ROWS + HEADER_SCAN_ROWS:
                break
            if len(values) > MAX_COLUMNS and values[MAX_COLUMNS] not in (None, ""):
                raise SheetError(f"Row {line} has more than {MAX_COLUMNS} columns; the limit is {MAX_COLUMNS}.")
            for col, (value, source) in enumerate(zip(values, sources, strict=False)):
                if isinstance(source, str) and source.startswith("="):
                    formula_cells += 1
                    if value is None and len(missing_values) < 5:
                        missing_values.append(f"{_column_letter(col)}{line}")
            rows.append([cell_text(v) for v in values])
    finally:
        values_book.close()
        formula_book.close()
    if missing_values:
        raise SheetError(f"Cells {', '.join(missing_values)} hold formulas whose results were never saved "
                         "(the file was made by a program, not a spreadsheet). Open it in your spreadsheet "
                         "program and save it, or paste the values, then upload again.")
    if formula_cells:
        notes.append(f"{formula_cells} formula cell{'s' if formula_cells != 1 else ''}: their values are used, "
                     "not the formulas.")
    merged = _merged_ranges(data)
    if merged:
        for ref in merged:
            min_col, min_row, max_col, max_row = range_boundaries(ref)
            if min_row - 1 >= len(rows):
                continue
            top = rows[min_row - 1]
            value = top[min_col - 1] if min_col - 1 < len(top) else ""
            for r in range(min_row - 1, min(max_row, len(rows))):
                for c in range(min_col - 1, max_col):
                    while len(rows[r]) <= c:
                        rows[r].append("")
                    rows[r][c] = value
        notes.append(f"{len(merged)} merged cell range{'s' if len(merged) != 1 else ''} "
                     f"({', '.join(merged[:3])}{'…' if len(merged) > 3 else ''}): each cell takes the merged value.")
    return rows, notes


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter
    return get_column_letter(index + 1)


def detect_header_row(rows: list[list[str]]) -> int:
    """The first of the leading rows filled (non-empty cells) more than half as wide as the widest: a title
    line above the table is skipped, a header with one blank name is not."""
    scan = rows[:HEADER_SCAN_ROWS]
    widths = [sum(1 for c in row if c) for row in scan]
    widest = max(widths, default=0)
    for index, width in enumerate(widths):
        if width and width * 2 > widest:
            return index + 1
    return 1


def read(data: bytes, options: Options | None = None) -> Sheet:
    """Read the file with these options (None: detect all), or raise SheetError."""
    kind = sniff_kind(data)
    options = options or Options(kind)
    options.kind = kind
    if kind == "xlsx":
        options.encoding = options.delimiter = None
        rows, notes = _read_xlsx(data, options)
    else:
        rows, notes = _read_csv(data, options)
    rows = _trim(rows)
    if not rows:
        raise SheetError("The file is empty. Export your sheet again with its header row and at least one row.")
    if not options.header_row:
        options.header_row = detect_header_row(rows)
    if options.header_row > len(rows):
        raise SheetError(f"The header row {options.header_row} is past the end of the file "
                         f"({len(rows)} rows). Pick another header row.")
    headers = rows[options.header_row - 1]
    body = rows[options.header_row:]
    lines = list(range(options.header_row + 1, len(rows) + 1))
    kept = [(line, row) for line, row in zip(lines, body, strict=False) if any(row)]
    if not kept:
        raise SheetError("The file has a header row but no data rows. Add the rows to write copy for.")
    if len(kept) > MAX_ROWS:
        raise SheetError(f"The file has more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,} per run. "
                         "Split it into smaller files.")
    width = max(len(headers), 1)
    data_width = max(len(row) for _, row in kept)
    for index in range(max(width, data_width)):
        name = headers[index] if index < len(headers) else ""
        if not name and index < width:
            raise SheetError(f"Column {_column_letter(index)} has no name in the header row "
                             f"(row {options.header_row}). Name every column, or pick another header row.")
    seen: dict[str, int] = {}
    for index, name in enumerate(headers):
        key = name.casefold()
        if key in seen:
            raise SheetError(f"Columns {_column_letter(seen[key])} and {_column_letter(index)} are both named "
                             f"“{name}”. Rename one of them in your file and upload it again.")
        seen[key] = index
        if len(name) > 200:
            raise SheetError(f"The name of column {_column_letter(index)} is over 200 characters. "
                             "Is the header row right?")
    ragged = {}
    rows_out = []
    for position, (_line, row) in enumerate(kept):
        if len(row) > width:
            ragged[position] = len(row)
        cells = [c[:MAX_CELL_CHARS + 1] for c in row[:width]] + [""] * (width - len(row))
        rows_out.append(cells)
    notes = list(notes)
    if width == 1:
        notes.append("Only one column was found. If your file has more, pick the separator it uses "
                     "(comma, semicolon or tab) above.")
    if ragged:
        notes.append(f"{len(ragged)} row{'s have' if len(ragged) != 1 else ' has'} more values than there are "
                     "columns (often a separator inside a value that is not quoted); "
                     f"{'they are' if len(ragged) != 1 else 'it is'} listed as errors.")
    return Sheet(options, headers, rows_out, [line for line, _ in kept], ragged, notes)
