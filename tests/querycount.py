"""Count the SQL statements a block of code issues (SQLAlchemy's before_cursor_execute event).

Used by the statement-count tests: a page must issue the same number of statements for
2 rows as for 50, so a query per row (an N+1) fails them.

    with count_statements(engine) as counted:
        client.get("/history")
    assert counted.n == ...
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine

IGNORED_PREFIXES = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "PRAGMA")


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.statements)

    def __str__(self) -> str:
        return "\n".join(f"{i + 1}: {s[:200]}" for i, s in enumerate(self.statements))


@contextmanager
def count_statements(engine: Engine) -> Iterator[Counted]:
    """Record every statement sent to the database while the block runs (transaction
    control such as SAVEPOINT and SQLite PRAGMAs excluded: they are not per-row work)."""
    counted = Counted()

    def before(_conn, _cursor, statement, _parameters, _context, _executemany):
        if not statement.lstrip().upper().startswith(IGNORED_PREFIXES):
            counted.statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", before)
