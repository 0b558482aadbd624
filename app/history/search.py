"""History at scale: full-text search, ranked and highlighted, and keyset (cursor) pages.

Search. Marketers type whole words and the start of words (the box searches as they
type), product names, and now and then a "quoted phrase"; they do not look for the
middle of a word. So the index is a word index, not a trigram one: every typed word
matches words that start with it ("lemon" finds "lemonade"), quoted words must be
adjacent and in order, all terms must match, results are ranked by relevance.
- PostgreSQL: the stored column generations.search_vector = to_tsvector('simple',
  search_document) with a GIN index; `'word':*` prefix terms, `<->` for phrases,
  ts_rank for the order. The 'simple' configuration (no stemming, no stop words),
  because copy is written in many languages and English stemming would mangle the rest.
- SQLite: the FTS5 table generations_fts (unicode61, diacritics folded), kept in step by
  triggers; `"word"*` prefix terms, "quoted phrases", bm25 for the order.
(pg_trgm would have kept today's mid-word matches, but cannot rank by words, needs three
characters before its index helps, and matches noise such as "ade" inside "lemonade".)

Ranking every match of a common word in a 300,000-generation workspace costs as much as
the matches, so results are ranked within the newest SEARCH_WINDOW matches; the page says
"1,000+ matches" when there are more, and another word narrows them.

Pages. Browsing (no search) is keyset-paginated on (created_at, id): "Older" and "Newer"
carry the last or first row's key, so page 50 costs what page 1 costs, and there is no
COUNT of the whole history; the total is counted up to COUNT_CAP ("1,000+" beyond).
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import ColumnClause, Float, Integer, Select, column, func, literal_column, select, table, text, tuple_

from app.extensions import db
from app.generation.models import Generation

SEARCH_WINDOW = 1000  # matches ranked per search (the newest); more shows "1,000+"
COUNT_CAP = 1000  # history counts its rows up to this, then shows "1,000+"
MAX_TERMS = 8  # words (phrase words included) per search
MAX_TERM_CHARS = 40

_WORD = re.compile(r"[^\W_]+")
_PHRASE = re.compile(r'"([^"]*)"')


class BadCursor(ValueError):
    """A page cursor that was not made by this module (edited or truncated URL)."""


@dataclass
class SearchQuery:
    """What a marketer typed, as words that must all match and phrases whose words must be adjacent."""

    words: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.words or self.phrases)

    @property
    def all_words(self) -> list[str]:
        return self.words + [word for phrase in self.phrases for word in phrase]


def parse(query: str) -> SearchQuery:
    """Split the search box into words and "quoted phrases" (letters and digits only: the
    rest separates words, as the indexes do). Bounded to MAX_TERMS words of MAX_TERM_CHARS."""
    parsed = SearchQuery()
    budget = MAX_TERMS
    for quoted in _PHRASE.findall(query):
        words = [w[:MAX_TERM_CHARS] for w in _WORD.findall(quoted.lower())][:budget]
        budget -= len(words)
        if len(words) > 1:
            parsed.phrases.append(words)
        elif words:
            parsed.words.extend(words)
    rest = _PHRASE.sub(" ", query)
    for word in _WORD.findall(rest.lower())[:max(budget, 0)]:
        parsed.words.append(word[:MAX_TERM_CHARS])
    return parsed


def _tsquery(parsed: SearchQuery) -> str:
    """PostgreSQL tsquery text. Words are letters and digits only, so quoting them is safe."""
    parts = [f"'{w}':*" for w in parsed.words]
    parts += [" <-> ".join([f"'{w}'" for w in phrase[:-1]] + [f"'{phrase[-1]}':*"]) for phrase in parsed.phrases]
    return " & ".join(f"({p})" for p in parts)


def _fts5_query(parsed: SearchQuery) -> str:
    """SQLite FTS5 query text: "word"* terms and "a b"* phrases, all required."""
    parts = [f'"{w}"*' for w in parsed.words] + [f'"{" ".join(phrase)}"*' for phrase in parsed.phrases]
    return " AND ".join(parts)


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def ranked_matches(stmt: Select, parsed: SearchQuery, offset: int, limit: int) -> tuple[list[int], int]:
    """Ids of one page of the search's matches (best first) and how many matches were ranked
    (at most SEARCH_WINDOW + 1, so the page can say "1,000+").

    `stmt` selects Generation.id with the workspace and other filters applied.
    """
    if _dialect() == "postgresql":
        tsquery = func.to_tsquery(literal_column("'simple'"), _tsquery(parsed))
        vector: ColumnClause[Any] = literal_column("generations.search_vector")
        window = (stmt.add_columns(Generation.created_at, func.ts_rank(vector, tsquery).label("score"))
                  .where(vector.op("@@")(tsquery)))
    else:
        fts = (select(column("rowid", Integer).label("rowid"), (-func.bm25(literal_column("generations_fts"))).label("score"))
               .select_from(table("generations_fts"))
               .where(text("generations_fts MATCH :fts_query").bindparams(fts_query=_fts5_query(parsed)))
               .subquery("fts"))
        window = (stmt.add_columns(Generation.created_at, fts.c.score.cast(Float).label("score"))
                  .join(fts, fts.c.rowid == Generation.id))
    page = window.order_by(Generation.created_at.desc(), Generation.id.desc()).limit(SEARCH_WINDOW + 1).subquery()
    rows = db.session.execute(select(page.c.id, page.c.score)).all()
    ranked = len(rows)
    best = sorted(rows[:SEARCH_WINDOW], key=lambda r: (-r.score, -r.id))
    return [r.id for r in best[offset:offset + limit]], ranked


def keyset_page(stmt: Select, after: tuple[datetime, int] | None, before: tuple[datetime, int] | None,
                limit: int) -> tuple[list[int], bool, bool]:
    """Ids of one page of history, newest first, after (older than) or before (newer than) a
    row's (created_at, id); and whether there are older and newer rows beyond it."""
    key = tuple_(Generation.created_at, Generation.id)
    if before is not None:
        # created_at >= ... too: the index (workspace_id, created_at) can seek on it (row comparisons it cannot).
        rows = db.session.scalars(stmt.where(Generation.created_at >= before[0], key > tuple_(*before))  # type: ignore[arg-type]  # tuple_ binds plain values; typed for columns only
                                  .order_by(Generation.created_at.asc(), Generation.id.asc()).limit(limit + 1)).all()
        has_newer = len(rows) > limit
        return list(reversed(rows[:limit])), True, has_newer
    if after is not None:
        stmt = stmt.where(Generation.created_at <= after[0], key < tuple_(*after))  # type: ignore[arg-type]  # tuple_ binds plain values; typed for columns only
    rows = db.session.scalars(stmt.order_by(Generation.created_at.desc(), Generation.id.desc()).limit(limit + 1)).all()
    return list(rows[:limit]), len(rows) > limit, after is not None


