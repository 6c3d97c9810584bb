"""Multi-row statements: chunking and the changed-row count."""

from __future__ import annotations

import sqlite3

from hookpost.store.sqlite.multirow import MAX_CHUNK, chunks, execute_values


def test_chunks_are_powers_of_two_largest_first_and_cover_every_row() -> None:
    rows = [(i,) for i in range(47)]
    parts = list(chunks(rows))
    assert [len(p) for p in parts] == [32, 8, 4, 2, 1]
    assert [r for p in parts for r in p] == rows
    big = [(i,) for i in range(2 * MAX_CHUNK + 3)]
    assert [len(p) for p in chunks(big)] == [MAX_CHUNK, MAX_CHUNK, 2, 1]
    assert list(chunks([])) == []


def test_execute_values_binds_leading_values_then_the_rows_and_counts_changes() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, tag TEXT, n INTEGER)")
    inserted = execute_values(
        conn,
        "INSERT INTO t (id, tag, n) SELECT column1, ?, column2 FROM (VALUES {values})",
        [(i, i * 10) for i in range(1, 48)],
        ("a",),
    )
    assert inserted == 47
    changed = execute_values(
        conn,
        "UPDATE t SET n = v.column2 FROM (VALUES {values}) AS v WHERE t.id = v.column1",
        [(1, -1), (2, -2), (999, -3)],  # 999 matches nothing
    )
    assert changed == 2
    assert conn.execute("SELECT n FROM t WHERE id IN (1, 2, 3) ORDER BY id").fetchall() == [
        (-1,),
        (-2,),
        (30,),
    ]
    assert conn.execute("SELECT count(*) FROM t WHERE tag = 'a'").fetchone() == (47,)
    assert execute_values(conn, "DELETE FROM t WHERE id IN (VALUES {values})", []) == 0
