"""The worker job against the fake LLM: concurrency, retries, repair, failure, idempotence."""
from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.generation.models import Variant
from app.generation.streams import partial_texts
from app.generation.tasks import run_generation
from app.quota.models import QuotaCharge
from tests.fakes.openai_server import break_stream, error, hang, long, reply
from tests.generation.helpers import ledger, load, submit


def test_variants_are_requested_concurrently(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.ttft = 0.3
    generation_id = submit(client, app, "x-post", variants=4)
    run_worker()
    requests = fake_llm.chat_requests
    assert len(requests) == 4
    # All four were in flight at the same time: each started before any finished.
    assert max(r["started"] for r in requests) < min(r["finished"] for r in requests)
    assert load(app, generation_id).status == "succeeded"


def test_job_records_prompt_model_and_tokens(app, client, login, run_worker, fake_llm):
    login()
    generation_id = submit(client, app, "x-post", variants=2)
    run_worker()
    generation = load(app, generation_id)
    assert generation.model == "fake-model"
    assert generation.prompt_tokens > 0 and generation.completion_tokens > 0
    body = fake_llm.chat_requests[0]["json"]
    assert body["stream"] is True
    assert body["messages"][0]["role"] == "system" and body["messages"][1]["role"] == "user"
    assert "Copydeck" in body["messages"][1]["content"]


def test_running_the_job_twice_charges_once_and_keeps_one_set_of_variants(app, client, login, run_worker, fake_llm):
    login()
    generation_id = submit(client, app, "x-post", variants=3)
    run_worker()
    with app.app_context():
        # Simulate a second delivery of the same job (RQ retry / abandoned-job recovery).
        assert run_generation(generation_id) == "succeeded"
    assert len(fake_llm.chat_requests) == 3
    assert ledger(app) == (3, 0)
    with app.app_context():
        assert db.session.scalar(select(func.count(Variant.id))) == 3


def test_a_duplicate_run_that_races_the_first_cannot_duplicate_or_double_charge(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", variants=2)
    with app.app_context():
        # First run stores everything; force the status back as if the second run started in between.
        run_generation(generation_id)
        from app.generation.models import Generation
        db.session.get(Generation, generation_id).status = "running"
        db.session.commit()
        assert run_generation(generation_id) == "duplicate"
        assert db.session.scalar(select(func.count(Variant.id))) == 2
        assert db.session.scalars(select(QuotaCharge)).one().state == "settled"
    assert ledger(app) == (2, 0)


def test_transient_errors_are_retried_then_succeed(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(error(429), error(500), reply("Fresh copy that works."))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "succeeded"
    assert generation.variants[0].text == "Fresh copy that works."
    assert len(fake_llm.chat_requests) == 3


def test_timeouts_are_retried(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(hang(3), reply("After a timeout."))  # LLM_REQUEST_TIMEOUT is 2 s in tests
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "succeeded"
    assert generation.variants[0].text == "After a timeout."


def test_a_stream_broken_midway_restarts_the_variant(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(break_stream(3), reply("Complete second attempt."))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    generation = load(app, generation_id)
    assert generation.variants[0].text == "Complete second attempt."
    with app.app_context():
        texts = partial_texts(app.extensions["redis"], generation_id, 1)
    assert texts == ["Complete second attempt."]  # the broken attempt's tokens were reset


def test_final_failure_marks_failed_refunds_and_explains(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(*[error(500)] * 3)
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "failed"
    assert "quota was not used" in generation.error_message
    assert ledger(app) == (0, 0)
    with app.app_context():
        assert db.session.scalars(select(QuotaCharge)).one().state == "refunded"
    page = client.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert "quota was not used" in page


def test_rate_limit_message_is_plain(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(*[error(429)] * 3)
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    assert "busy" in load(app, generation_id).error_message


def test_partial_failure_keeps_good_variants_and_charges_only_for_them(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.default_reply = lambda req: "A good variant."
    fake_llm.script(error(400, "bad request"))  # not transient: that variant fails at once
    generation_id = submit(client, app, "x-post", variants=3)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "succeeded"
    assert len(generation.variants) == 2
    assert "1 of 3" in generation.error_message
    assert ledger(app) == (2, 0)


def test_over_limit_variant_gets_one_repair_request(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(long(400), reply("Short and sweet."))  # x-post allows 280
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    generation = load(app, generation_id)
    variant = generation.variants[0]
    assert variant.text == "Short and sweet."
    assert variant.repaired and not variant.over_limit
    repair = fake_llm.chat_requests[1]["json"]["messages"]
    assert repair[-2]["role"] == "assistant" and len(repair[-2]["content"]) == 400
    assert "280" in repair[-1]["content"]


def test_still_over_limit_after_repair_is_flagged_not_truncated(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(long(400), long(350))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    variant = load(app, generation_id).variants[0]
    assert len(variant.text) >= 349  # never silently cut (only surrounding whitespace trimmed)
    assert variant.over_limit
    assert len(fake_llm.chat_requests) == 2  # exactly one repair
    page = client.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert "Over limit" in page


def test_list_limits_apply_per_line(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.default_reply = lambda req: "1. Write ads fast\n2. Copy that converts\n- Your AI copywriter"
    generation_id = submit(client, app, "google-ads-headlines", variants=1)
    run_worker()
    variant = load(app, generation_id).variants[0]
    assert variant.text == "Write ads fast\nCopy that converts\nYour AI copywriter"
    assert not variant.over_limit
    assert len(fake_llm.chat_requests) == 1


def test_an_unexpected_error_fails_and_refunds_instead_of_sticking(app, client, login, run_worker, monkeypatch):
    login()
    generation_id = submit(client, app, "x-post", variants=1)

    def explode(*args, **kwargs):
        raise RuntimeError("database went away")

    import app.generation.tasks as tasks
    monkeypatch.setattr(tasks, "_store", explode)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "failed" and "quota was not used" in generation.error_message
    assert ledger(app) == (0, 0)


def test_a_late_result_after_the_generation_was_failed_elsewhere_is_dropped(app, client, login, fake_llm):
    """RQ's abandoned-job handling failed and refunded it while the model was still answering."""
    import threading

    from app.generation.models import Generation
    from app.generation.streams import GenerationStream
    from app.generation.tasks import INTERRUPTED, fail_and_refund
    login()
    fake_llm.ttft = 1.0
    generation_id = submit(client, app, "x-post", variants=1)
    def run_job() -> None:
        with app.app_context():
            assert run_generation(generation_id) == "superseded"

    job = threading.Thread(target=run_job)
    job.start()
    fake_llm.wait_for_requests(1)
    with app.app_context():
        assert db.session.get(Generation, generation_id).status == "running"
        stream = GenerationStream(app.extensions["redis"], generation_id)
        assert fail_and_refund(generation_id, INTERRUPTED, stream, ("queued", "running"))
        db.session.remove()
    job.join(30)
    generation = load(app, generation_id)
    assert generation.status == "failed" and generation.variants == []
    assert ledger(app) == (0, 0)
    with app.app_context():
        kinds = [f[b"type"] for _id, f in app.extensions["redis"].xrange(f"gen:{generation_id}")]
    assert kinds.count(b"failed") == 1 and b"done" not in kinds
