"""Edges of the job that users meet rarely but must never pay for: a repair that fails or comes
back empty, and a model that answers nothing."""
from __future__ import annotations

from tests.fakes.openai_server import error, long, reply
from tests.generation.helpers import ledger, load, submit


def test_a_failed_repair_keeps_the_first_answer_flagged(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(long(400), error(400, "The repair request was refused"))  # x-post allows 280
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "succeeded"
    variant = generation.variants[0]
    assert len(variant.text) >= 399 and variant.over_limit and not variant.repaired
    assert len(fake_llm.chat_requests) == 2
    assert ledger(app) == (1, 0)


def test_an_empty_repair_keeps_the_first_answer_flagged(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(long(400), reply(""))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    variant = load(app, generation_id).variants[0]
    assert len(variant.text) >= 399 and variant.over_limit and not variant.repaired


def test_an_empty_answer_fails_the_variant_and_refunds_it(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(reply(""))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "failed"
    assert "empty answer" in generation.error_message and "quota was not used" in generation.error_message
    assert generation.variants == []
    assert ledger(app) == (0, 0)


def test_one_empty_answer_of_three_charges_for_two(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(reply(""))
    generation_id = submit(client, app, "x-post", variants=3)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "succeeded"
    assert len(generation.variants) == 2
    assert "1 of 3 variants could not be generated" in generation.error_message
    assert ledger(app) == (2, 0)
