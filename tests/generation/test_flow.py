"""The copywriting loop through HTTP: submit, run the real worker, read results."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from app.generation.models import Generation
from app.quota.models import QuotaLedger

FORM = {
    "f_product": "Copydeck",
    "f_description": "An AI copywriter for marketing teams",
    "tone": "Friendly",
    "language": "English",
    "variant_count": "3",
    "creativity": "balanced",
}


def _form_for(client, slug):
    page = client.get(f"/write/{slug}")
    assert page.status_code == 200
    names = set(re.findall(r'name="(f_[a-z0-9_]+)"', page.get_data(as_text=True)))
    return names


def test_generate_streams_and_stores_variants(app, client, login, run_worker, fake_llm):
    login()
    # The fake's built-in reply echoes 40 characters of the prompt, cutting "at most 1000" to "100": the
    # claims check (app/checks) would rightly ask for a repair. This test is about one request per variant.
    fake_llm.default_reply = lambda body: "Variant copy for Copydeck, an AI copywriter."
    names = _form_for(client, "product-description")
    data = {name: "Copydeck, an AI copywriter" for name in names}
    data.update(tone="Friendly", language="English", variant_count="3", creativity="balanced")
    response = client.post("/write/product-description", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    generation_id = int(response.headers["Location"].rsplit("/", 1)[-1])

    run_worker()

    with app.app_context():
        generation = db.session.get(Generation, generation_id)
        assert generation.status == "succeeded", generation.error_message
        assert len(generation.variants) == 3
        assert generation.prompt_tokens > 0 and generation.completion_tokens > 0
        ledger = db.session.scalars(select(QuotaLedger)).one()
        assert (ledger.used, ledger.reserved) == (3, 0)
    assert len(fake_llm.chat_requests) == 3

    stream = client.get(f"/generations/{generation_id}/stream")
    body = stream.get_data(as_text=True)
    assert '["token",' in body and '["done",{}]' in body
    page = client.get(f"/generations/{generation_id}")
    assert page.status_code == 200
    assert "Variant copy for" in page.get_data(as_text=True)
