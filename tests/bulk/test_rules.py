"""Checking before paying, steering a run, who sees what, and the plan gate."""
from __future__ import annotations

import io

from sqlalchemy import func, select, update

from app.bulk import services
from app.bulk.models import BulkRow, BulkRun, BulkSlots
from app.extensions import db
from app.generation.models import Generation
from app.quota.models import QuotaCharge
from app.workspaces.models import Membership, Workspace
from tests.bulk.conftest import csv_bytes, mapping_form, product_rows, start, upload, run_counts
from tests.fakes.openai_server import error, reply
from tests.generation.helpers import ledger

FIELDS = {"product": "Product name", "features": "Features & details", "audience": "Target customer"}



def _draft(client, data):
    response = upload(client, data)
    assert response.status_code == 302
    return int(response.headers["Location"].split("/")[2])


def test_every_row_is_checked_with_row_numbered_errors_and_invalid_rows_cost_nothing(app, client, business,
                                                                                     run_bulk_worker):
    rows = product_rows(3) + [["", "No name", "x"], ["Mug " + "x" * 130, "Too long a name", "x"]]
    run_id = _draft(client, csv_bytes(rows))
    client.post(f"/bulk/{run_id}/map", data=mapping_form({"product": "Product name", "features": "Features & details"},
                                                         settings={"variant_count": "Target customer"}))
    # variants from a column holding text: every row invalid, with the form's own message
    page = client.get(f"/bulk/{run_id}/check").get_data(as_text=True)
    assert "Enter a whole number written with the digits 0-9" in page
    client.post(f"/bulk/{run_id}/map", data=mapping_form(FIELDS))
    page = client.get(f"/bulk/{run_id}/check").get_data(as_text=True)
    assert "Product name is required." in page and "Product name can be at most 120 characters." in page
    assert 'data-testid="bulk-invalid">2<' in page and 'data-testid="bulk-cost">3 generations<' in page
    assert "Row 2" in page  # the first prompts are previewed
    errors = client.get(f"/bulk/{run_id}/errors.csv").get_data(as_text=True)
    assert errors.splitlines()[1:] == ["5,Product name is required.", "6,Product name can be at most 120 characters."]
    client.post(f"/bulk/{run_id}/check", data={"scope": "all"})
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"done": 3, "skipped": 2})
    assert ledger(app) == (3, 0)


def test_select_and_number_values_are_checked_and_case_is_forgiven(app, client, business):
    run_id = _draft(client, csv_bytes([["Mug", "x", "y", "friendly", "9"], ["Cup", "x", "y", "Shouty", "2"]],
                                      headers=["Product name", "Features & details", "Target customer", "Tone",
                                               "Variants"]))
    client.post(f"/bulk/{run_id}/map", data=mapping_form(FIELDS, settings={"tone": "Tone", "variant_count": "Variants"}))
    with app.app_context():
        run = db.session.get(BulkRun, run_id)
        result = services.check_rows(run, services.read_sheet(run), run.user_id, previews=False)
        assert [r.errors for r in result.rows] == [["Choose from 1 to 5 variants."], ["Not a valid choice."]]


def test_the_quota_caps_the_run_and_the_user_can_run_what_fits(app, client, business, run_bulk_worker):
    with app.app_context():
        db.session.execute(update(Workspace).where(Workspace.id == business).values(generations_per_seat=4))
        db.session.commit()
    run_id = _draft(client, csv_bytes(product_rows(6)))
    client.post(f"/bulk/{run_id}/map", data=mapping_form(FIELDS))
    page = client.get(f"/bulk/{run_id}/check").get_data(as_text=True)
    assert "Your quota covers the first 4 of 6 rows" in page
    refused = client.post(f"/bulk/{run_id}/check", data={"scope": "all"})
    assert refused.status_code == 422 and "need 6 generations and 4 are left" in refused.get_data(as_text=True)
    assert client.post(f"/bulk/{run_id}/check", data={"scope": "fit"}).status_code == 302
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"done": 4, "skipped": 2})
    assert ledger(app) == (4, 0)


def test_failed_rows_keep_their_error_and_a_retry_charges_only_them(app, client, business, run_bulk_worker, fake_llm):
    fake_llm.script(reply("One"), error(400, "bad"), reply("Three"))
    run_id = start(client, csv_bytes(product_rows(3)))
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"done": 2, "failed": 1})
    assert ledger(app) == (2, 0)
    with app.app_context():
        failed = db.session.scalars(select(BulkRow).where(BulkRow.status == "failed")).one()
        assert failed.note
    text = client.get(f"/bulk/{run_id}/results.csv").get_data(as_text=True)
    assert "Failed" in text
    assert client.post(f"/bulk/{run_id}/retry").status_code == 302
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"done": 3})
    assert ledger(app) == (3, 0)


def test_pause_resume_and_cancel(app, client, business, run_bulk_worker):
    run_id = start(client, csv_bytes(product_rows(8)))
    client.post(f"/bulk/{run_id}/pause")
    run_bulk_worker()  # the queued rows go back to pending
    status, counts = run_counts(app, run_id)
    assert status == "paused" and counts == {"pending": 8}
    with app.app_context():
        assert db.session.get(BulkSlots, business).in_flight == 0
    client.post(f"/bulk/{run_id}/resume")
    with app.app_context():
        assert services.in_flight_rows(business) == app.config["BULK_CONCURRENCY"]
    client.post(f"/bulk/{run_id}/cancel")
    run_bulk_worker()
    assert run_counts(app, run_id) == ("cancelled", {"skipped": 8})
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(QuotaCharge)) == 0  # nothing charged
        assert db.session.get(BulkRun, run_id).finished_at is not None


