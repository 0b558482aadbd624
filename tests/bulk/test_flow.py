"""A run end to end through the pages and a real worker: rows become generations, results download."""
from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlalchemy import select

from app.bulk.models import BulkSlots
from app.extensions import db
from app.generation.models import Generation
from tests.bulk.conftest import csv_bytes, product_rows, start, upload, xlsx_bytes, run_counts
from tests.generation.helpers import ledger



def test_a_run_writes_every_row_as_a_generation_and_downloads(app, client, business, run_bulk_worker, fake_llm):
    run_id = start(client, csv_bytes(product_rows(6)))
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"done": 6})
    with app.app_context():
        generations = db.session.scalars(select(Generation).where(Generation.bulk_row_id.is_not(None))).all()
        assert len(generations) == 6 and {g.status for g in generations} == {"succeeded"}
        assert sorted(g.inputs["product"] for g in generations) == sorted(f"Mug {i}" for i in range(1, 7))
        assert db.session.get(BulkSlots, business).in_flight == 0
    assert ledger(app) == (6, 0)
    page = client.get(f"/bulk/{run_id}")
    assert "100%" in page.get_data(as_text=True)
    response = client.get(f"/bulk/{run_id}/results.xlsx")
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:6] == ("Product name", "Features & details", "Target customer", "Status", "Error", "Variant 1")
    assert [r[0] for r in rows[1:]] == [f"Mug {i}" for i in range(1, 7)]
    assert all(r[3] == "Done" and r[5] and r[6] == len(r[5]) and r[7] == "no" for r in rows[1:])
    csv_text = client.get(f"/bulk/{run_id}/results.csv").get_data(as_text=True)
    assert csv_text.startswith("\ufeffProduct name,")


def test_the_same_file_again_skips_rows_already_done(app, client, business, run_bulk_worker):
    data = csv_bytes(product_rows(3))
    start(client, data)
    run_bulk_worker()
    second = start(client, data + b"Mug 4,New one,Tea lovers\r\n")
    run_bulk_worker()
    status, counts = run_counts(app, second)
    assert (status, counts) == ("finished", {"done": 1, "skipped": 3})
    assert ledger(app) == (4, 0)


def test_xlsx_formula_cells_give_their_values(app, client, business, run_bulk_worker):
    data = xlsx_bytes([["Mug", "Size", "All"]], before=[["Catalogue Q3"]])
    response = upload(client, data, "sheet.xlsx")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Catalogue Q3" not in page.split("bulk-sample")[1]  # the title row above the table is skipped
