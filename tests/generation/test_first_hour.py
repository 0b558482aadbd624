"""Copy worth copying: clean output, lists as lists, structured output, refunds, Stop, the cost line.

Real RQ worker, real Redis and the fake OpenAI server over HTTP; nothing of ours is mocked.
"""
from __future__ import annotations

import json
import re
import threading

import pytest
from sqlalchemy import select

from app.extensions import db
from app.generation.markup import render_markdown
from app.generation.models import Variant
from app.generation.rules import JsonItemsDecoder, clean_output, expected_items
from app.generation.stop import STOPPED_BEFORE_START, stop_key
from app.generation.tasks import run_generation
from app.quota.models import QuotaCharge, VariantRefund
from tests.fakes.openai_server import reply, trickle
from tests.generation.helpers import ledger, load, submit


# ---------------------------------------------------------------- clean output

@pytest.mark.parametrize("raw, expected", [
    ("Sure! Here are 3 headlines:\n\n1. **Brew Better**\n2. \"Fresh Daily\"\n- Headline: Wake Up\n\nLet me know if you want more!",
     "Brew Better\nFresh Daily\nWake Up"),
    ("Here is a rewritten version:\n* Product: Copydeck\n* `Fast` [copy](https://x.y)", "Copydeck\nFast copy"),
    ("Option 1: Sip slowly\nOption 2: Stay warm", "Sip slowly\nStay warm"),
])
def test_lists_lose_chatter_labels_markers_and_markdown(raw, expected):
    assert clean_output(raw, "list", ("Product",)) == expected


def test_plain_copy_loses_preamble_label_and_markdown_but_keeps_its_words():
    raw = "Certainly! Here's a post:\nProduct: **BREWING:** fresh beans, daily.\n\nI hope this helps!"
    assert clean_output(raw, "single", ("Product",), plain=True) == "BREWING: fresh beans, daily."
    # Copy that merely starts like chatter is kept.
    for copy in ("Sure beats cold coffee.", "Great, our coffee is the best!", "Here is the mug you have waited for.",
                 "Here's your new favourite mug."):
        assert clean_output(copy + "\nSecond line.", "single", (), plain=True) == copy + "\nSecond line."
    for chatter in ("Sure, I can help with that!", "Here's a rewritten version...", "Here are 3 options for you",
                    "Great! Here you go:", "Below are the headlines:"):
        assert clean_output(chatter + "\nFresh beans daily.", "single", (), plain=True) == "Fresh beans daily."


def test_long_copy_keeps_markdown_and_renders_it_sanitised():
    raw = "## Launch\n\n**Big** news <script>alert(1)</script> [link](javascript:alert(1))"
    assert clean_output(raw, "single", (), plain=False) == raw
    html = str(render_markdown(raw))
    assert "<h2>Launch</h2>" in html and "<strong>Big</strong>" in html
    assert "<script" not in html and "javascript:" not in html.replace("[link](javascript:alert(1))", "")
    assert 'href="javascript' not in html


def test_streamed_json_items_decode_to_lines_and_the_count_is_read_from_the_prompt():
    decoder = JsonItemsDecoder()
    streamed = '{"items": ["Brew \\"better\\"", "Caf\\u00e9 time"]}'
    assert "".join(decoder.feed(ch) for ch in streamed) == 'Brew "better"\nCafé time'
    assert expected_items("Rules:\n- Write exactly 10 headlines, one per line.") == 10
    assert expected_items("One line per feature.") is None


