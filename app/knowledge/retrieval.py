"""Full-text retrieval of passages, in the database, offline: SQLite FTS5 (bm25) or PostgreSQL
(tsvector + GIN, ts_rank).

The query comes from a generation's inputs, which are user text: it is reduced to word tokens
(letters and digits only), stop words and duplicates dropped, at most MAX_TERMS of them, and each is
passed as a bound parameter (PostgreSQL: one plainto_tsquery per term, OR-ed) or as a quoted FTS5
string (SQLite: `"term"`, quotes doubled), joined with OR. So no input can inject FTS syntax
(NEAR, column filters, `*`, `-`, parentheses) or SQL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import bindparam, text

from app.extensions import db

MAX_TERMS = 32
MIN_TERM_CHARS = 2
STOP_WORDS = frozenset("""
a an and are as at be but by for from has have in into is it its of on or our so than that the their them then there
these they this to was we were what when where which who will with you your about all also any can do does not only
more most must new no out over such up very just get make write copy use using per via
""".split())


@dataclass(frozen=True)
class Hit:
    passage_id: int
    item_id: int
    title: str
    heading: str
    text: str
    score: float  # larger is more relevant, on both dialects


def terms(inputs: str) -> list[str]:
    """The search terms of some input text: lower-case words, no stop words, no repeats, bounded."""
    seen: list[str] = []
    for word in re.findall(r"[^\W_]+", inputs.lower()):
        if len(word) < MIN_TERM_CHARS or word in STOP_WORDS or word in seen:
            continue
        seen.append(word[:60])
        if len(seen) == MAX_TERMS:
            break
    return seen


def fts5_query(words: list[str]) -> str:
    """An FTS5 MATCH expression that ORs the words, each as a quoted string (so it is only ever a term)."""
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def search(workspace_id: int, query_text: str, *, item_ids: list[int] | None = None, limit: int = 20) -> list[Hit]:
    """Passages of the workspace's active items that match the query, most relevant first.

    With `item_ids`, only passages of those items (the caller has checked they are this workspace's).
    """
    words = terms(query_text)
    if not words or item_ids == []:
        return []
    dialect = db.session.get_bind().dialect.name
    params: dict = {"workspace_id": workspace_id, "limit": limit}
    only = ""
    if item_ids is not None:
        only = " AND p.item_id IN :item_ids"
        params["item_ids"] = list(item_ids)
    if dialect == "postgresql":
        tsquery = " || ".join(f"plainto_tsquery('english', :t{i})" for i in range(len(words)))
        params.update({f"t{i}": w for i, w in enumerate(words)})
        sql = (
            "SELECT p.id, p.item_id, i.title, p.heading, p.text, ts_rank(p.search_vector, q.query) AS score "
            f"FROM knowledge_passages p JOIN knowledge_items i ON i.id = p.item_id, (SELECT {tsquery} AS query) q "
            "WHERE p.workspace_id = :workspace_id AND NOT i.archived AND p.search_vector @@ q.query"
            f"{only} ORDER BY score DESC, p.id LIMIT :limit"
        )
    else:
        params["match"] = fts5_query(words)
        sql = (
            "SELECT p.id, p.item_id, i.title, p.heading, p.text, -bm25(knowledge_passages_fts) AS score "
            "FROM knowledge_passages_fts JOIN knowledge_passages p ON p.id = knowledge_passages_fts.rowid "
            "JOIN knowledge_items i ON i.id = p.item_id "
            "WHERE knowledge_passages_fts MATCH :match AND p.workspace_id = :workspace_id AND NOT i.archived"
            f"{only} ORDER BY score DESC, p.id LIMIT :limit"
        )
    statement = text(sql)
    if item_ids is not None:
        statement = statement.bindparams(bindparam("item_ids", expanding=True))
    rows = db.session.execute(statement, params).all()
    return [Hit(r[0], r[1], r[2], r[3], r[4], float(r[5])) for r in rows]
