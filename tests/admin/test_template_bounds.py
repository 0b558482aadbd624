"""Hostile templates through the web: refused at preview, save, test run and submit, with the bound
named, and rendered without the database write lock held (SQLite)."""
from __future__ import annotations

import html
import sqlite3
import threading

import pytest
from sqlalchemy import func, select

from app.catalog import rendering
from app.catalog.models import Template
from app.extensions import db
from app.generation.models import Generation
from app.quota.models import QuotaCharge, QuotaLedger
from tests.admin.conftest import editor_form, template_by_slug
from tests.catalog.test_render_bounds import DOS_PAYLOADS
from tests.generation.helpers import form_data

CUBE = ("{% for a in range(count) %}{% for b in range(count) %}{% for c in range(count) %}"
        "{% endfor %}{% endfor %}{% endfor %}Announce {{ product }}.")


@pytest.fixture(autouse=True)
def quick_limits(app, monkeypatch):
    """As in tests/catalog/test_render_bounds.py: CPU bound short, wall bound out of a busy machine's reach."""
    monkeypatch.setitem(app.config, "RENDER_CPU_SECONDS", 0.3)
    monkeypatch.setitem(app.config, "RENDER_WALL_SECONDS", 60)


@pytest.fixture
def author(client, login):
    """Any Free user: they own a workspace, so they can write its templates."""
    login("free@example.com")
    return client


def _counted_form(slug: str = "launch-tweet", user_prompt: str = CUBE, **overrides) -> dict:
    """The editor form with a number field `count` (sample 2) next to `product`."""
    return editor_form(slug, **{
        "fields-1-name": "count", "fields-1-label": "Count", "fields-1-type": "number", "fields-1-options": None,
        "fields-1-min": "1", "fields-1-max": "1000", "fields-1-sample": "2", "user_prompt": user_prompt,
        **overrides})


@pytest.mark.parametrize("name", ["nested loops over range", "replace growth", "recursive macro",
                                  "namespace string doubled", "exponent chain", "output size",
                                  "deeply nested expression"])  # the last is refused while parsing, here
def test_preview_and_save_refuse_a_hostile_workspace_template_naming_the_bound(app, author, name):
    source, _bound, message = DOS_PAYLOADS[name]
    form = editor_form(user_prompt=source)
    body = html.unescape(author.post("/workspace/templates/preview", data=form).get_data(as_text=True))
    shown = body.split('data-testid="preview-user_prompt-error"', 1)[1][:800]
    assert message in shown, shown
    response = author.post("/workspace/templates/new", data=form)
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "Not saved." in page and message in page
    assert template_by_slug(app, "launch-tweet") is None


def test_saving_a_new_version_of_an_existing_template_is_refused_too(app, author):
    assert author.post("/workspace/templates/new", data=editor_form()).status_code == 302
    template = template_by_slug(app, "launch-tweet")
    source = DOS_PAYLOADS["recursive loop"][0]
    response = author.post(f"/workspace/templates/{template.id}/edit", data=editor_form(system_prompt=source))
    assert response.status_code == 422
    assert "recursion limit" in html.unescape(response.get_data(as_text=True))


def test_a_test_run_of_a_hostile_template_is_refused_and_enqueues_nothing(app, author):
    response = author.post("/workspace/templates/test-run", data=editor_form(user_prompt=DOS_PAYLOADS["center"][0]))
    body = html.unescape(response.get_data(as_text=True))
    assert "MB of memory (the limit)" in body
    assert "/test-runs/" not in body
    assert app.extensions["redis"].keys("rq:job:*") == []


@pytest.mark.parametrize("user_prompt, count, message", [
    (CUBE, "1000", "s of CPU time (the limit)"),
    ("{{ product * count }}", "1000", "repetition too large (the limit is 20,000 characters)"),
])
def test_inputs_that_only_trigger_a_bound_at_submit_get_a_4xx_and_are_not_charged(app, author, user_prompt, count,
                                                                                   message):
    response = author.post("/workspace/templates/new", data=_counted_form(user_prompt=user_prompt, publish="1"))
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    inputs = form_data(app, "launch-tweet", 1, f_count=count, f_product="x" * 100)
    response = author.post("/write/launch-tweet", data=inputs)
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert "goes past a limit, so nothing was generated or charged" in page and message in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Generation)) == 0
        assert db.session.scalar(select(func.count()).select_from(QuotaCharge)) == 0
        assert db.session.scalar(select(func.coalesce(func.sum(QuotaLedger.reserved), 0))) == 0
    # The same template with small inputs still works.
    assert author.post("/write/launch-tweet", data=form_data(app, "launch-tweet", 1, f_count="2")).status_code == 302


def test_a_preview_never_shows_a_python_address(author):
    form = editor_form(user_prompt="{{ [product.upper] }} {{ cycler('a') }}")
    body = author.post("/workspace/templates/preview", data=form).get_data(as_text=True)
    assert "[object]" in body and " at 0x" not in body


