"""Exports: a result and a History selection as CSV, DOCX and Markdown, safe to open, tenant-scoped."""
from __future__ import annotations

import csv
import io

from docx import Document
from sqlalchemy import select

from app.exports.services import csv_cell, md_escape
from app.extensions import db
from app.generation.models import Variant
from tests.generation.helpers import submit

FORMULA = '=HYPERLINK("http://evil.example","click")'


def _set_texts(app, generation_id: int, texts: list[str]) -> None:
    with app.app_context():
        variants = db.session.scalars(select(Variant).where(Variant.generation_id == generation_id)
                                      .order_by(Variant.position)).all()
        for variant, text in zip(variants, texts, strict=False):
            variant.text = text
        db.session.commit()


def test_csv_cells_that_a_spreadsheet_would_run_are_made_text():
    for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(dangerous) == "'" + dangerous
    assert csv_cell("Plain copy, = inside") == "Plain copy, = inside"


def test_markdown_shows_model_markup_as_text():
    assert md_escape("**BREWING:** <b>x</b>") == r"\*\*BREWING:\*\* \<b\>x\</b\>"
    assert md_escape("- a list\n1. item") == "\\- a list  \n1\\. item"


def test_a_result_exports_in_three_formats(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", 2)
    run_worker()
    _set_texts(app, generation_id, [FORMULA, "Second **bold** line"])

    response = client.get(f"/generations/{generation_id}/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r["text"] for r in rows] == ["'" + FORMULA, "Second **bold** line"]
    assert rows[0]["template"] == "X (Twitter) post" and rows[0]["variant"] == "1"

    markdown = client.get(f"/generations/{generation_id}/export.md").get_data(as_text=True)
    assert "# X \\(Twitter\\) post" in markdown or "# X (Twitter) post" in markdown
    assert "## Variant 2" in markdown and r"Second \*\*bold\*\* line" in markdown

    docx = client.get(f"/generations/{generation_id}/export.docx")
    assert docx.status_code == 200
    paragraphs = [p.text for p in Document(io.BytesIO(docx.data)).paragraphs]
    assert FORMULA in paragraphs and "Second **bold** line" in paragraphs and "Variant 1" in paragraphs

    assert client.get(f"/generations/{generation_id}/export.pdf").status_code == 302  # back, with a message


def test_history_selection_exports_only_this_workspaces_results(app, client, login, run_worker):
    login("first@example.com")
    mine = [submit(client, app, "x-post", 1), submit(client, app, "x-post", 1)]
    run_worker()
    _set_texts(app, mine[0], ["First result"])
    _set_texts(app, mine[1], ["Second result"])
    other = app.test_client()
    login("second@example.com", as_client=other)
    theirs = submit(other, app, "x-post", 1)
    run_worker()
    _set_texts(app, theirs, ["Not yours"])

    query = "&".join(f"ids={i}" for i in (*mine, theirs))
    text = client.get(f"/history/export?format=md&{query}").get_data(as_text=True)
    assert "First result" in text and "Second result" in text and "Not yours" not in text

    # Only another workspace's id: nothing to export, a message instead of a file.
    refused = client.get(f"/history/export?format=csv&ids={theirs}", follow_redirects=True)
    assert "None of the selected results" in refused.get_data(as_text=True)
    nothing = client.get("/history/export?format=csv", follow_redirects=True)
    assert "Select at least one result" in nothing.get_data(as_text=True)
    too_many = client.get("/history/export?format=csv&" + "&".join(f"ids={i}" for i in range(1, 103)),
                          follow_redirects=True)
    assert "at most 100" in too_many.get_data(as_text=True)


def test_result_page_offers_copy_all_and_exports(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", 2)
    run_worker()
    page = client.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert 'data-action="copy-all"' in page
    for fmt in ("csv", "docx", "md"):
        assert f"/generations/{generation_id}/export.{fmt}" in page
