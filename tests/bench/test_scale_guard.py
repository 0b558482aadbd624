"""bench-scale fills and empties a database: it refuses any it did not fill, and non-PostgreSQL ones."""
from __future__ import annotations

import os

import psycopg
import pytest

from bench import scale


def test_refuses_sqlite_and_unscratch_names():
    with pytest.raises(SystemExit, match="scratch PostgreSQL"):
        scale.check_database("sqlite:///copydeck.db")
    with pytest.raises(SystemExit, match="contains 'test' or 'bench'"):
        scale.check_database("postgresql://postgres@127.0.0.1:5432/copydeck")


@pytest.fixture
def scratch():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("DATABASE_URL does not name PostgreSQL")
    base, name = url.rsplit("/", 1)
    db_name = f"{name.split('?')[0]}_bench_guard"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    yield f"{base}/{db_name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def test_refuses_a_filled_database_it_did_not_fill(scratch):
    with psycopg.connect(scratch, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id int)")
    with pytest.raises(SystemExit, match="was not filled by this bench"):
        scale.check_database(scratch)
    with psycopg.connect(scratch, autocommit=True) as conn:  # untouched
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'users'").fetchone()[0] == 1


def test_takes_an_empty_database_and_its_own_again(scratch):
    assert scale.check_database(scratch) is False
    with psycopg.connect(scratch, autocommit=True) as conn:
        conn.execute("CREATE TABLE generations (id int)")
    assert scale.check_database(scratch) is False  # its own: emptied again
    with psycopg.connect(scratch, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert tables == [scale.MARKER]
