"""Turn an uploaded file into plain text, or refuse it with a reason a marketer can act on.

The declared type is the file's extension (.md/.markdown, .txt, .pdf, .docx); the content must match it:
a PDF starts with `%PDF-`, a DOCX is a ZIP holding word/document.xml, text is UTF-8 without NUL bytes.
Every refusal is an ExtractionError; nothing is stored by the caller when one is raised.
"""
from __future__ import annotations

import io
import re
import zipfile

EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".pdf": "pdf", ".docx": "docx"}
MAX_PDF_PAGES = 500
MAX_DOCX_UNCOMPRESSED = 50 * 1024 * 1024  # a ZIP bomb is refused before it is inflated
TYPE_NAMES = {"markdown": "Markdown", "text": "plain text", "pdf": "PDF", "docx": "Word (.docx)"}


class ExtractionError(ValueError):
    """An upload that cannot become knowledge: empty, wrong type, encrypted, without text, malformed."""


def declared_type(filename: str) -> str:
    """The type the file claims by its extension, or ExtractionError for anything else."""
    match = re.search(r"\.[A-Za-z]+$", filename or "")
    kind = EXTENSIONS.get(match.group(0).lower()) if match else None
    if kind is None:
        raise ExtractionError("Upload a Markdown (.md), plain text (.txt), PDF (.pdf) or Word (.docx) file.")
    return kind


def extract(data: bytes, filename: str) -> tuple[str, str]:
    """(source type, text) of an upload; ExtractionError if it is empty, not its declared type,
    encrypted, a scan without text, or malformed."""
    kind = declared_type(filename)
    if not data or not data.strip():
        raise ExtractionError("The file is empty.")
    text = {"markdown": _text, "text": _text, "pdf": _pdf, "docx": _docx}[kind](data)
    text = normalise(text)
    if not text:
        if kind == "pdf":
            raise ExtractionError("This PDF has no text we can read: it looks like a scan. "
                                  "Run it through OCR (or export it as text) and upload it again.")
        raise ExtractionError("The file has no text in it.")
    return kind, text


def normalise(text: str) -> str:
    """Unix newlines, no NULs, no trailing spaces, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _not_type(kind: str) -> ExtractionError:
    return ExtractionError(f"This file is not {TYPE_NAMES[kind]}: its content does not match its extension. "
                           "Upload the file in the format its name says, or rename it.")


def _text(data: bytes) -> str:
    if data.startswith(b"%PDF-") or data.startswith(b"PK\x03\x04") or b"\x00" in data:
        raise _not_type("text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExtractionError("The file is not UTF-8 text. Save it as UTF-8 and upload it again.") from None


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if not data.lstrip()[:5] == b"%PDF-":
        raise _not_type("pdf")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractionError("This PDF is password-protected. Remove the password and upload it again.")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise ExtractionError(f"This PDF has more than {MAX_PDF_PAGES} pages. Upload the pages that matter.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except ExtractionError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, OSError) as exc:
        raise ExtractionError("This PDF is damaged and could not be read. Export it again and upload the new file.") \
            from exc
    return "\n\n".join(pages)


def _docx(data: bytes) -> str:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if not data.startswith(b"PK\x03\x04"):
        raise _not_type("docx")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" not in names:
                raise _not_type("docx")
            if sum(info.file_size for info in archive.infolist()) > MAX_DOCX_UNCOMPRESSED:
                raise ExtractionError("This document is too large once unpacked. Upload a smaller one.")
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        for block in document.element.body.iterchildren():
            tag = block.tag.rsplit("}", 1)[-1]
            if tag == "p":
                lines.append(_paragraph(docx.text.paragraph.Paragraph(block, document)))
            elif tag == "tbl":
                table = docx.table.Table(block, document)
                for row in table.rows:
                    cells = [cell.text.strip() for cell in row.cells]
                    lines.append(" | ".join(c for c in cells if c))
                lines.append("")
    except ExtractionError:
        raise
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise ExtractionError("This Word document is damaged and could not be read. "
                              "Save it again as .docx and upload the new file.") from exc
    except Exception as exc:  # lxml's XMLSyntaxError and friends: malformed XML inside the ZIP
        raise ExtractionError("This Word document is damaged and could not be read. "
                              "Save it again as .docx and upload the new file.") from exc
    return "\n".join(lines)


def _paragraph(paragraph) -> str:
    """A paragraph as a line; Word headings become Markdown headings so splitting keeps them."""
    text = paragraph.text.strip()
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    level = re.match(r"Heading (\d)", style)
    if text and (level or style == "Title"):
        return "\n" + "#" * (int(level.group(1)) if level else 1) + " " + text + "\n"
    return text + "\n"
