"""Every kind of bad file gets a clear message, a 422, and nothing is written or charged."""
from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from app.bulk import parsing
from app.bulk.models import BulkRow, BulkRun
from app.extensions import db
from app.quota.models import QuotaCharge
from tests.bulk.conftest import HEADERS, csv_bytes, mapping_form, product_rows, upload, xlsx_bytes


def _book(build) -> bytes:
    book = Workbook()
    build(book.active)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _nothing_written(app):
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BulkRun)) == 0
        assert db.session.scalar(select(func.count()).select_from(BulkRow)) == 0
        assert db.session.scalar(select(func.count()).select_from(QuotaCharge)) == 0


def _formula_without_saved_value(sheet):
    sheet.append(HEADERS)
    sheet.append(["Mug", "=SUM(1,2)", "x"])


BAD_FILES = [
    ("empty", b"", "products.csv", "The file is empty"),
    ("blank lines", b"\r\n\r\n  \r\n", "products.csv", "The file is empty"),
    ("binary", bytes(range(256)) * 40, "products.csv", "does not look like a CSV or Excel"),
    ("password-protected xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 2000, "products.xlsx",
     "password-protected"),
    ("damaged xlsx", b"PK\x03\x04" + b"\x00" * 100, "products.xlsx", "damaged"),
    ("header only", csv_bytes([]), "products.csv", "no data rows"),
    ("over the row limit", csv_bytes([["a", "b", "c"]] * (parsing.MAX_ROWS + 1)), "products.csv",
     "more than 10,000 rows"),
    ("duplicate headers", csv_bytes([["a", "b", "c"]], headers=["Name", "Features", "name"]), "products.csv",
     "Columns A and C are both named “name”"),
    ("empty header", csv_bytes([["a", "b", "c"]], headers=["Name", "", "Audience"]), "products.csv",
     "Column B has no name"),
    ("formula with no saved value", _book(_formula_without_saved_value), "products.xlsx",
     "hold formulas whose results were never saved"),
]


