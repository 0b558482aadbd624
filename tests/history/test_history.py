"""History: newest first, paginated, filtered by template and favourites, searchable."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from app.generation.models import Variant
from tests.fakes.openai_server import reply
from tests.generation.helpers import submit


def test_history_lists_newest_first_and_paginates(app, client, login, run_worker):
    login()
    app.config["HISTORY_PAGE_SIZE"] = 2
    try:
        ids = [submit(client, app, "x-post", 1, f_topic=f"Topic number {n}") for n in range(3)]
        run_worker()
        first = client.get("/history").get_data(as_text=True)
        assert first.index(f'data-generation-id="{ids[2]}"') < first.index(f'data-generation-id="{ids[1]}"')
        assert f'data-generation-id="{ids[0]}"' not in first and "3 generations" in first
        assert "Newer" not in first
        older = re.search(r'href="(/history\?after=[^"]+)"', first).group(1)
        second = client.get(older.replace("&amp;", "&")).get_data(as_text=True)
        assert f'data-generation-id="{ids[0]}"' in second and f'data-generation-id="{ids[1]}"' not in second
        assert "Older" not in second
        newer = re.search(r'href="(/history\?before=[^"]+)"', second).group(1)
        back = client.get(newer.replace("&amp;", "&")).get_data(as_text=True)
        assert [int(i) for i in re.findall(r'data-generation-id="(\d+)"', back)] == [ids[2], ids[1]]
        assert client.get("/history?page=99").status_code == 200
        assert client.get("/history?after=not-a-cursor").status_code == 404
    finally:
        app.config["HISTORY_PAGE_SIZE"] = 20


def test_filter_by_template_and_favourites(app, client, login, run_worker):
    login()
    x_id = submit(client, app, "x-post", 1)
    meta_id = submit(client, app, "meta-description", 1)
    run_worker()
    page = client.get("/history?template=meta-description").get_data(as_text=True)
    assert f'data-generation-id="{meta_id}"' in page and f'data-generation-id="{x_id}"' not in page

    with app.app_context():
        variant = db.session.scalars(select(Variant).where(Variant.generation_id == x_id)).one()
        variant_id = variant.id
    client.post(f"/variants/{variant_id}/favourite")
    page = client.get("/history?favourites=1").get_data(as_text=True)
    assert f'data-generation-id="{x_id}"' in page and f'data-generation-id="{meta_id}"' not in page


def test_full_text_search_over_inputs_and_outputs(app, client, login, run_worker, fake_llm):
    login()
    fake_llm.script(reply("Sparkling lemonade for hot afternoons."), reply("Cosy wool socks for winter."))
    lemon = submit(client, app, "x-post", 1, f_topic="Summer drinks launch")
    socks = submit(client, app, "x-post", 1, f_topic="Knitwear sale")
    run_worker()
    by_output = client.get("/history?q=LEMONADE").get_data(as_text=True)
    assert f'data-generation-id="{lemon}"' in by_output and f'data-generation-id="{socks}"' not in by_output
    by_input = client.get("/history?q=knitwear").get_data(as_text=True)
    assert f'data-generation-id="{socks}"' in by_input and f'data-generation-id="{lemon}"' not in by_input
    both_words = client.get("/history?q=wool+winter").get_data(as_text=True)
    assert f'data-generation-id="{socks}"' in both_words
    nothing = client.get("/history?q=100%25_zebra").get_data(as_text=True)
    assert "Nothing matches" in nothing

    # Edits are searchable too.
    with app.app_context():
        variant_id = db.session.scalars(select(Variant.id).where(Variant.generation_id == lemon)).one()
    client.post(f"/variants/{variant_id}/edit", data={"text": "Iced hibiscus tea."})
    assert f'data-generation-id="{lemon}"' in client.get("/history?q=hibiscus").get_data(as_text=True)


def test_htmx_gets_only_the_list(app, client, login):
    login()
    partial = client.get("/history?q=x", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial
    boosted = client.get("/history", headers={"HX-Request": "true", "HX-Boosted": "true"}).get_data(as_text=True)
    assert "<html" in boosted


def test_generation_page_shows_inputs_version_and_model(app, client, login, run_worker):
    login()
    generation_id = submit(client, app, "x-post", 1, f_topic="Our spring launch")
    run_worker()
    page = client.get(f"/generations/{generation_id}").get_data(as_text=True)
    assert "Our spring launch" in page
    assert "Template version" in page and "fake-model" in page