def test_chatter_is_removed_by_the_job(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(reply("Sure! Here is your post:\n**Fresh beans**, roasted daily.\nLet me know if you need more!"))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    assert load(app, generation_id).variants[0].text == "Fresh beans, roasted daily."


# ---------------------------------------------------------------- lists

def test_a_list_shows_one_row_per_item_with_its_own_count_copy_and_star(app, client, login, run_worker, fake_llm):
    login()
    long_line = "A headline far longer than thirty characters"
    answer = f"Here are your headlines:\n1. Brew better\n2. {long_line}\n3. Coffee, faster"
    fake_llm.script(reply(answer), reply(answer))  # the repair keeps the long line: flagged, one line marked
    generation_id = submit(client, app, "google-ads-headlines", variants=1)
    run_worker()
    variant = load(app, generation_id).variants[0]
    assert variant.text == f"Brew better\n{long_line}\nCoffee, faster"
    page = client.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert page.count('data-testid="item"') == 3
    assert page.count('data-action="copy-item"') == 3 and page.count('data-action="favourite-item"') == 3
    assert f"{len(long_line)} / 30" in page and "11 / 30" in page
    assert page.count('data-testid="item-over"') == 1  # only the long line is marked
    assert "Copy all" in page

    # Star the second line: stored by its text; the list is starred too (History's favourites find it).
    response = client.post(f"/variants/{variant.id}/items/1/favourite")
    assert response.status_code == 200 and 'aria-pressed="true"' in response.get_data(as_text=True)
    with app.app_context():
        stored = db.session.get(Variant, variant.id)
        assert stored.favourite_items == [long_line] and stored.is_favourite
    client.post(f"/variants/{variant.id}/items/1/favourite")
    with app.app_context():
        stored = db.session.get(Variant, variant.id)
        assert stored.favourite_items == [] and stored.is_favourite  # the list's own star is the user's to clear
    assert client.post(f"/variants/{variant.id}/items/3/favourite").status_code == 422  # no such line


def test_list_templates_ask_for_exactly_n_items_with_structured_output(app, client, login, run_worker, fake_llm,
                                                                       monkeypatch):
    monkeypatch.setitem(app.config, "LLM_STRUCTURED_OUTPUT", "openai")
    login()
    generation_id = submit(client, app, "google-ads-headlines", variants=1)
    run_worker()
    body = fake_llm.chat_requests[0]["json"]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    items = fmt["json_schema"]["schema"]["properties"]["items"]
    assert items["minItems"] == items["maxItems"] == 10 and items["items"]["maxLength"] == 30
    variant = load(app, generation_id).variants[0]
    # The fake numbers its answers "#n"; the claims check may ask for one repair of an unsupported "#1".
    answer = len(fake_llm.chat_requests)
    assert answer in (1, 2) and variant.items == [f"Item {i} #{answer}" for i in range(1, 11)]
    with app.app_context():  # the live stream showed lines, never JSON
        tokens = "".join(json.loads(f[b"data"])["t"] for _id, f in app.extensions["redis"].xrange(f"gen:{generation_id}")
                         if f[b"type"] == b"token")
    assert "{" not in tokens and tokens.endswith(f"Item 10 #{answer}")


def test_the_llama_cpp_dialect_and_single_templates(app, client, login, run_worker, fake_llm, monkeypatch):
    monkeypatch.setitem(app.config, "LLM_STRUCTURED_OUTPUT", "llama_cpp")
    login()
    submit(client, app, "taglines-slogans", variants=1)
    submit(client, app, "x-post", variants=1)
    run_worker()
    formats = [r["json"].get("response_format") for r in fake_llm.chat_requests]
    list_format = next(f for f in formats if f)
    assert list_format["type"] == "json_object" and list_format["schema"]["properties"]["items"]["minItems"] == 8
    assert formats.count(None) == 1  # the single-block template is not constrained


# ---------------------------------------------------------------- honest metering



def test_a_flagged_variant_is_refunded_once_and_leaves_copy(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.ttft = 0.0
    fake_llm.script(reply("A post that stopped in the mid", finish_reason="length"))
    generation_id = submit(client, app, "x-post", variants=2)
    run_worker()
    generation = load(app, generation_id)
    flagged = next(v for v in generation.variants if v.cut_off)
    usable = next(v for v in generation.variants if not v.cut_off)
    assert flagged.unusable_reason == "cut_off" and usable.unusable_reason is None
    assert ledger(app) == (2, 0)

    page = client.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert page.count('data-action="refund"') == 1 and 'data-testid="cut-off"' in page

    response = client.post(f"/variants/{flagged.id}/refund")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-testid="refunded"' in html and 'data-action="copy"' not in html
    assert 'hx-swap-oob="true"' in html  # the header's allowance updates
    assert ledger(app) == (1, 0)
    # Once only; and never for a usable variant.
    assert client.post(f"/variants/{flagged.id}/refund").status_code == 422
    assert client.post(f"/variants/{usable.id}/refund").status_code == 422
    assert ledger(app) == (1, 0)
    with app.app_context():
        refunds = db.session.scalars(select(VariantRefund)).all()
        assert [(r.variant_id, r.amount, r.reason) for r in refunds] == [(flagged.id, 1, "cut_off")]
        assert db.session.scalars(select(QuotaCharge)).one().amount == 1  # usage agrees with the ledger
        assert db.session.get(Variant, flagged.id).refunded_at is not None  # kept in history
    history = client.get("/history").get_data(as_text=True)
    assert history.count('data-testid="refunded-badge"') == 1  # History marks it too


def test_an_edited_variant_is_the_users_and_is_not_refunded(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(reply("Stopped in the mid", finish_reason="length"))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    variant = load(app, generation_id).variants[0]
    client.post(f"/variants/{variant.id}/edit", data={"text": "Finished by hand."})
    assert client.post(f"/variants/{variant.id}/refund").status_code == 422
    assert ledger(app) == (1, 0)


def test_another_workspaces_variant_cannot_be_refunded(app, client, login, run_worker, fake_llm):
    login("owner@example.com")
    fake_llm.script(reply("Stopped in the mid", finish_reason="length"))
    generation_id = submit(client, app, "x-post", variants=1)
    run_worker()
    variant_id = load(app, generation_id).variants[0].id
    stranger = app.test_client()
    login("stranger@example.com", as_client=stranger)
    assert stranger.post(f"/variants/{variant_id}/refund").status_code == 404
    assert ledger(app) == (1, 0)


def test_the_form_shows_the_cost_before_submitting(app, client, login):
    login()
    page = client.get("/write/x-post").get_data(as_text=True)
    line = re.search(r'data-testid="cost-line".*?</p>', page, re.S).group(0)
    text = " ".join(re.sub(r"<[^>]+>", " ", line).split())
    assert re.search(r"This will use \d+ of your 20 generations left", text), text


def test_the_live_counter_has_one_form_for_lists(app, client, login):
    login()
    generation_id = submit(client, app, "google-ads-headlines", variants=2)
    pane = client.get(f"/generations/{generation_id}/variants").get_data(as_text=True)
    assert pane.count("longest line 0 / 30") == 2 and "(longest line)" not in pane
    assert 'data-action="stop"' in pane


# ---------------------------------------------------------------- Stop

def test_stop_while_queued_refunds_everything_before_it_starts(app, client, login, run_worker, fake_llm):
    login()
    generation_id = submit(client, app, "x-post", variants=3)
    assert client.post(f"/generations/{generation_id}/stop").status_code == 302
    run_worker()
    generation = load(app, generation_id)
    assert generation.status == "failed" and generation.error_message == STOPPED_BEFORE_START
    assert fake_llm.chat_requests == [] and ledger(app) == (0, 0)


def test_stop_mid_generation_keeps_and_charges_what_was_written(app, client, login, fake_llm):
    login()
    fake_llm.script(reply("Finished variant."), trickle(0.02))
    generation_id = submit(client, app, "x-post", variants=2)
    results = []
    job = threading.Thread(target=lambda: results.append(_run(app, generation_id)))
    job.start()
    redis = app.extensions["redis"]
    # Wait until the finished variant is stored in the stream and the other is trickling.
    _wait(lambda: any(f[b"type"] == b"variant" for _id, f in redis.xrange(f"gen:{generation_id}")))
    _wait(lambda: len(fake_llm.chat_requests) == 2 and fake_llm.chat_requests[1]["token_times"])
    assert client.post(f"/generations/{generation_id}/stop", headers={"HX-Request": "true"}).status_code == 204
    job.join(30)
    assert results == ["succeeded"]
    generation = load(app, generation_id)
    assert [v.text for v in generation.variants] == ["Finished variant."]
    assert "You stopped this generation: 1 of 2" in generation.error_message
    assert ledger(app) == (1, 0)
    assert redis.exists(stop_key(generation_id))


def _run(app, generation_id):
    with app.app_context():
        return run_generation(generation_id)


def _wait(condition, timeout: float = 20.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        event.wait(0.02)
    raise AssertionError("condition not met in time")
