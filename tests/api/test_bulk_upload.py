"""Bulk runs from an uploaded CSV/XLSX through the API (`POST /api/v1/bulk-runs/upload`): the browser's
reading, mapping, row checks, quota check and start in one multipart request, a real worker writing the
rows; and every refusal a problem+json that writes nothing (no draft run, no remembered mapping)."""
from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from app.bulk import parsing
from app.extensions import db
from tests.api.conftest import bulk_counts
from tests.api.test_bad_input import problem
from tests.bulk.conftest import HEADERS, csv_bytes, product_rows, xlsx_bytes

URL = "/api/v1/bulk-runs/upload"


def upload(api, key, data: bytes | None, filename: str = "products.csv", template: str = "product-description",
           headers: dict | None = None, **fields):
    """POST the multipart form; dicts among `fields` are sent as JSON text, as `-F 'mapping={...}'` does."""
    form: dict = {"template": template}
    form.update({name: json.dumps(value) if isinstance(value, dict) else value for name, value in fields.items()})
    if data is not None:
        form["file"] = (io.BytesIO(data), filename)
    return api.client.post(URL, data=form, content_type="multipart/form-data", headers=api.headers(key, **(headers or {})))


def generations_of(app, run_id: int) -> list:
    from app.bulk.models import BulkRow
    from app.generation.models import Generation
    with app.app_context():
        rows = db.session.execute(select(BulkRow.line, Generation.inputs, Generation.variant_count, Generation.tone)
                                  .join(Generation, Generation.bulk_row_id == BulkRow.id)
                                  .where(BulkRow.run_id == run_id).order_by(BulkRow.position)).all()
        return [tuple(r) for r in rows]


def remembered(app) -> dict | None:
    from app.bulk.models import BulkMapping
    with app.app_context():
        row = db.session.scalars(select(BulkMapping)).first()
        return row.mapping if row else None


def test_csv_upload_with_automatic_mapping_runs_to_completion(api, app, bulk_key, run_bulk_worker):
    response = upload(api, bulk_key, csv_bytes(product_rows(2)))  # "Product name", "Features & details", ...
    assert response.status_code == 202, response.get_json()
    run = response.get_json()
    assert run["status"] == "running" and run["total_rows"] == 2 and run["template"] == "product-description"
    assert response.headers["Location"] == run["links"]["self"]
    run_bulk_worker()
    got = api.get(f"/api/v1/bulk-runs/{run['id']}", key=bulk_key).get_json()
    assert got["status"] == "finished"
    assert got["counts"] == {"done": 2, "failed": 0, "skipped": 0, "remaining": 0}
    written = generations_of(app, run["id"])
    assert [(line, inputs["product"], inputs["audience"]) for line, inputs, _, _ in written] == [
        (2, "Mug 1", "Coffee lovers"), (3, "Mug 2", "Coffee lovers")]
    assert {variants for _, _, variants, _ in written} == {3}  # the template's default, as the browser pre-fills
    download = api.get(f"/api/v1/bulk-runs/{run['id']}/results.csv", key=bulk_key)
    table = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))
    assert table[0][:3] == HEADERS and [r[0] for r in table[1:]] == ["Mug 1", "Mug 2"]
    # Remembered for the template, as the browser's mapping screen does.
    assert remembered(app)["fields"]["product"] == {"column": "Product name", "value": ""}


