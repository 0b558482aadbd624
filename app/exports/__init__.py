"""Exports: a result, or a selection of History, as CSV, DOCX or Markdown."""