@pytest.mark.parametrize("name,data,filename,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_refused_with_a_clear_message(app, client, business, name, data, filename, message):
    response = upload(client, data, filename)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    _nothing_written(app)


def test_an_encrypted_ooxml_package_is_refused(app, client, business):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("EncryptedPackage", b"x" * 100)
        archive.writestr("EncryptionInfo", b"x" * 100)
    response = upload(client, buffer.getvalue(), "secret.xlsx")
    assert response.status_code == 422 and "password-protected" in response.get_data(as_text=True)


def test_a_file_over_the_size_limit_is_refused(app, client, business):
    data = csv_bytes([["x" * 1000, "b", "c"]] * 10_500)
    assert len(data) > parsing.MAX_BYTES
    # The multipart body is built here: the test client would spool a body this large to a temporary file
    # that it never closes.
    boundary = "bulk-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    response = client.post("/bulk/new/product-description", data=body,
                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 422
    assert "the limit is 10 MB" in response.get_data(as_text=True)
    _nothing_written(app)


def test_xlsx_formula_cells_give_their_saved_values_and_merged_cells_fill_their_range():
    def build(sheet):
        sheet.append(HEADERS)
        sheet.append(["Mug", "=CONCAT(\"a\",\"b\")", "Coffee lovers"])
        sheet.append(["Cup", "Glazed", None])
        sheet.merge_cells("C2:C3")
    data = _book(build)
    # openpyxl writes no cached values; give the formula cell the value a spreadsheet program would have saved.
    data = _with_cached_value(data, "B2", "ab")
    sheet = parsing.read(data)
    assert sheet.rows == [["Mug", "ab", "Coffee lovers"], ["Cup", "Glazed", "Coffee lovers"]]
    assert any("formula" in n for n in sheet.notes) and any("merged" in n for n in sheet.notes)


def _with_cached_value(data: bytes, ref: str, value: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = body.decode()
                start = text.index(f'<c r="{ref}"')
                end = text.index("</c>", start) + 4
                cell = text[start:end]
                fixed = cell.replace("<v></v>", "").replace("</f>", f"</f><v>{value}</v>").replace('t="', 't0="')
                fixed = fixed.replace("<c ", '<c t="str" ', 1)
                text = text[:start] + fixed + text[end:]
                body = text.encode()
            target.writestr(item, body)
    return out.getvalue()


def test_ragged_rows_and_a_single_column_are_explained(app, client, business):
    data = b"Product name,Features & details,Target customer\r\nMug,Big,Fans\r\nCup,Small,Fans,extra,more\r\n"
    sheet = parsing.read(data)
    assert sheet.ragged == {1: 5} and any("more values than there are columns" in n for n in sheet.notes)
    single = parsing.read(b"Product name|Features\r\nMug|Big\r\n")
    assert single.headers == ["Product name|Features"]
    assert any("Only one column was found" in n for n in single.notes)
    response = upload(client, data)
    run_id = int(response.headers["Location"].split("/")[2])
    client.post(f"/bulk/{run_id}/map", data=mapping_form(
        {"product": "Product name", "features": "Features & details", "audience": "Target customer"}))
    page = client.get(f"/bulk/{run_id}/check").get_data(as_text=True)
    assert "This row has 5 values but the file has 3 columns" in page


def test_a_column_mapped_twice_is_refused(app, client, business):
    response = upload(client, csv_bytes(product_rows(2)))
    run_id = int(response.headers["Location"].split("/")[2])
    response = client.post(f"/bulk/{run_id}/map", data=mapping_form(
        {"product": "Product name", "features": "Product name", "audience": ""}))
    assert response.status_code == 422
    assert "The column “Product name” is mapped to both Product name and Features and details" in \
        response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(BulkRun, run_id).mapping is None


def test_a_required_field_without_column_or_value_is_refused(app, client, business):
    response = upload(client, csv_bytes(product_rows(2)))
    run_id = int(response.headers["Location"].split("/")[2])
    response = client.post(f"/bulk/{run_id}/map", data=mapping_form({"product": "Product name"}))
    assert response.status_code == 422
    assert "Features and details is required: pick its column" in response.get_data(as_text=True)


@pytest.mark.parametrize("encoding,delimiter", [("utf-8", ","), ("utf-8-sig", ";"), ("utf-16", "\t"),
                                                ("cp1252", ";")])
def test_encodings_and_separators_are_detected(encoding, delimiter):
    rows = [["Crème brûlée mug", "Café – 350 ml", "Gourmets"]]
    sheet = parsing.read(csv_bytes(rows, delimiter=delimiter, encoding=encoding))
    assert sheet.options.encoding == encoding and sheet.options.delimiter == delimiter
    assert sheet.headers == HEADERS and sheet.rows == rows


def test_a_wrong_guess_can_be_corrected_on_the_mapping_page(app, client, business):
    data = csv_bytes(product_rows(2), delimiter=";", encoding="cp1252")
    response = upload(client, data)
    run_id = int(response.headers["Location"].split("/")[2])
    response = client.post(f"/bulk/{run_id}/map", data={"action": "options", "encoding": "utf-8",
                                                         "delimiter": "comma", "header_row": "1"})
    assert response.status_code == 200
    with app.app_context():
        run = db.session.get(BulkRun, run_id)
        assert run.options["delimiter"] == "," and run.columns == ["Product name;Features & details;Target customer"]
    response = client.post(f"/bulk/{run_id}/map", data={"action": "options", "encoding": "cp1252",
                                                         "delimiter": "semicolon", "header_row": "1"})
    with app.app_context():
        assert db.session.get(BulkRun, run_id).columns == HEADERS


def test_xlsx_upload_reads_values(client, business):
    response = upload(client, xlsx_bytes(product_rows(2)), "p.xlsx")
    assert response.status_code == 302
