"""The row job's edges: a row that cannot be written says why and costs nothing, the run pauses when the
quota runs out, and a row job that runs twice, crashes, loses its queue or meets a shutdown writes its row
exactly once."""
from __future__ import annotations

from sqlalchemy import func, select, update

from app.admin import model_policy
from app.bulk import tasks
from app.bulk.models import BulkRow, BulkRun, BulkSlots
from app.extensions import db
from app.generation.models import Generation
from app.generation.recovery import INTERRUPTED
from app.quota.models import QuotaCharge
from app.workspaces.models import Workspace
from tests.admin.conftest import editor_form
from tests.bulk.conftest import csv_bytes, product_rows, run_counts, start
from tests.generation.helpers import ledger, submit


def _notes(app, run_id: int) -> list[str | None]:
    with app.app_context():
        return list(db.session.scalars(select(BulkRow.note).where(BulkRow.run_id == run_id)
                                       .order_by(BulkRow.position)))


def _charges(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(QuotaCharge))


def _generations(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Generation))


def _row_ids(app, run_id: int) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(BulkRow.id).where(BulkRow.run_id == run_id).order_by(BulkRow.position)))


def test_the_run_pauses_when_the_quota_runs_out_mid_run_and_resumes_with_more(app, client, business,
                                                                                run_bulk_worker):
    with app.app_context():
        db.session.execute(update(Workspace).where(Workspace.id == business).values(generations_per_seat=3))
        db.session.commit()
    run_id = start(client, csv_bytes(product_rows(3)))  # 3 rows fit the 3 generations left...
    submit(client, app, "x-post", variants=1)  # ...until one is used on the Write page meanwhile
    run_bulk_worker()
    status, counts = run_counts(app, run_id)
    assert (status, counts) == ("paused", {"done": 2, "pending": 1})
    assert ledger(app) == (3, 0)  # nothing is reserved for the row that did not fit
    page = client.get(f"/bulk/{run_id}").get_data(as_text=True)
    assert tasks.QUOTA_PAUSE in page
    with app.app_context():
        assert db.session.get(BulkSlots, business).in_flight == 0
        db.session.execute(update(Workspace).where(Workspace.id == business).values(generations_per_seat=10))
        db.session.commit()
    assert client.post(f"/bulk/{run_id}/resume").status_code == 302
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"done": 3})
    assert ledger(app) == (4, 0)


def test_rows_of_someone_who_lost_their_seat_fail_with_the_reason_and_cost_nothing(app, team, run_bulk_worker,
                                                                                 fake_llm):
    from app.workspaces import services as teams
    with app.app_context():
        teams.set_seats(team.workspace_id, 5, generations_per_seat=50, plan="business")
        db.session.commit()
    team.add("member@example.com")
    run_id = start(team.client("member@example.com"), csv_bytes(product_rows(5)))
    owner = team.client("owner@example.com")
    assert owner.post(f"/workspace/members/{team.membership_id('member@example.com')}/remove").status_code == 302
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"failed": 5})
    assert set(_notes(app, run_id)) == {"The person who started this run no longer has a seat in this workspace."}
    assert fake_llm.chat_requests == [] and _charges(app) == 0
    with app.app_context():
        assert db.session.get(BulkSlots, team.workspace_id).in_flight == 0


def _workspace_template(client, slug: str, **overrides) -> None:
    response = client.post("/workspace/templates/new", data=editor_form(slug, publish="1", **overrides))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]


def test_rows_of_a_workspace_template_whose_model_left_the_allow_list_fail_with_the_way_out(
        app, client, business, run_bulk_worker, fake_llm):
    with app.app_context():
        model_policy.save({"cheap-model": 500}, None)
        db.session.commit()
    _workspace_template(client, "team-tweet", **{"llm-model": "cheap-model"})
    rows = [["Mug 1", "Makers"], ["Mug 2", "Coffee lovers"]]
    run_id = start(client, csv_bytes(rows, headers=["Product", "Audience"]), slug="team-tweet",
                   mapping={"product": "Product", "audience": "Audience"})
    with app.app_context():
        model_policy.save({"mid-model": 300}, None)  # the operator changed the list while the rows waited
        db.session.commit()
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"failed": 2})
    note = _notes(app, run_id)[0]
    assert "The model 'cheap-model' is not available to workspace templates." in note
    assert note.endswith("Ask a workspace admin to update this template.")
    assert fake_llm.chat_requests == [] and _charges(app) == 0


CUBE = ("{% for a in range(count) %}{% for b in range(count) %}{% for c in range(count) %}"
        "{% endfor %}{% endfor %}{% endfor %}Announce {{ product }}.")


