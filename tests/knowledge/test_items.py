"""Knowledge items through the pages: typed, uploaded (real PDF and DOCX), edited, archived; bad uploads;
the plan gate; tenancy."""
from __future__ import annotations

import zipfile
import io

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.knowledge.models import KnowledgeItem, KnowledgePassage
from tests.knowledge import files
from tests.knowledge.conftest import add_item, item_count, upload


def _passages(app, item_id: int) -> list[tuple[str, str]]:
    with app.app_context():
        return [(p.heading, p.text) for p in db.session.scalars(
            select(KnowledgePassage).where(KnowledgePassage.item_id == item_id).order_by(KnowledgePassage.position))]


def test_typed_item_is_split_by_headings_and_paragraphs(app, owner):
    body = "# Specs\nHolds 32 oz.\n\nSteel, double-walled.\n\n# Price\nCosts $14.99."
    item_id = add_item(owner, "Hydra bottle", body, tags="Bottles, summer launch, bottles")
    assert _passages(app, item_id) == [("Specs", "Holds 32 oz.\n\nSteel, double-walled."), ("Price", "Costs $14.99.")]
    with app.app_context():
        assert db.session.get(KnowledgeItem, item_id).tags == ["bottles", "summer launch"]
    page = owner.get(f"/knowledge/{item_id}").get_data(as_text=True)
    assert "Costs $14.99." in page and "2 passages" in page


def test_long_text_is_split_into_bounded_passages(app, owner):
    sentence = "The Hydra bottle keeps drinks cold for twenty four hours. "
    item_id = add_item(owner, "Long", sentence * 60)
    passages = _passages(app, item_id)
    assert len(passages) >= 3 and all(len(t) <= 1000 for _, t in passages)
    assert "".join(t.replace(" ", "") for _, t in passages) == (sentence * 60).replace(" ", "")


def test_pdf_upload_extracts_text(app, owner):
    data = files.pdf([["Hydra bottle, 32 oz", "Price: $14.99"], ["Made of recycled steel"]])
    response = upload(owner, "sheet.pdf", data, tags="bottles")
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    item_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    with app.app_context():
        item = db.session.get(KnowledgeItem, item_id)
        assert (item.title, item.source, item.filename) == ("sheet", "pdf", "sheet.pdf")
        assert "Price: $14.99" in item.body and "recycled steel" in item.body
    assert any("recycled steel" in t for _, t in _passages(app, item_id))


def test_docx_upload_keeps_headings_and_tables(app, owner):
    data = files.docx("Specs", ["Holds 32 oz.", "Costs $14.99."], table=[["Colour", "Ocean blue"]])
    response = upload(owner, "Hydra.docx", data, title="Hydra spec sheet")
    assert response.status_code == 302, response.get_data(as_text=True)[:1000]
    item_id = int(response.headers["Location"].rsplit("/", 1)[-1])
    passages = _passages(app, item_id)
    assert passages[0][0] == "Specs"
    joined = "\n".join(t for _, t in passages)
    assert "Holds 32 oz." in joined and "Colour | Ocean blue" in joined


def _zip_without_document() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    return out.getvalue()


BAD_UPLOADS = [
    ("empty.md", b"", "The file is empty."),
    ("blank.txt", b"  \n\n ", "The file is empty."),
    ("fake.pdf", b"just some text pretending", "is not PDF"),
    ("pdf-as-text.txt", files.pdf([["Hello"]]), "is not plain text"),
    ("text-as-docx.docx", b"Hello, plain text", "is not Word (.docx)"),
    ("other-zip.docx", _zip_without_document(), "is not Word (.docx)"),
    ("locked.pdf", files.pdf([["Secret price"]], password="s3cret"), "password-protected"),
    ("scan.pdf", files.pdf([[], []]), "looks like a scan"),
    ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", "damaged"),
    ("broken.docx", b"PK\x03\x04" + b"\x00" * 40, "damaged"),
    ("latin1.txt", "Caf\xe9 cr\xe8me".encode("latin-1"), "not UTF-8"),
    ("notes.rtf", b"{\\rtf1 hello}", "Upload a Markdown"),
]


