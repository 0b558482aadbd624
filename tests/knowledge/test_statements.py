"""The knowledge pages cost the same number of SQL statements for 2 items (or passages) as for 20."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from app.extensions import db
from tests.knowledge.conftest import add_item


@contextmanager
def counting(app):
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _cost(app, client, path: str) -> int:
    with counting(app) as statements:
        assert client.get(path).status_code == 200
    return len(statements)


def test_index_and_item_pages_do_not_grow_with_rows(app, owner):
    for i in range(2):
        add_item(owner, f"Item {i}", f"Fact {i}", tags=f"t{i}")
    big = add_item(owner, "Big", "\n\n".join(f"# Part {i}\nFact {i}." for i in range(2)))
    small_index, small_item = _cost(app, owner, "/knowledge"), _cost(app, owner, f"/knowledge/{big}")
    small_form = _cost(app, owner, "/write/x-post")
    for i in range(2, 20):
        add_item(owner, f"Item {i}", f"Fact {i}", tags=f"t{i}")
    bigger = add_item(owner, "Bigger", "\n\n".join(f"# Part {i}\nFact {i}." for i in range(20)))
    assert _cost(app, owner, "/knowledge") == small_index
    assert _cost(app, owner, f"/knowledge/{bigger}") == small_item
    assert _cost(app, owner, "/write/x-post") == small_form  # the generate form lists every item and tag