def test_rows_in_flight_never_exceed_the_workspace_bound(app, client, business):
    run_id = start(client, csv_bytes(product_rows(20)))
    second = start(client, csv_bytes(product_rows(25)[20:]))
    with app.app_context():
        limit = app.config["BULK_CONCURRENCY"]
        assert services.in_flight_rows(business) == limit
        assert db.session.get(BulkSlots, business).in_flight == limit
        assert app.extensions["redis"].llen(f"rq:queue:{app.config['BULK_QUEUE']}") == limit
        assert db.session.scalar(select(func.count()).select_from(BulkRow).where(
            BulkRow.run_id == second, BulkRow.status == "pending")) == 5
    assert run_id != second


def test_free_and_pro_see_the_upsell(app, client, login):
    login()
    response = client.get("/bulk")
    assert response.status_code == 402 and "Bulk runs are a Business feature" in response.get_data(as_text=True)
    response = client.post("/bulk/new/product-description", data={"file": (io.BytesIO(b"a\n1\n"), "a.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 402
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BulkRun)) == 0


def test_members_see_their_own_runs_and_managers_all(app, team, run_bulk_worker):
    from app.workspaces import services as teams
    with app.app_context():
        teams.set_seats(team.workspace_id, 5, generations_per_seat=50, plan="business")
        db.session.commit()
    team.add("member@example.com")
    team.add("other@example.com")
    team.add("admin@example.com", role="admin")
    mine = start(team.client("member@example.com"), csv_bytes(product_rows(1)))
    theirs = start(team.client("other@example.com"), csv_bytes(product_rows(2)))
    member = team.client("member@example.com")
    assert member.get(f"/bulk/{mine}").status_code == 200
    assert member.get(f"/bulk/{theirs}").status_code == 404
    assert member.post(f"/bulk/{theirs}/cancel").status_code == 404
    listing = member.get("/bulk").get_data(as_text=True)
    # By link, not "#<id>": the page also holds "&#39;" (an escaped apostrophe), which run 39 would match.
    assert f'href="/bulk/{mine}"' in listing and f'href="/bulk/{theirs}"' not in listing
    admin = team.client("admin@example.com")
    assert f'href="/bulk/{theirs}"' in admin.get("/bulk").get_data(as_text=True)
    assert admin.post(f"/bulk/{theirs}/cancel").status_code == 302
    assert run_counts(app, theirs)[0] == "cancelled"


def test_another_workspace_s_run_is_a_404(app, client, business, make_user):
    run_id = start(client, csv_bytes(product_rows(1)))
    other = app.test_client()
    make_user("stranger@example.com")
    other.post("/login", data={"email": "stranger@example.com", "password": "correct-horse-battery"})
    with app.app_context():
        from app.workspaces import services as teams
        workspace_id = db.session.scalars(select(Membership.workspace_id).join(Membership.user).where(
            Membership.user.has(email="stranger@example.com"))).one()
        teams.set_seats(workspace_id, 1, generations_per_seat=10, plan="business")
        db.session.commit()
    for path in (f"/bulk/{run_id}", f"/bulk/{run_id}/progress", f"/bulk/{run_id}/results.csv",
                 f"/bulk/{run_id}/map", f"/history?run={run_id}"):
        response = other.get(path)
        assert response.status_code == 404 or "Mug 1" not in response.get_data(as_text=True), path


def test_history_groups_generations_under_their_run(app, client, business, run_bulk_worker):
    run_id = start(client, csv_bytes(product_rows(2)))
    client.post("/write/product-description", data={"f_product": "Solo mug", "f_features": "x", "tone": "Friendly",
                                                      "language": "English", "variant_count": "1",
                                                      "creativity": "balanced"})
    run_bulk_worker()
    page = client.get(f"/history?run={run_id}").get_data(as_text=True)
    assert page.count('data-testid="bulk-badge"') == 2 and "Solo mug" not in page
    assert "Solo mug" in client.get("/history").get_data(as_text=True)
    with app.app_context():
        generation_id = db.session.scalars(select(Generation.id).where(Generation.bulk_row_id.is_not(None))).first()
    page = client.get(f"/generations/{generation_id}")  # a row's generation is a normal one, with its actions
    assert page.status_code == 200 and "Mug" in page.get_data(as_text=True)


def test_the_mapping_is_remembered_for_the_template(app, client, business):
    run_id = _draft(client, csv_bytes(product_rows(1), headers=["Item", "Details", "Who"]))
    client.post(f"/bulk/{run_id}/map", data=mapping_form({"product": "Item", "features": "Details", "audience": "Who"}))
    second = _draft(client, csv_bytes(product_rows(1), headers=["Item", "Details", "Who"]))
    page = client.get(f"/bulk/{second}/map").get_data(as_text=True)
    assert "Using the mapping you saved" in page
    assert '<option value="Item" selected>' in page and '<option value="Who" selected>' in page