def test_xlsx_upload_with_explicit_mapping_and_fixed_values(api, app, bulk_key, run_bulk_worker):
    data = xlsx_bytes([["Linen shirt", "Breathable, 12 colours", "friendly"],
                       ["Canvas tote", "Recycled cotton, 15 l", "Bold"]],
                      headers=["Name", "Details", "Voice"], before=[["Spring catalogue"]])
    mapping = {"fields": {"product": {"column": "Name"}, "features": {"column": "Details"},
                          "audience": {"value": "Commuters"}},
               "settings": {"tone": {"column": "Voice"}, "variant_count": {"value": 1}}}
    response = upload(api, bulk_key, data, "catalogue.xlsx", mapping=mapping)
    assert response.status_code == 202, response.get_json()
    run_bulk_worker()
    assert api.get(f"/api/v1/bulk-runs/{response.get_json()['id']}", key=bulk_key).get_json()["counts"]["done"] == 2
    written = generations_of(app, response.get_json()["id"])
    # The title line above the table is skipped: the header is row 2, the rows are 3 and 4.
    assert [(line, inputs["product"], inputs["audience"], variants, tone) for line, inputs, variants, tone in written] \
        == [(3, "Linen shirt", "Commuters", 1, "Friendly"), (4, "Canvas tote", "Commuters", 1, "Bold")]


def test_options_correct_the_detection_and_unnamed_entries_are_matched(api, app, bulk_key):
    data = csv_bytes(product_rows(1), headers=["Product name", "Features & details", "Target customer"],
                     delimiter=";", encoding="cp1252").replace(b"Mug 1", "Mug \u00e9".encode("cp1252"))
    data = b"Export;of;today\r\n" + data
    response = upload(api, bulk_key, data, options={"encoding": "cp1252", "delimiter": ";", "header_row": 2},
                      mapping={"settings": {"variant_count": {"value": "1"}}})
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["total_rows"] == 1
    mapping = remembered(app)
    assert mapping["fields"]["product"]["column"] == "Product name"  # matched by name: not in the given mapping
    assert mapping["settings"]["variant_count"] == {"column": "", "value": "1"}
    from app.bulk.models import BulkRow
    with app.app_context():
        assert db.session.scalars(select(BulkRow.inputs)).one()["product"] == "Mug \u00e9"


def test_the_saved_mapping_is_used_when_none_is_given(api, app, bulk_key):
    data = csv_bytes([["Mug", "Stoneware"]], headers=["Item", "Notes"])
    first = upload(api, bulk_key, data, mapping={"fields": {"product": {"column": "Item"},
                                                            "features": {"column": "Notes"}},
                                                 "settings": {"variant_count": {"value": "1"}}})
    assert first.status_code == 202, first.get_json()
    again = upload(api, bulk_key, csv_bytes([["Jug", "Glass"]], headers=["Item", "Notes"]))
    assert again.status_code == 202, again.get_json()
    from app.bulk.models import BulkRow
    with app.app_context():
        assert sorted(r.inputs["product"] for r in db.session.scalars(select(BulkRow))) == ["Jug", "Mug"]


