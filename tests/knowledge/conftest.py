"""Knowledge fixtures: a Pro team's owner client, and helpers to add items through the pages."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from app.extensions import db
from app.knowledge.models import KnowledgeItem


def add_item(client, title: str, body: str, kind: str = "product", tags: str = "") -> int:
    response = client.post("/knowledge/new", data={"kind": kind, "title": title, "body": body, "tags": tags})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].rsplit("/", 1)[-1])


def upload(client, filename: str, data: bytes, kind: str = "product", title: str = "", tags: str = ""):
    return client.post("/knowledge/upload", data={"kind": kind, "title": title, "tags": tags,
                                                  "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def item_count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(KnowledgeItem)).all())


@pytest.fixture
def owner(team):
    """The logged-in owner of a Pro workspace."""
    return team.client("owner@example.com")
