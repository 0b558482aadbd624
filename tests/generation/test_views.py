"""Generate form, result pane, SSE, variant actions, bad input and tenancy over HTTP."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

import workers
from app.extensions import db
from app.generation.models import Generation
from tests.generation.helpers import form_data, load, submit


def _count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


def _queued(app) -> int:
    with app.app_context():
        return workers.queue(app).count


def _variant_ids(app, generation_id):
    return [v.id for v in load(app, generation_id).variants]


# --- the form and bad input -------------------------------------------------

def test_form_is_built_from_the_template_fields(app, client, login):
    login()
    page = client.get("/write/google-ads-headlines").get_data(as_text=True)
    assert 'name="f_product"' in page
    assert "30 characters" in page
    for name in ("tone", "language", "variant_count", "creativity"):
        assert f'name="{name}"' in page


@pytest.mark.parametrize("override, message", [
    ({"f_topic": ""}, "is required"),
    ({"f_topic": "x" * 5000}, "at most"),
    ({"variant_count": "6"}, "from 1 to 5"),
    ({"variant_count": "0"}, "from 1 to 5"),
    ({"variant_count": "many"}, "variants"),
    ({"tone": "Sarcastic-ish"}, "Not a valid choice"),
])
def test_bad_input_is_refused_with_a_message_and_writes_nothing(app, client, login, override, message):
    login()
    data = form_data(app, "x-post", 3)
    assert "f_topic" in data  # x-post's required textarea
    data.update(override)
    response = client.post("/write/x-post", data=data)
    assert response.status_code == 422
    assert message.lower() in response.get_data(as_text=True).lower()
    assert _count(app, Generation) == 0
    assert _queued(app) == 0


def test_non_numeric_number_field_is_refused(app, client, login):
    login()
    data = form_data(app, "blog-post-outline", 1)
    number_field = next(k for k in data if k.startswith("f_") and data[k].isdigit())
    data[number_field] = "twelve"
    response = client.post("/write/blog-post-outline", data=data)
    assert response.status_code == 422
    assert "must be a number" in response.get_data(as_text=True)
    assert _count(app, Generation) == 0


def test_unknown_template_is_404(client, login):
    login()
    assert client.get("/write/no-such-template").status_code == 404
    assert client.post("/write/no-such-template", data={}).status_code == 404


def test_csrf_failure_is_a_clear_400_and_writes_nothing(app, make_app, make_user):
    strict = make_app({"TESTING": True, "RATELIMIT_ENABLED": False})
    client = strict.test_client()
    make_user("csrf@example.com")
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    assert client.post("/login", data={"email": "csrf@example.com", "password": "correct-horse-battery",
                                      "csrf_token": token}).status_code == 302
    response = client.post("/write/x-post", data=form_data(app, "x-post", 1))  # no token
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True).lower()
    assert _count(app, Generation) == 0
    with strict.app_context():
        db.engine.dispose()


def test_out_of_quota_gets_a_message_and_no_job(app, client, login):
    user_id = login()
    with app.app_context():
        from app.quota import services as quota
        from app.workspaces.models import Membership
        workspace = db.session.scalars(select(Membership)).one().workspace
        ledger = quota.ledger_for(workspace, quota.subject_for(user_id), 20)
        ledger.used = 19
        db.session.commit()
    response = client.post("/write/x-post", data=form_data(app, "x-post", 3))
    assert response.status_code == 402
    body = response.get_data(as_text=True)
    assert "1 generation left" in body and "needs 3" in body
    assert _count(app, Generation) == 0
    assert _queued(app) == 0


def test_remaining_allowance_is_shown_on_every_page(app, client, login, run_worker):
    login()
    assert 'data-testid="quota-remaining">20<' in client.get("/templates").get_data(as_text=True)
    submit(client, app, "x-post", 3)
    assert 'data-testid="quota-remaining">17<' in client.get("/history").get_data(as_text=True)


# --- results, streaming, polling ---------------------------------------------

def test_sse_replays_from_last_event_id(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", 1)
    run_worker()
    body = client.get(f"/generations/{generation_id}/stream").get_data(as_text=True)
    # The worker had finished: one XREAD returns every entry, so one batch event carries them all.
    assert body.count("event: batch") == 1
    tokens = body.count('["token",')
    assert tokens >= 2 and body.rstrip().endswith('["done",{}]]')
    with app.app_context():
        entries = app.extensions["redis"].xrange(f"gen:{generation_id}")
    ids = [entry_id.decode() for entry_id, _ in entries]
    tokens_after = sum(fields[b"type"] == b"token" for _, fields in entries[3:])
    assert re.findall(r"^id: (\S+)$", body, re.M) == [ids[-1]]
    resumed = client.get(f"/generations/{generation_id}/stream",
                         headers={"Last-Event-ID": ids[2]}).get_data(as_text=True)
    assert resumed.count('["token",') == tokens_after < tokens
    assert '["done",{}]' in resumed


def test_running_generation_pane_polls_and_shows_streamed_text(app, client, login):
    login()
    generation_id = submit(client, app, "x-post", 2)
    from app.generation.streams import GenerationStream
    with app.app_context():
        stream = GenerationStream(app.extensions["redis"], generation_id)
        stream.token(0, "Hello ")
        stream.token(0, "<b>world</b>")
    pane = client.get(f"/generations/{generation_id}/variants?polling=1").get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in pane
    assert "Hello &lt;b&gt;world&lt;/b&gt;" in pane


def test_llm_output_is_escaped_everywhere(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.default_reply = lambda req: '<script>alert(1)</script><img src=x onerror=alert(2)>'
    generation_id = submit(client, app, "x-post", 1)
    run_worker()
    variant_id = _variant_ids(app, generation_id)[0]
    fake_llm.reset()
    for url in (f"/generations/{generation_id}", f"/generations/{generation_id}/variants",
                f"/variants/{variant_id}", f"/variants/{variant_id}/edit", "/history", "/history?favourites=0"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in page and "<img src=x" not in page, url
        assert "&lt;script&gt;" in page or "&lt;img" in page, url


# --- variant actions -----------------------------------------------------------

def test_favourite_rate_edit_delete(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", 2)
    run_worker()
    first, second = _variant_ids(app, generation_id)
    htmx = {"HX-Request": "true"}

    card = client.post(f"/variants/{first}/favourite", headers=htmx).get_data(as_text=True)
    assert 'aria-pressed="true"' in card and "icon filled" in card  # a filled star icon
    card = client.post(f"/variants/{first}/rate", data={"value": "up"}, headers=htmx).get_data(as_text=True)
    assert card.count('aria-pressed="true"') == 2
    assert client.post(f"/variants/{first}/rate", data={"value": "sideways"}, headers=htmx).status_code == 422

    edited = client.post(f"/variants/{first}/edit", data={"text": "My own better line."}, headers=htmx)
    assert edited.status_code == 200 and "My own better line." in edited.get_data(as_text=True)
    assert "Edited" in edited.get_data(as_text=True)
    empty = client.post(f"/variants/{first}/edit", data={"text": "   "}, headers=htmx)
    assert empty.status_code == 422 and "cannot be empty" in empty.get_data(as_text=True)

    assert client.post(f"/variants/{second}/delete", headers=htmx).status_code == 200
    generation = load(app, generation_id)
    assert [v.id for v in generation.variants] == [first]
    kept = generation.variants[0]
    assert kept.is_favourite and kept.rating == 1 and kept.text == "My own better line."
    assert kept.original_text and kept.original_text != kept.text  # the model's text is kept


def test_edit_rechecks_the_limit(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", 1)
    run_worker()
    (variant_id,) = _variant_ids(app, generation_id)
    client.post(f"/variants/{variant_id}/edit", data={"text": "y" * 300}, headers={"HX-Request": "true"})
    assert load(app, generation_id).variants[0].over_limit


def test_more_like_this_and_regenerate_create_new_generations(app, client, login, run_worker, fake_llm):
    login()
    generation_id = submit(client, app, "x-post", 2)
    run_worker()
    variant_id = _variant_ids(app, generation_id)[0]
    source_text = load(app, generation_id).variants[0].text

    response = client.post(f"/variants/{variant_id}/more", headers={"HX-Request": "true"})
    assert response.status_code == 204
    more_id = int(response.headers["HX-Redirect"].rsplit("/", 1)[-1])
    response = client.post(f"/generations/{generation_id}/regenerate")
    assert response.status_code == 302
    regen_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    run_worker()

    more, regen, original = load(app, more_id), load(app, regen_id), load(app, generation_id)
    assert more.parent_variant_id == variant_id and source_text in more.user_prompt
    assert regen.inputs == original.inputs and regen.status == "succeeded"
    assert len(original.variants) == 2  # nothing overwritten
    assert _count(app, Generation) == 3


# --- tenancy -------------------------------------------------------------------

def test_another_workspace_gets_404_and_no_data(app, client, login, run_worker):
    login("owner@example.com")
    generation_id = submit(client, app, "x-post", 1)
    run_worker()
    (variant_id,) = _variant_ids(app, generation_id)
    text = load(app, generation_id).variants[0].text

    intruder = app.test_client()
    login("intruder@example.com", as_client=intruder)
    for method, url in [
        ("get", f"/generations/{generation_id}"), ("get", f"/generations/{generation_id}/variants"),
        ("get", f"/generations/{generation_id}/stream"), ("post", f"/generations/{generation_id}/regenerate"),
        ("get", f"/variants/{variant_id}"), ("post", f"/variants/{variant_id}/favourite"),
        ("post", f"/variants/{variant_id}/rate"), ("get", f"/variants/{variant_id}/edit"),
        ("post", f"/variants/{variant_id}/edit"), ("post", f"/variants/{variant_id}/delete"),
        ("post", f"/variants/{variant_id}/more"),
    ]:
        response = getattr(intruder, method)(url)
        assert response.status_code == 404, url
        assert text not in response.get_data(as_text=True)
    assert text not in intruder.get("/history").get_data(as_text=True)
    assert len(load(app, generation_id).variants) == 1
    assert _count(app, Generation) == 1


def test_anonymous_users_are_sent_to_login(app, client):
    for url in ("/templates", "/history", "/write/x-post", "/generations/1", "/generations/1/stream"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