BAD_REQUESTS = [
    # (name, file bytes or None, filename, extra fields, status, problem type, what the answer must name)
    ("no file", None, "x.csv", {}, 422, "validation-failed", "file"),
    ("file as a text field", None, "x.csv", {"file": "Product name\nMug"}, 422, "validation-failed", "file"),
    ("no template", b"a,b\n1,2\n", "x.csv", {"template": ""}, 422, "validation-failed", "template"),
    ("binary garbage", bytes(range(256)) * 40, "x.csv", {}, 415, "unreadable-file",
     "does not look like a CSV or Excel"),
    ("old .xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 2000, "x.xls", {}, 415, "unreadable-file",
     "password-protected"),
    ("empty file", b"", "x.csv", {}, 415, "unreadable-file", "The file is empty"),
    ("damaged xlsx", b"PK\x03\x04" + b"\x00" * 100, "x.xlsx", {}, 422, "bulk-refused", "damaged"),
    ("header only", csv_bytes([]), "x.csv", {}, 422, "bulk-refused", "no data rows"),
    ("over the row limit", csv_bytes([["a", "b", "c"]] * (parsing.MAX_ROWS + 1)), "x.csv", {}, 422, "bulk-refused",
     "more than 10,000 rows"),
    ("mapping not JSON", csv_bytes(product_rows(1)), "x.csv", {"mapping": "{product: Name"}, 422,
     "validation-failed", "mapping"),
    ("mapping not an object", csv_bytes(product_rows(1)), "x.csv", {"mapping": "[1]"}, 422, "validation-failed",
     "mapping"),
    ("mapping of the wrong shape", csv_bytes(product_rows(1)), "x.csv",
     {"mapping": {"fields": {"product": "Product name"}}}, 422, "validation-failed", "mapping.fields.product"),
    ("mapping of an unknown field", csv_bytes(product_rows(1)), "x.csv",
     {"mapping": {"fields": {"colour": {"column": "Product name"}}}}, 422, "validation-failed",
     "mapping.fields.colour"),
    ("mapping of an unknown setting", csv_bytes(product_rows(1)), "x.csv",
     {"mapping": {"settings": {"model": {"value": "gpt"}}}}, 422, "validation-failed", "mapping.settings"),
    ("mapping to a column not in the file", csv_bytes(product_rows(1)), "x.csv",
     {"mapping": {"fields": {"product": {"column": "Nope"}}}}, 422, "validation-failed",
     "Product name: the column “Nope” is not in this file."),
    ("a column mapped twice", csv_bytes(product_rows(1)), "x.csv",
     {"mapping": {"fields": {"features": {"column": "Product name"}}}}, 422, "validation-failed",
     "mapped to both"),
    ("a required field without a column", csv_bytes([["Mug", "x"]], headers=["Item", "Notes"]), "x.csv", {}, 422,
     "validation-failed", "Product name is required"),
    ("options not JSON", csv_bytes(product_rows(1)), "x.csv", {"options": "delimiter=;"}, 422,
     "validation-failed", "options"),
    ("an unknown encoding", csv_bytes(product_rows(1)), "x.csv", {"options": {"encoding": "latin-9"}}, 422,
     "validation-failed", "options.encoding"),
    ("a header row past the end", csv_bytes(product_rows(1)), "x.csv", {"options": {"header_row": 9}}, 422,
     "bulk-refused", "past the end of the file"),
    ("only_fitting not a boolean", csv_bytes(product_rows(1)), "x.csv", {"only_fitting": "maybe"}, 422,
     "validation-failed", "only_fitting"),
    ("an unknown form field", csv_bytes(product_rows(1)), "x.csv", {"rows": "[]"}, 422, "validation-failed",
     "rows"),
]


@pytest.mark.parametrize("name,data,filename,fields,status,code,named", BAD_REQUESTS,
                         ids=[b[0] for b in BAD_REQUESTS])
def test_a_bad_upload_is_refused_clearly_and_writes_nothing(api, app, bulk_key, name, data, filename, fields,
                                                            status, code, named):
    before = bulk_counts(app)
    document = problem(upload(api, bulk_key, data, filename, headers={"Idempotency-Key": "bad-1"}, **fields),
                       status, code)
    if code == "validation-failed" and " " not in named:  # a form field, named in `errors`
        assert [key for key in document["errors"] if key.startswith(named)], document
    else:  # a message
        assert named in json.dumps(document, ensure_ascii=False), document
    assert bulk_counts(app) == before


def test_invalid_rows_are_422_with_spreadsheet_row_numbers_and_nothing_charged(api, app, bulk_key):
    before = bulk_counts(app)
    data = csv_bytes([["Mug", "Stoneware", "Coffee lovers", "friendly"], ["", "x" * 5000, "Tea lovers", "Bold"],
                      ["Jug", "Glass", "Anyone", "Grumpy"], ["Cup", "Porcelain", "Anyone", "Bold", "extra"]],
                     headers=HEADERS + ["Tone"])
    document = problem(upload(api, bulk_key, data), 422, "validation-failed")
    errors = document["errors"]
    assert set(errors) == {"row 3.product", "row 3.features", "row 4.tone", "row 5"}, errors
    assert "5 values but the file has 4 columns" in errors["row 5"][0]  # ragged, named by its spreadsheet row
    assert "3 row(s) are invalid" in document["detail"]
    assert bulk_counts(app) == before


