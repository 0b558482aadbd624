"""Bounds on request input, so that bad input is a clear 4xx and never a database error (500).

- Ids in URLs: the `int` converter is replaced by one that only matches what fits the
  database's INTEGER columns, so `/generations/<10^20>` is a plain 404 instead of a
  DataError (PostgreSQL) or OverflowError (SQLite).
- Numbers in query strings and forms: `whole_number` accepts ASCII digits only, with an
  optional sign, within the same range (Python's `int()` would take "٣" or "²" and a
  5,000-digit number fails deep inside it).
- NUL bytes: PostgreSQL refuses them in text, so a request carrying one in its path, query
  string or form fields is answered 400 before any view runs.
"""
from __future__ import annotations

import re
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter
from wtforms import IntegerField

# PostgreSQL's INTEGER (and SQLite's ids fit it too): every id column in the schema is one.
DB_INT_MAX = 2**31 - 1
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,10}")


def whole_number(value: Any) -> int:
    """Parse a whole number written with ASCII digits that fits a database INTEGER.

    Raises ValueError otherwise, which is what `request.args.get(..., type=...)` and
    WTForms expect from a converter.
    """
    text = str(value).strip()
    if not _WHOLE_NUMBER.fullmatch(text):
        raise ValueError("not a whole number")
    number = int(text)
    if not -DB_INT_MAX <= number <= DB_INT_MAX:
        raise ValueError("number out of range")
    return number


def escape_like(value: str) -> str:
    """Typed text taken literally in a LIKE pattern: its wildcards (% and _) and the escape
    character itself are escaped. Use with `.like(pattern, escape="\\")`."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def page_arg(name: str = "page") -> int:
    """A 1-based page number from the query string; anything unusable is page 1."""
    page = request.args.get(name, 1, type=whole_number)
    return max(page, 1)


class WholeNumberField(IntegerField):
    """IntegerField that accepts only ASCII digits within the database INTEGER range."""

    def process_formdata(self, valuelist):
        if not valuelist or valuelist[0] in ("", None):
            return
        try:
            self.data = whole_number(valuelist[0])
        except ValueError as exc:
            self.data = None
            raise ValueError(self.gettext("Enter a whole number written with the digits 0-9 "
                                          f"(at most {DB_INT_MAX:,}).")) from exc


class IdConverter(IntegerConverter):
    """The `int` URL converter, limited to ids a database INTEGER can hold."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = None,  # noqa: A002
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=DB_INT_MAX if max is None else max,
                         signed=signed)


class NulByteRejected(BadRequest):
    """A 400 whose message the error page shows as is."""

    description = ("Your request contained a NUL character, which text cannot hold. "
                   "Remove it and try again; nothing was saved.")


def _has_nul(values) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in values)


def reject_nul_bytes():
    """400 for a NUL byte anywhere the app reads text from: path, query string, form fields."""
    if "\x00" in request.path or _has_nul(request.args.items(multi=True)):
        raise NulByteRejected()
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") and (
            _has_nul(request.form.items(multi=True))
            or any("\x00" in (f.filename or "") for f in request.files.values())):
        raise NulByteRejected()


def install_converters(app: Flask) -> None:
    """Before any blueprint is registered: every `<int:...>` in the app becomes bounded."""
    app.url_map.converters["int"] = IdConverter


def init_app(app: Flask) -> None:
    app.before_request(reject_nul_bytes)