def capped_count(stmt: Select, cap: int = COUNT_CAP) -> int:
    """How many rows `stmt` selects, counting at most cap + 1 (reading cap + 1 index entries)."""
    return db.session.scalar(select(func.count()).select_from(stmt.limit(cap + 1).subquery())) or 0


def encode_cursor(created_at: datetime, row_id: int) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    """The (created_at, id) in a cursor, None for none; BadCursor for anything else."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value[:100] + "=" * (-len(value[:100]) % 4)).decode()
        stamp, row_id = raw.split("|")
        number = int(row_id)
        if not 0 < number < 2**31:
            raise ValueError(row_id)
        return datetime.fromisoformat(stamp), number
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor(value) from exc


def highlight(value: str, words: list[str]) -> Markup:
    """The text with every word that starts with a searched word in <mark>, escaped first:
    the text is split at the matches and every piece is escaped, so the only markup in the
    result is the <mark> added here (text written by the model or a user is never trusted)."""
    value = str(value)
    if not words:
        return escape(value)
    pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
                         + r")[^\W_]*", re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(value):
        out.append(escape(value[last:match.start()]))
        out.append(Markup("<mark>") + escape(match.group(0)) + Markup("</mark>"))
        last = match.end()
    out.append(escape(value[last:]))
    return Markup("").join(out)


# SQLite's FTS5 index of generations.search_document, an external-content table kept in step
# by triggers. A migration that rebuilds `generations` on SQLite (batch_alter_table) drops the
# triggers with the old table: it must run SQLITE_FTS_TRIGGERS again afterwards.
SQLITE_FTS_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS generations_fts USING fts5(search_document, content='generations', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
)
SQLITE_FTS_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS generations_fts_insert AFTER INSERT ON generations BEGIN "
    "INSERT INTO generations_fts(rowid, search_document) VALUES (new.id, new.search_document); END",
    "CREATE TRIGGER IF NOT EXISTS generations_fts_delete AFTER DELETE ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, search_document) "
    "VALUES ('delete', old.id, old.search_document); END",
    "CREATE TRIGGER IF NOT EXISTS generations_fts_update AFTER UPDATE OF search_document ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, search_document) "
    "VALUES ('delete', old.id, old.search_document); "
    "INSERT INTO generations_fts(rowid, search_document) VALUES (new.id, new.search_document); END",
)
SQLITE_FTS_DROP = (
    "DROP TRIGGER IF EXISTS generations_fts_update",
    "DROP TRIGGER IF EXISTS generations_fts_delete",
    "DROP TRIGGER IF EXISTS generations_fts_insert",
    "DROP TABLE IF EXISTS generations_fts",
)
SQLITE_FTS_REBUILD = "INSERT INTO generations_fts(generations_fts) VALUES ('rebuild')"
