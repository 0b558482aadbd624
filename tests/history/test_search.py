"""History search at scale: a word index (prefixes, phrases, ranking, highlighting), cursor
pages and capped counts, on SQLite (FTS5) and PostgreSQL (tsvector + GIN) alike."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.catalog.models import Template
from app.extensions import db
from app.generation.models import Generation, Variant
from app.history import search
from app.workspaces.models import Membership


def _ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-generation-id="(\d+)"', page)]


@pytest.fixture
def add(app, team):
    """Write a finished generation with one variant of the given text straight to the database."""
    state = {"t": datetime(2026, 11, 1, 9, 0)}

    def write(text: str, workspace_id: int | None = None, topic: str = "Spring") -> int:
        with app.app_context():
            template = db.session.scalars(select(Template).where(Template.slug == "x-post")).one()
            state["t"] += timedelta(minutes=1)
            generation = Generation(
                workspace_id=workspace_id or team.workspace_id, user_id=None, template_id=template.id,
                template_version_id=template.published_version_id, inputs={"topic": topic}, tone="Bold",
                language="English", variant_count=1, creativity=0.7, system_prompt="s", user_prompt="u",
                status="succeeded", search_document=f"{template.name}\n{topic}\n{text}".lower(),
                created_at=state["t"])
            generation.variants = [Variant(position=0, text=text)]
            db.session.add(generation)
            db.session.commit()
            return generation.id

    return write


def test_prefixes_phrases_and_every_word(app, team, add):
    lemonade = add("Sparkling lemonade for hot afternoons")
    tea = add("Iced tea for hot afternoons, lemon on the side")
    owner = team.client("owner@example.com")
    assert set(_ids(owner.get("/history?q=lemon").get_data(as_text=True))) == {lemonade, tea}  # word starts
    assert _ids(owner.get("/history?q=emonade").get_data(as_text=True)) == []  # not the middle of words
    assert _ids(owner.get("/history?q=lemon+iced").get_data(as_text=True)) == [tea]  # every word
    assert set(_ids(owner.get('/history?q="hot+afternoons"').get_data(as_text=True))) == {tea, lemonade}
    assert _ids(owner.get('/history?q="afternoons+hot"').get_data(as_text=True)) == []  # a phrase keeps its order
    assert _ids(owner.get('/history?q="sparkling lemonade"').get_data(as_text=True)) == [lemonade]
    assert _ids(owner.get("/history?q=%25%25+%27%22").get_data(as_text=True))  # nothing searchable: all rows


def test_best_match_first(app, team, add):
    once = add("A launch for our new mugs")
    often = add("Launch day: launch the launch of the season")
    newer = add("Nothing relevant here")
    page = team.client("owner@example.com").get("/history?q=launch").get_data(as_text=True)
    assert _ids(page) == [often, once] and newer not in _ids(page)
    assert "2 matches, best first." in page


def test_matches_are_highlighted_and_escaped(app, team, add):
    add("<script>alert(1)</script> Lemonade & <b>tea</b>", topic="<i>Summer</i> drinks")
    page = team.client("owner@example.com").get("/history?q=lemon+summer").get_data(as_text=True)
    assert "<mark>Lemonade</mark> &amp; &lt;b&gt;tea&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "&lt;i&gt;<mark>Summer</mark>&lt;/i&gt; drinks" in page


def test_highlight_marks_word_starts_only():
    assert search.highlight("Lemonade, lemons & melons", ["lemon"]) == \
        "<mark>Lemonade</mark>, <mark>lemons</mark> &amp; melons"
    assert search.highlight("a&amp;b", ["amp"]) == "a&amp;<mark>amp</mark>;b"  # matched on the text, then escaped
    assert search.highlight("<b>", []) == "&lt;b&gt;"


def test_other_workspaces_never_match(app, team, add, make_user):
    mine = add("Lemonade for us")
    other_owner = make_user("other@example.com")
    with app.app_context():
        other_ws = db.session.scalars(select(Membership.workspace_id).where(Membership.user_id == other_owner)).one()
    add("Lemonade for them", workspace_id=other_ws)
    assert _ids(team.client("owner@example.com").get("/history?q=lemonade").get_data(as_text=True)) == [mine]


def test_counts_stop_at_the_cap(app, team, add, monkeypatch):
    for n in range(4):
        add(f"Copy {n} about lemonade")
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    monkeypatch.setattr(search, "SEARCH_WINDOW", 3)
    owner = team.client("owner@example.com")
    assert "3+ generations" in owner.get("/history").get_data(as_text=True)
    page = owner.get("/history?q=lemonade").get_data(as_text=True)
    assert "3+ matches, best first among the newest 3" in page and len(_ids(page)) == 3


def test_search_pages_stay_in_the_window(app, team, add):
    ids = [add(f"Launch copy number {n}") for n in range(5)]
    app.config["HISTORY_PAGE_SIZE"] = 2
    try:
        owner = team.client("owner@example.com")
        pages = [_ids(owner.get(f"/history?q=launch&page={n}").get_data(as_text=True)) for n in (1, 2, 3)]
        assert sorted(sum(pages, [])) == sorted(ids) and [len(p) for p in pages] == [2, 2, 1]
        assert "More matches" not in owner.get("/history?q=launch&page=3").get_data(as_text=True)
    finally:
        app.config["HISTORY_PAGE_SIZE"] = 20


def test_walking_every_page_by_cursor(app, team, add):
    ids = [add(f"Copy {n}") for n in range(7)]
    app.config["HISTORY_PAGE_SIZE"] = 3
    try:
        owner = team.client("owner@example.com")
        seen, url = [], "/history"
        while url:
            page = owner.get(url).get_data(as_text=True)
            seen += _ids(page)
            found = re.search(r'href="(/history\?after=[^"]+)"', page)
            url = found.group(1).replace("&amp;", "&") if found else None
        assert seen == list(reversed(ids))
    finally:
        app.config["HISTORY_PAGE_SIZE"] = 20


def test_parse_bounds_the_query():
    parsed = search.parse('"Summer sale" lemonade ' + "x " * 50)
    assert parsed.phrases == [["summer", "sale"]] and parsed.words[0] == "lemonade"
    assert len(parsed.all_words) == search.MAX_TERMS
    assert search.parse("a" * 500).words == ["a" * search.MAX_TERM_CHARS]
    assert not search.parse("%_ '\\")


def test_catalogue_search_takes_wildcards_literally(app, team):
    owner = team.client("owner@example.com")
    for wildcard in ("%25", "_", "%25_%25"):
        assert "No template matches" in owner.get(f"/templates?q={wildcard}").get_data(as_text=True)
    assert "No template matches" not in owner.get("/templates?q=post").get_data(as_text=True)