def test_a_file_over_the_size_limit_is_413_and_nothing_written(api, app, bulk_key):
    before = bulk_counts(app)
    data = csv_bytes([["x" * 1000, "b", "c"]] * 10_500)
    assert parsing.MAX_BYTES < len(data) < app.config["UPLOAD_MAX_BYTES"]
    # The body is built here: the test client would spool a body this large to a file it never closes.
    boundary = "api-upload-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"template\"\r\n\r\nproduct-description\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    response = api.client.post(URL, data=body, content_type=f"multipart/form-data; boundary={boundary}",
                               headers=api.headers(bulk_key))
    assert "10 MB" in problem(response, 413, "body-too-large")["detail"]
    assert bulk_counts(app) == before


def test_quota_short_is_402_with_what_is_left_and_only_fitting_runs_what_fits(api, app, bulk_key):
    before = bulk_counts(app)
    data = csv_bytes(product_rows(5))  # 5 rows x 3 variants = 15 > 10
    document = problem(upload(api, bulk_key, data), 402, "quota-exhausted")
    assert document["remaining"] == 10 and document["renews_at"]
    assert bulk_counts(app) == before
    fitting = upload(api, bulk_key, data, only_fitting="true")
    assert fitting.status_code == 202, fitting.get_json()
    assert fitting.get_json()["total_rows"] == 5 and fitting.get_json()["counts"]["skipped"] == 2


def test_idempotent_upload_replays_and_a_changed_body_is_422(api, app, bulk_key):
    data = csv_bytes(product_rows(1))
    first = upload(api, bulk_key, data, headers={"Idempotency-Key": "sheet-1"})
    again = upload(api, bulk_key, data, headers={"Idempotency-Key": "sheet-1"})
    assert first.status_code == again.status_code == 202, first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert bulk_counts(app)["runs"] == 1
    changed_file = data.replace(b"Mug 1", b"Mug 2")
    for changed in (dict(data=changed_file), dict(data=data, filename="other.csv"),
                    dict(data=data, only_fitting="true"), dict(data=data, mapping={"fields": {}})):
        response = upload(api, bulk_key, headers={"Idempotency-Key": "sheet-1"}, **changed)
        problem(response, 422, "idempotency-key-reused")
    assert bulk_counts(app)["runs"] == 1


def test_scope_plan_and_another_workspaces_template(api, app, team, bulk_key, make_user):
    data = csv_bytes(product_rows(1))
    problem(upload(api, api.key, data), 403, "insufficient-scope")  # generate+read only
    from app.auth.models import User
    from app.catalog import versions
    from app.workspaces.models import Membership
    api.stranger_key(make_user)
    with app.app_context():
        stranger = db.session.scalars(select(User).where(User.email == "stranger@example.com")).one()
        workspace_id = db.session.scalar(select(Membership.workspace_id).where(Membership.user_id == stranger.id))
        versions.create_template({
            "slug": "their-ads", "name": "Their ads", "category": "Ads", "description": "Not yours",
            "fields": [{"name": "topic", "label": "Topic", "type": "text", "required": True}],
            "output": {"variants": 1, "max_chars": 200, "format": "single"},
            "system_prompt": "You write ads.", "user_prompt": "Topic: {{ topic }}"},
            author=stranger, workspace_id=workspace_id, publish_now=True)
        db.session.commit()
    before = bulk_counts(app)
    document = problem(upload(api, bulk_key, csv_bytes([["Spring"]], headers=["topic"]), template="their-ads"),
                       404, "not-found")
    assert document["errors"] == {"template": ["Unknown template."]}
    assert bulk_counts(app) == before
    from app.workspaces import services as teams
    with app.app_context():
        teams.set_seats(team.workspace_id, 5, generations_per_seat=10, plan="pro")
        db.session.commit()
    problem(upload(api, bulk_key, data), 403, "plan-required")
    assert bulk_counts(app) == before