# --- No write lock while rendering (SQLite) -------------------------------------------------------

def _sqlite_path(app) -> str:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite's database-wide write lock")
        return db.engine.url.database


def _take_write_lock(path: str) -> None:
    """What another user's submit does: BEGIN IMMEDIATE, write, commit; fails at once if the lock is held."""
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE templates SET description = description WHERE id = -1")
        other.execute("COMMIT")
    finally:
        other.close()


@pytest.fixture
def lock_probe(app, monkeypatch):
    """Every render first checks that the request has no open transaction and, on SQLite, that
    another connection can take the write lock right now."""
    with app.app_context():
        path = db.engine.url.database if db.engine.dialect.name == "sqlite" else None
    renders = []
    real_render = rendering.RenderPool.render

    def probing_render(self, request, wall_seconds):
        assert not db.session().in_transaction()
        if path:
            _take_write_lock(path)  # sqlite3.OperationalError "database is locked" if this request holds it
        renders.append(request["source"])
        return real_render(self, request, wall_seconds)

    monkeypatch.setattr(rendering.RenderPool, "render", probing_render)
    return renders


def test_preview_save_edit_test_run_and_submit_render_without_the_write_lock(app, author, lock_probe):
    assert author.post("/workspace/templates/preview", data=_counted_form()).status_code == 200
    assert author.post("/workspace/templates/test-run", data=_counted_form()).status_code == 202
    assert author.post("/workspace/templates/new", data=_counted_form(publish="1")).status_code == 302
    template = template_by_slug(app, "launch-tweet")
    response = author.post(f"/workspace/templates/{template.id}/edit", data=_counted_form(publish="1"))
    assert response.status_code == 302
    response = author.post(f"/workspace/templates/{template.id}/edit", data=_counted_form(user_prompt="{{ nope }}"))
    assert response.status_code == 422  # the error page renders its preview without the lock too
    assert author.post("/write/launch-tweet", data=form_data(app, "launch-tweet", 1, f_count="2")).status_code == 302
    assert len(lock_probe) >= 12


def test_other_users_write_while_a_hostile_preview_renders(app, author, monkeypatch):
    path = _sqlite_path(app)
    monkeypatch.setitem(app.config, "RENDER_CPU_SECONDS", 0.6)
    started = threading.Event()
    real_render = rendering.RenderPool.render

    def signalling_render(self, request, wall_seconds):
        started.set()
        return real_render(self, request, wall_seconds)

    monkeypatch.setattr(rendering.RenderPool, "render", signalling_render)
    responses = []
    form = editor_form(user_prompt=DOS_PAYLOADS["nested loops over range"][0])
    preview = threading.Thread(target=lambda: responses.append(author.post("/workspace/templates/preview", data=form)))
    preview.start()
    assert started.wait(10)
    _take_write_lock(path)  # would raise "database is locked" while the preview holds BEGIN IMMEDIATE
    preview.join()
    assert "s of CPU time (the limit)" in html.unescape(responses[0].get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Template).where(Template.slug == "launch-tweet")) == 0


def test_a_stored_version_that_breaks_a_bound_cannot_be_published(app, author):
    # A version saved before the bounds existed: written straight to the database.
    assert author.post("/workspace/templates/new", data=editor_form(publish="1")).status_code == 302
    template = template_by_slug(app, "launch-tweet")
    with app.app_context():
        from app.catalog.models import TemplateVersion
        first = db.session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template.id)).one()
        db.session.add(TemplateVersion(
            template_id=template.id, number=2, fields=first.fields, output=first.output, message="old",
            system_prompt=first.system_prompt, user_prompt=DOS_PAYLOADS["recursive macro"][0],
            name=first.name, category=first.category, description=first.description, icon=first.icon))
        db.session.commit()
    response = author.post(f"/workspace/templates/{template.id}/versions/2/publish", follow_redirects=True)
    page = html.unescape(response.get_data(as_text=True))
    assert "Version 2 cannot be published" in page and "more than 50 deep (the limit)" in page
    assert template_by_slug(app, "launch-tweet").published_version.number == 1


def test_regenerate_with_a_newer_version_that_these_inputs_push_past_a_bound_is_refused(app, author):
    form = _counted_form(user_prompt="Announce {{ product }} {{ count }} times.", publish="1")
    assert author.post("/workspace/templates/new", data=form).status_code == 302
    response = author.post("/write/launch-tweet", data=form_data(app, "launch-tweet", 1, f_count="1000"))
    assert response.status_code == 302
    generation_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    template = template_by_slug(app, "launch-tweet")
    assert author.post(f"/workspace/templates/{template.id}/edit", data=_counted_form(publish="1")).status_code == 302

    response = author.post(f"/generations/{generation_id}/regenerate", follow_redirects=True)
    assert response.status_code == 200  # was a 500
    assert "goes past a limit, so nothing was generated or charged" in html.unescape(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Generation)) == 1
