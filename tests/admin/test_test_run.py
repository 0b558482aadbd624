"""Test runs (an RQ job, polled) and per-template model parameters reaching the LLM."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from app.extensions import db
from app.quota.models import QuotaCharge, QuotaLedger
from tests.admin.conftest import editor_form
from tests.fakes.openai_server import error, reply
from tests.generation.helpers import submit


def _job_id(body: str) -> str:
    return re.search(r"/test-runs/(test-run-[0-9a-f]{32})", body).group(1)


def test_a_test_run_shows_outputs_checks_and_tokens_and_charges_nobody(app, admin_client, run_worker, fake_llm):
    fake_llm.script(reply("Juniper mugs are here."), reply("x" * 300))
    form = editor_form(**{"llm-model": "special-model", "llm-temperature": "0.2", "llm-max_tokens": "123"})
    response = admin_client.post("/admin/templates/test-run", data=form, headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 202
    assert 'hx-trigger="every 1s"' in body and "queued" in body.lower()
    job_id = _job_id(body)
    run_worker()
    body = admin_client.get(f"/admin/templates/test-runs/{job_id}").get_data(as_text=True)
    assert 'data-status="finished"' in body and "every 1s" not in body
    assert "Juniper mugs are here." in body
    assert "✓ within limit" in body and "22 / 280" in body
    assert "✗ over limit" in body and "300 / 280" in body
    assert re.search(r"\d+ prompt \+ \d+ completion tokens", body)
    assert "not charged" in body
    requests = fake_llm.chat_requests
    assert len(requests) == 2  # the draft's default variant count; no repair request
    sent = requests[0]["json"]
    assert sent["model"] == "special-model" and sent["temperature"] == 0.2 and sent["max_tokens"] == 123
    assert sent["messages"][1]["content"] == "Announce Juniper mugs.\nFor Makers."
    with app.app_context():
        assert db.session.scalar(select(func.count(QuotaCharge.id))) == 0
        assert db.session.scalar(select(func.count(QuotaLedger.id))) == 0


def test_a_test_run_cleans_output_as_a_generation_does(admin_client, run_worker, fake_llm):
    """Preamble, echoed field labels and markdown syntax go, as in the marketer's results, so what the
    template author sees is what marketers will get."""
    fake_llm.script(reply("Sure! Here is your copy:\n\nProduct: **Juniper mugs**, made for makers."),
                    reply("Audience: Makers love *Juniper* mugs."))
    job_id = _job_id(admin_client.post("/admin/templates/test-run", data=editor_form()).get_data(as_text=True))
    run_worker()
    body = admin_client.get(f"/admin/templates/test-runs/{job_id}").get_data(as_text=True)
    assert "Juniper mugs, made for makers." in body and "Makers love Juniper mugs." in body
    assert "Here is your copy" not in body and "Product:" not in body and "Audience:" not in body
    assert "**" not in body and "*Juniper*" not in body


def test_a_failing_model_is_reported_per_variant(admin_client, run_worker, fake_llm):
    fake_llm.script(*[error(401, "bad key")] * 2)
    job_id = _job_id(admin_client.post("/admin/templates/test-run", data=editor_form()).get_data(as_text=True))
    run_worker()
    body = admin_client.get(f"/admin/templates/test-runs/{job_id}").get_data(as_text=True)
    assert "rejected our credentials" in body and "failed" in body


def test_a_broken_draft_is_not_sent(admin_client, fake_llm):
    body = admin_client.post("/admin/templates/test-run",
                             data=editor_form(user_prompt="{{ nope }}")).get_data(as_text=True)
    assert "Cannot test-run this draft" in body and "unknown variable" in body
    assert fake_llm.chat_requests == []


def test_test_runs_are_private_to_who_started_them(app, admin_client, make_user):
    job_id = _job_id(admin_client.post("/admin/templates/test-run", data=editor_form()).get_data(as_text=True))
    from app.auth.models import User
    other = make_user("root2@example.com")
    with app.app_context():
        db.session.get(User, other).is_site_admin = True
        db.session.commit()
    client = app.test_client()
    client.post("/login", data={"email": "root2@example.com", "password": "correct-horse-battery"})
    assert client.get(f"/admin/templates/test-runs/{job_id}").status_code == 404
    assert admin_client.get("/admin/templates/test-runs/test-run-" + "0" * 32).status_code == 404
    assert admin_client.get("/admin/templates/test-runs/generation-1").status_code == 404


def test_generations_use_the_template_model_and_parameters(app, admin_client, client, login, run_worker, fake_llm):
    form = editor_form(publish="1", **{"llm-model": "tuned-model", "llm-temperature": "1.0", "llm-max_tokens": "321"})
    assert admin_client.post("/admin/templates/new", data=form).status_code == 302
    login("marketer@example.com")
    generation_id = submit(client, app, "launch-tweet", 1, creativity="balanced")
    run_worker()
    sent = fake_llm.chat_requests[0]["json"]
    assert sent["model"] == "tuned-model" and sent["max_tokens"] == 321
    assert sent["temperature"] == 1.0  # "balanced" is the template's temperature
    from app.generation.models import Generation
    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        assert generation.status == "succeeded" and generation.model == "tuned-model"
        assert generation.template_version.number == 1


def test_the_site_default_model_applies_when_a_template_names_none(app, admin_client, client, login, run_worker,
                                                                   fake_llm):
    admin_client.post("/admin/llm", data={"default_model": "site-wide-model"})
    login("marketer@example.com")
    submit(client, app, "x-post", 1, creativity="low")
    run_worker()
    sent = fake_llm.chat_requests[0]["json"]
    assert sent["model"] == "site-wide-model" and sent["temperature"] == 0.3 and sent["max_tokens"] == 800
