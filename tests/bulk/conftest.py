"""Bulk run fixtures: a Business workspace, sheets made in the test, and a real RQ worker on both queues."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from app.extensions import db
from app.workspaces.models import Membership

HEADERS = ["Product name", "Features & details", "Target customer"]


def product_rows(n: int) -> list[list[str]]:
    return [[f"Mug {i}", f"Stoneware, {i} ml, dishwasher safe", "Coffee lovers"] for i in range(1, n + 1)]


def csv_bytes(rows: list[list[str]], headers=HEADERS, delimiter: str = ",", encoding: str = "utf-8") -> bytes:
    import csv
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list], headers=HEADERS, before=None) -> bytes:
    from openpyxl import Workbook
    book = Workbook()
    sheet = book.active
    for line in before or []:
        sheet.append(line)
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def business(app, client, login):
    """A logged-in owner of a Business workspace with 100 generations; returns the workspace id."""
    from app.workspaces import services as teams

    user_id = login("owner@example.com")
    with app.app_context():
        workspace_id = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == user_id)).one()
        teams.set_seats(workspace_id, 1, generations_per_seat=100, plan="business")
        db.session.commit()
        db.session.remove()
    return workspace_id


@pytest.fixture
def run_bulk_worker(app):
    """Run every queued job now (or the first `max_jobs`), interactive queue first, then the bulk queue (burst),
    in a real SimpleWorker."""
    from rq import Queue, SimpleWorker

    def run(max_jobs: int | None = None) -> None:
        with app.app_context():
            redis = app.extensions["redis"]
            queues = [Queue(app.config["RQ_QUEUE"], connection=redis), Queue(app.config["BULK_QUEUE"], connection=redis)]
            SimpleWorker(queues, connection=redis).work(burst=True, with_scheduler=False, max_jobs=max_jobs)

    return run


def run_counts(app, run_id: int) -> tuple[str, dict[str, int]]:
    """(the run's status, {row status: rows})."""
    from sqlalchemy import func

    from app.bulk.models import BulkRow, BulkRun
    with app.app_context():
        counts = dict(db.session.execute(select(BulkRow.status, func.count()).where(BulkRow.run_id == run_id)
                                         .group_by(BulkRow.status)).all())
        status = db.session.get(BulkRun, run_id).status
        db.session.remove()
        return status, counts


def upload(client, data: bytes, filename: str = "products.csv", slug: str = "product-description"):
    return client.post(f"/bulk/new/{slug}", data={"file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def mapping_form(run_columns_to_fields: dict[str, str], settings: dict[str, str] | None = None,
                 fixed: dict[str, str] | None = None) -> dict[str, str]:
    data = {"action": "mapping"}
    for field, column in run_columns_to_fields.items():
        data[f"field_{field}_column"] = column
    for field, value in (fixed or {}).items():
        data[f"field_{field}_value"] = value
    base = {"tone": "Friendly", "language": "English", "variant_count": "1", "creativity": "balanced"}
    for name, value in base.items():
        data[f"setting_{name}_value"] = value
    for name, column in (settings or {}).items():
        data[f"setting_{name}_column"] = column
    return data


def start(client, data: bytes, filename="products.csv", mapping=None, slug: str = "product-description",
          **kwargs) -> int:
    """Upload, map (auto-matched unless given), and start; returns the run id."""
    response = upload(client, data, filename, slug)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    run_id = int(response.headers["Location"].split("/")[2])
    mapping = mapping or {"product": "Product name", "features": "Features & details", "audience": "Target customer"}
    response = client.post(f"/bulk/{run_id}/map", data=mapping_form(mapping, **kwargs))
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    response = client.post(f"/bulk/{run_id}/check", data={"scope": "all"})
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return run_id
