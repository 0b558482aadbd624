"""Uploads that are never started do not keep their files for ever: the maintenance round deletes them."""
from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from app.bulk.models import BulkMapping, BulkRun
from app.extensions import db
from tests.bulk.conftest import csv_bytes, product_rows, start, upload


def _runs(app) -> dict[str, int]:
    with app.app_context():
        return dict(db.session.execute(select(BulkRun.status, func.count()).group_by(BulkRun.status)).all())


def test_an_unstarted_upload_is_deleted_after_a_day_with_its_file(app, client, business):
    from workers import maintenance

    started = start(client, csv_bytes(product_rows(1)))  # a run: kept
    response = upload(client, csv_bytes(product_rows(3)))
    assert response.status_code == 302
    draft = int(response.headers["Location"].split("/")[2])
    assert client.get(f"/bulk/{draft}/map").status_code == 200
    with app.app_context():
        assert db.session.get(BulkRun, draft).source  # the whole file is kept while the user maps it
        mappings = db.session.scalar(select(func.count()).select_from(BulkMapping))

    assert maintenance.run_once(app).bulk_drafts_expired == 0  # a fresh draft stays
    with time_machine.travel(timedelta(hours=app.config["BULK_DRAFT_HOURS"], minutes=1), tick=False):
        report = maintenance.run_once(app)
    assert report.bulk_drafts_expired == 1
    assert _runs(app) == {"running": 1}
    assert client.get(f"/bulk/{draft}/map").status_code == 404
    assert client.get(f"/bulk/{draft}").status_code == 404
    assert client.get(f"/bulk/{started}").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BulkMapping)) == mappings  # remembered mappings stay