def test_a_row_whose_inputs_push_the_prompt_past_a_bound_fails_alone(app, client, business, run_bulk_worker,
                                                                     monkeypatch):
    monkeypatch.setitem(app.config, "RENDER_CPU_SECONDS", 0.3)
    monkeypatch.setitem(app.config, "RENDER_WALL_SECONDS", 60)  # the CPU bound, not the wall clock, stops it
    _workspace_template(client, "counted-tweet", user_prompt=CUBE, **{
        "fields-1-name": "count", "fields-1-label": "Count", "fields-1-type": "number", "fields-1-options": None,
        "fields-1-min": "1", "fields-1-max": "1000", "fields-1-sample": "2"})
    rows = [["Mug 1", "2"], ["Mug 2", "1000"], ["Mug 3", "3"]]
    run_id = start(client, csv_bytes(rows, headers=["Product", "Count"]), slug="counted-tweet",
                   mapping={"product": "Product", "count": "Count"})
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"done": 2, "failed": 1})
    notes = _notes(app, run_id)
    assert notes[1].startswith("This row's prompt could not be prepared:") and "s of CPU time (the limit)" in notes[1]
    assert ledger(app) == (2, 0) and _charges(app) == 2


def test_a_row_job_delivered_twice_writes_its_row_once(app, client, business, run_bulk_worker, fake_llm):
    run_id = start(client, csv_bytes(product_rows(1)))
    run_bulk_worker()
    [row_id] = _row_ids(app, run_id)
    requests = len(fake_llm.chat_requests)
    assert tasks.run_row(row_id) == "not-queued"
    assert run_counts(app, run_id) == ("finished", {"done": 1})
    assert len(fake_llm.chat_requests) == requests and _generations(app) == 1 and ledger(app) == (1, 0)


def test_row_jobs_whose_run_went_with_its_workspace_do_nothing(app, client, business, run_bulk_worker, fake_llm):
    run_id = start(client, csv_bytes(product_rows(2)))
    row_ids = _row_ids(app, run_id)
    with app.app_context():
        name = db.session.get(Workspace, business).name
    assert client.post("/workspace/delete", data={"del-confirm_name": name}).status_code == 302
    run_bulk_worker()
    assert fake_llm.chat_requests == []
    with app.app_context():
        assert db.session.get(BulkRun, run_id) is None
    assert [tasks.run_row(row_id) for row_id in row_ids] == ["missing", "missing"]


def test_a_row_job_that_crashes_after_its_copy_was_stored_is_closed_from_it_not_written_again(
        app, client, business, run_bulk_worker, monkeypatch):
    real_close_row, crashed = tasks.close_row, []

    def crash_once(row_id: int, generation_id: int) -> str:
        if not crashed:
            crashed.append(row_id)
            raise RuntimeError("the database went away")
        return real_close_row(row_id, generation_id)

    monkeypatch.setattr(tasks, "close_row", crash_once)
    run_id = start(client, csv_bytes(product_rows(1)))
    run_bulk_worker()  # the job fails; RQ's failure callback reconciles the row from its generation
    assert crashed and run_counts(app, run_id) == ("finished", {"done": 1})
    assert _generations(app) == 1 and ledger(app) == (1, 0)
    with app.app_context():
        row = db.session.get(BulkRow, crashed[0])
        assert db.session.get(Generation, row.generation_id).status == "succeeded"


def test_rows_whose_queued_jobs_were_lost_are_handed_out_again_by_maintenance(app, client, business,
                                                                               run_bulk_worker):
    from rq import Queue

    from workers import maintenance

    run_id = start(client, csv_bytes(product_rows(2)))
    with app.app_context():
        Queue(app.config["BULK_QUEUE"], connection=app.extensions["redis"]).empty()  # e.g. Redis lost its data
    run_bulk_worker()
    assert run_counts(app, run_id) == ("running", {"queued": 2})  # nothing to run: the rows wait on no job
    report = maintenance.run_once(app)
    assert report.bulk_rows_reconciled == 2
    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"done": 2})
    assert _generations(app) == 2 and ledger(app) == (2, 0)


def test_a_shutdown_mid_row_refunds_its_generation_and_the_row_is_written_by_the_next_worker(
        app, client, business, run_bulk_worker, fake_llm, worker_shutdown):
    run_id = start(client, csv_bytes(product_rows(1)))
    [row_id] = _row_ids(app, run_id)

    def generation_of_the_row() -> int:
        fake_llm.wait_for_requests(1, timeout=30)
        with app.app_context():
            generation_id = db.session.scalars(select(Generation.id).where(Generation.bulk_row_id == row_id)).one()
            db.session.remove()
            return generation_id

    worker_shutdown.when_streaming(generation_of_the_row)
    run_bulk_worker(max_jobs=1)
    worker_shutdown.over()
    with app.app_context():
        first = db.session.scalars(select(Generation).where(Generation.bulk_row_id == row_id)).one()
        assert first.status == "failed" and first.error_message == INTERRUPTED
        row = db.session.get(BulkRow, row_id)
        assert (row.status, row.attempts) == ("queued", 2)  # back to pending, and handed out again at once
    assert ledger(app) == (0, 0)

    run_bulk_worker()
    assert run_counts(app, run_id) == ("finished", {"done": 1})
    with app.app_context():
        statuses = db.session.scalars(select(Generation.status).where(Generation.bulk_row_id == row_id)
                                      .order_by(Generation.id)).all()
        assert statuses == ["failed", "succeeded"]
        assert db.session.get(BulkSlots, business).in_flight == 0
    assert ledger(app) == (1, 0)
