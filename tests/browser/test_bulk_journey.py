"""A bulk run in the browser: a real XLSX (made here with openpyxl) and CSVs in the encodings spreadsheet
programs write, mapped, checked, run by the real workers, watched to 100%, downloaded and read cell by cell."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import Workbook, load_workbook
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.workspaces.models import Membership
from tests.browser.test_journey import sign_up

pytestmark = pytest.mark.browser

ROWS = [["Juniper mug", "Stoneware, 350 ml, sage glaze", "Coffee lovers"],
        ["Crème brûlée dish", "Porcelain, oven safe", "Home bakers"],
        ["Café tumbler", "=SUM(1,2) is text here", "Commuters"]]


def _business(app, address: str) -> None:
    from app.auth.models import User
    from app.workspaces import services as teams

    with app.app_context():
        user_id = db.session.scalars(select(User.id).where(User.email == address)).one()
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).one()
        teams.set_seats(workspace_id, 1, generations_per_seat=100, plan="business")
        db.session.commit()
        db.session.remove()


def _xlsx() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["Spring catalogue"])  # a title row above the table
    sheet.append(["Product", "Features", "Audience"])
    for row in ROWS:
        sheet.append(row)
    sheet["B5"].data_type = "s"  # text that starts with "=", as a spreadsheet stores a typed '=... cell
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _csv(encoding: str, delimiter: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["Product name", "Features & details", "Target customer"])
    writer.writerows(ROWS)
    return buffer.getvalue().encode(encoding)


def _run_to_the_end(page: Page, name: str, data: bytes, mime: str, expect_encoding: str | None = None,
                    done_before: bool = False) -> None:
    page.goto("/write/product-description")
    page.click("[data-testid=bulk-run-link]")
    page.set_input_files("input[type=file]", files=[{"name": name, "mimeType": mime, "buffer": data}])
    page.click("[data-testid=bulk-upload]")
    expect(page.locator("h1")).to_have_text("Map your columns")
    if expect_encoding:
        expect(page.locator("#encoding")).to_have_value(expect_encoding)
    sample = page.locator("[data-testid=bulk-sample]")
    expect(sample).to_contain_text("Crème brûlée dish")
    expect(sample).not_to_contain_text("Spring catalogue")
    page.select_option("select[name=setting_variant_count_value]", "1")
    page.click("[data-testid=bulk-map-next]")
    expect(page.locator("h1")).to_have_text("Check before you run")
    if done_before:  # the same rows with the same template version: skipped unless asked for again
        expect(page.locator("[data-testid=bulk-runnable]")).to_have_text("0")
        page.click("[data-testid=bulk-redo]")
    expect(page.locator("[data-testid=bulk-runnable]")).to_have_text("3")
    expect(page.locator("[data-testid=bulk-cost]")).to_have_text("3 generations")
    expect(page.locator("[data-testid=bulk-previews]")).to_contain_text("Product: Juniper mug")
    page.click("[data-testid=bulk-run]")
    expect(page.locator("[data-testid=bulk-percent]")).to_have_text("100%", timeout=60_000)
    expect(page.locator("[data-testid=bulk-status]")).to_have_text("Finished")
    expect(page.locator("[data-testid=bulk-done]")).to_have_text("3")


def test_xlsx_and_csv_in_to_a_sheet_of_copy_out(page: Page, app, worker_process, fake_llm):
    fake_llm.tokens = 12
    sign_up(page, "marketer@example.com")
    _business(app, "marketer@example.com")

    _run_to_the_end(page, "catalogue.xlsx", _xlsx(),
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    with page.expect_download() as download:
        page.click("[data-testid=bulk-download-xlsx]")
    assert download.value.suggested_filename == "catalogue-copy.xlsx"
    sheet = load_workbook(io.BytesIO(download.value.path().read_bytes())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Product", "Features", "Audience", "Status", "Error", "Variant 1",
                       "Variant 1 characters", "Variant 1 over limit")
    assert [list(r[:3]) for r in rows[1:]] == ROWS
    for row in rows[1:]:
        assert row[3] == "Done" and row[4] in (None, "")
        assert row[5] and row[6] == len(row[5]) and row[7] == "no"
    assert sheet.cell(row=4, column=2).data_type == "s"  # "=SUM(...)" came back as text, not a formula
    assert sheet.cell(row=4, column=2).value == "=SUM(1,2) is text here"

    # The same sheet from Windows: semicolons in Windows-1252; the mapping saved for the template is offered.
    _run_to_the_end(page, "catalogue-win.csv", _csv("cp1252", ";"), "text/csv", expect_encoding="cp1252",
                    done_before=True)
    with page.expect_download() as download:
        page.click("[data-testid=bulk-download-csv]")
    text = download.value.path().read_text(encoding="utf-8-sig")
    cells = list(csv.reader(io.StringIO(text)))
    assert cells[0][:4] == ["Product name", "Features & details", "Target customer", "Status"]
    assert cells[2][:3] == ROWS[1] and cells[3][1] == "'=SUM(1,2) is text here"  # made safe for spreadsheets
    assert all(c[3] == "Done" and c[5] and int(c[6]) == len(c[5]) for c in cells[1:])

    # Excel's "Unicode text": UTF-16 with tabs.
    _run_to_the_end(page, "catalogue.txt", _csv("utf-16", "\t"), "text/plain", expect_encoding="utf-16",
                    done_before=True)

    page.goto("/bulk")
    expect(page.locator("[data-testid=bulk-runs] tbody tr")).to_have_count(3)
    page.click("[data-testid=bulk-runs] tbody tr >> nth=0 >> a")
    page.click("text=See its generations in History")
    expect(page.locator("[data-testid=bulk-badge]")).to_have_count(3)
