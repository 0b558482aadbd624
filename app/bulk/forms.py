"""Bulk run forms: the upload, and CSRF for the pages whose inputs are built from the file and template."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class UploadForm(FlaskForm):
    file = FileField("Spreadsheet (CSV or Excel .xlsx)", validators=[FileRequired(message="Choose a file to upload.")])


class ActionForm(FlaskForm):
    """CSRF only: the mapping and check pages read their dynamic inputs from request.form, bounded there."""