@pytest.mark.parametrize("filename,data,message", BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
def test_bad_upload_is_refused_with_a_reason_and_nothing_stored(app, owner, filename, data, message):
    response = upload(owner, filename, data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert item_count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(KnowledgePassage)) == 0


def test_upload_over_the_plan_file_limit_is_refused(app, owner, monkeypatch):
    from app.billing import models

    # A small limit keeps the body in memory (werkzeug's test client spools large bodies to files).
    monkeypatch.setitem(models.KNOWLEDGE_LIMITS, "pro", {"file_bytes": 2048, "total_chars": 10_000})
    assert upload(owner, "fits.txt", b"word " * 400).status_code == 302
    response = upload(owner, "huge.txt", b"word " * 420)
    assert response.status_code == 422
    assert "files up to 2 KB" in response.get_data(as_text=True)
    assert item_count(app) == 1


def test_total_size_limit_per_plan(app, owner, monkeypatch):
    from app.billing import models

    monkeypatch.setitem(models.KNOWLEDGE_LIMITS, "pro", {"file_bytes": 2 * 1024 * 1024, "total_chars": 100})
    add_item(owner, "First", "x" * 60)
    response = owner.post("/knowledge/new", data={"kind": "faq", "title": "Second", "body": "y" * 60, "tags": ""})
    assert response.status_code == 422
    assert "holds 100 characters" in response.get_data(as_text=True)
    assert item_count(app) == 1


@pytest.mark.parametrize("tags,message", [("a" * 41, "at most 40 characters"), ("<script>", "characters a tag"),
                                          (",".join(f"t{i}" for i in range(11)), "at most 10 tags")])
def test_bad_tags_are_refused(app, owner, tags, message):
    response = owner.post("/knowledge/new", data={"kind": "faq", "title": "T", "body": "B", "tags": tags})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert item_count(app) == 0


def test_edit_resplits_and_keeps_the_index_in_sync(app, owner):
    item_id = add_item(owner, "Hydra", "Holds 32 oz of water.")
    response = owner.post(f"/knowledge/{item_id}/edit", data={"kind": "product", "title": "Hydra XL",
                                                              "body": "# Size\nHolds 40 oz of lemonade.", "tags": "xl"})
    assert response.status_code == 302
    assert _passages(app, item_id) == [("Size", "Holds 40 oz of lemonade.")]
    from app.knowledge import retrieval
    with app.app_context():
        ws = db.session.get(KnowledgeItem, item_id).workspace_id
        assert [h.text for h in retrieval.search(ws, "lemonade")] == ["Holds 40 oz of lemonade."]
        assert retrieval.search(ws, "water") == []


def test_archive_hides_from_retrieval_and_delete_removes_from_index(app, owner):
    from app.knowledge import retrieval

    item_id = add_item(owner, "Hydra", "Holds 32 oz of water.")
    with app.app_context():
        ws = db.session.get(KnowledgeItem, item_id).workspace_id
    owner.post(f"/knowledge/{item_id}/archive")
    with app.app_context():
        assert db.session.get(KnowledgeItem, item_id).archived
        assert retrieval.search(ws, "water") == []
    assert "Hydra" in owner.get("/knowledge?archived=1").get_data(as_text=True)
    owner.post(f"/knowledge/{item_id}/archive")
    with app.app_context():
        assert len(retrieval.search(ws, "water")) == 1
    assert owner.post(f"/knowledge/{item_id}/delete").status_code == 302
    with app.app_context():
        assert item_count(app) == 0
        if db.engine.dialect.name == "sqlite":
            assert db.session.execute(text("SELECT count(*) FROM knowledge_passages_fts")).scalar() == 0
        assert retrieval.search(ws, "water") == []


def test_another_workspaces_item_is_404(app, owner, client, login):
    item_id = add_item(owner, "Hydra", "Holds 32 oz of water.")
    login("stranger@example.com")
    for path in (f"/knowledge/{item_id}", f"/knowledge/{item_id}/edit"):
        assert client.get(path).status_code == 404
    for path in (f"/knowledge/{item_id}/archive", f"/knowledge/{item_id}/delete"):
        assert client.post(path).status_code == 404
    assert item_count(app) == 1


def test_members_read_but_do_not_manage(app, owner, team):
    item_id = add_item(owner, "Hydra", "Holds 32 oz of water.")
    team.add("member@example.com")
    member = team.client("member@example.com")
    assert member.get(f"/knowledge/{item_id}").status_code == 200
    assert member.get("/knowledge/new").status_code == 403
    assert member.post(f"/knowledge/{item_id}/delete").status_code == 403


def test_free_workspace_sees_the_upsell_and_cannot_add(app, client, login):
    login()
    page = client.get("/knowledge")
    assert page.status_code == 200 and "Pro and Business plans" in page.get_data(as_text=True)
    response = client.post("/knowledge/new", data={"kind": "faq", "title": "T", "body": "B", "tags": ""})
    assert response.status_code == 402 and "paid feature" in response.get_data(as_text=True)
    assert client.get("/knowledge/upload").status_code == 402
    assert item_count(app) == 0
