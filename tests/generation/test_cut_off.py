"""Cut-off streams, the total deadline, output bounds and token batches, through the fake LLM."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.generation.streams import partial_texts, stream_key
from app.llm import LLMError, LLMSettings, stream_chat
from app.quota.models import QuotaCharge
from tests.fakes.openai_server import end_stream, long, reply, trickle
from tests.generation.helpers import ledger, load, submit


def test_a_stream_that_ends_before_the_model_finished_is_retried_not_stored(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(end_stream(3), reply("Complete second attempt."))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "succeeded"
    assert generation.variants[0].text == "Complete second attempt."
    assert len(fake_llm.chat_requests) == 2
    with app.app_context():
        redis = app.extensions["redis"]
        kinds = [fields[b"type"].decode() for _id, fields in redis.xrange(stream_key(generation_id))]
        assert partial_texts(redis, generation_id, 1) == ["Complete second attempt."]
    # The dead run's text was shown, then cleared before the retry's tokens.
    assert kinds.index("reset") < len(kinds) - 1 - kinds[::-1].index("token")


def test_streams_that_never_finish_fail_and_refund(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(*[end_stream(2)] * 3)
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "failed" and generation.variants == []
    assert "stopped in the middle" in generation.error_message
    assert ledger(app) == (0, 0)
    with app.app_context():
        assert db.session.scalars(select(QuotaCharge)).one().state == "refunded"


def test_stopped_at_max_tokens_is_kept_and_flagged_cut_off(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(reply("Fresh copy that stops mid", finish_reason="length"))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    variant = load(app, generation_id).variants[0]
    assert variant.text == "Fresh copy that stops mid" and variant.cut_off
    assert ledger(app) == (1, 0)
    page = client.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert "Cut off" in page


def test_nul_bytes_from_the_model_never_reach_the_database(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(reply("Fresh\x00 copy\x00 here."))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    assert load(app, generation_id).variants[0].text == "Fresh copy here."


def test_model_output_is_capped_before_it_is_stored(app, client, login, run_worker, fake_llm):
    login()
    app.config["LLM_MAX_OUTPUT_CHARS"] = 300
    try:
        fake_llm.script(long(5000), long(5000))  # x-post allows 280: one repair, also too long
        generation_id = submit(client, app, "x-post", variants=1)
        run_worker()
    finally:
        app.config["LLM_MAX_OUTPUT_CHARS"] = 20000
    variant = load(app, generation_id).variants[0]
    assert 280 < len(variant.text) <= 300
    assert variant.cut_off and variant.over_limit


def test_the_deadline_ends_a_stream_that_trickles_slower_than_it(fake_llm):
    """No per-read timeout fires (10 s), the server sends a token every 3 s: only the total deadline stops it."""
    settings = LLMSettings(base_url=fake_llm.base_url, api_key="k", model="fake-model", request_timeout=10,
                           max_attempts=3, backoff=0.01)
    fake_llm.script(trickle(3))
    with pytest.raises(LLMError) as caught:
        stream_chat(settings, [{"role": "user", "content": "hi"}], temperature=0.7,
                    deadline_at=time.monotonic() + 1.5)
    assert caught.value.kind == "timeout" and "took too long" in caught.value.problem
    request = fake_llm.wait_for_requests(1)[0]
    # The client hung up before the server's first token: the deadline, not a read, ended it.
    assert request["token_times"] == []
    assert len(fake_llm.chat_requests) == 1


def test_tokens_reach_the_stream_in_batches_the_first_at_once(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.tokens = 40
    fake_llm.token_delay = 0.005  # 200 tokens a second, flushed every 50 ms
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    with app.app_context():
        entries = app.extensions["redis"].xrange(stream_key(generation_id))
    import json
    batches = [json.loads(fields[b"data"])["t"] for _id, fields in entries if fields[b"type"] == b"token"]
    assert batches[0] == " word1"  # the first token alone, at once
    assert 2 <= len(batches) < 40
    assert "".join(batches) == "".join(f" word{i}" for i in range(1, 41))
    assert load(app, generation_id).variants[0].text == "word1 " + " ".join(f"word{i}" for i in range(2, 41))
