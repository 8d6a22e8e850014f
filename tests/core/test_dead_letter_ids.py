"""Dead-letter ids are never given again (step 12 rebuilds the table with AUTOINCREMENT): an id from an earlier
`dlq list` must not name a newer letter once the highest one was dropped or cleared (found by review cli5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from state import SCHEMA_VERSION, DeadLetters, open_state
from state import migrations
from state.migrations import MIGRATIONS
from tests.state_files import schema_file

# the table and its indexes as releases before step 12 created them
_V11_TABLE = (
    "CREATE TABLE dead_letter (id INTEGER NOT NULL, created_at FLOAT NOT NULL, stage VARCHAR NOT NULL, source VARCHAR NOT NULL,"
    " stream VARCHAR, slug VARCHAR, order_key VARCHAR, id_type VARCHAR, location VARCHAR, reason TEXT NOT NULL, details TEXT,"
    " payload TEXT, versions TEXT, PRIMARY KEY (id))"
)
_V11_INDEXES = ("CREATE INDEX ix_dead_letter_source ON dead_letter (source)",
                "CREATE INDEX ix_dead_letter_order ON dead_letter (stage, slug, order_key)")
_ROWS = [
    (1, 1.5, "source", "w", "orders", "shop", "1", "order_number", "orders_001.csv:2", "bad date", '{"a": 1}', '{"r": 1}', None),
    (2, 2.5, "karla", "w", "orders", "shop", "2", "order_number", "orders_001.csv:4", "refused", None, '{"order": {}}', '{"order": "v"}'),
    (5, 3.5, "source", "w", "fulfillments", None, None, None, "fulfillments_001.csv:1", "missing column", None, None, None),
]


def _v11_file(path: Path) -> Path:
    """A state file as release 0.1/0.2-before-step-12 left it, with three letters (ids 1, 2, 5)."""
    return schema_file(path, 11, "DROP TABLE dead_letter", _V11_TABLE, *_V11_INDEXES,
                       (f"INSERT INTO dead_letter VALUES ({','.join('?' * 13)})", _ROWS))


def _table(conn) -> tuple[str, list[tuple], set[str]]:
    ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'dead_letter'").scalar()
    rows = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM dead_letter ORDER BY id")]
    indexes = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'dead_letter'")}
    return ddl, rows, indexes


def test_upgrade_to_step_12_keeps_every_letter_and_never_gives_an_id_again(tmp_path: Path) -> None:
    db = open_state(_v11_file(tmp_path / "v11.db"))
    with db.transaction() as conn:
        ddl, rows, indexes = _table(conn)
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == SCHEMA_VERSION == 13
        assert "AUTOINCREMENT" in ddl and rows == _ROWS and indexes == {"ix_dead_letter_source", "ix_dead_letter_order"}
        assert DeadLetters(conn).delete([5]) == 1  # the highest, dropped
        DeadLetters(conn).add([{"created_at": 9.0, "stage": "source", "source": "w", "reason": "new"}])
        assert [letter.id for letter in DeadLetters(conn).list()] == [1, 2, 6]
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN SELECT id FROM dead_letter WHERE stage = 'karla' AND slug = 's' AND order_key = '1'").all()
        assert any("ix_dead_letter_order" in str(row) for row in plan)


def test_a_new_state_file_never_gives_an_id_again(tmp_path: Path) -> None:
    db = open_state(tmp_path / "new.db")
    with db.transaction() as conn:
        letters = DeadLetters(conn)
        letters.add([{"created_at": float(n), "stage": "source", "source": "w", "reason": f"r{n}", "location": f"f:{n}"} for n in (1, 2)])
        letters.delete([2])
        letters.add([{"created_at": 3.0, "stage": "source", "source": "w", "reason": "r3"}])
        assert [letter.id for letter in letters.list()] == [1, 3]
        migrations._v12_dead_letter_ids_never_reused(conn)  # a file created by this release: nothing to rebuild
        assert "AUTOINCREMENT" in _table(conn)[0] and [letter.id for letter in letters.list()] == [1, 3]


def test_an_upgrade_cut_short_after_the_rebuild_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """The steps run in one transaction: a failure (or a kill) after the rebuild undoes it, and the next open
    upgrades again."""
    path = _v11_file(tmp_path / "v11.db")

    def rebuilt_then_failed(conn) -> None:
        migrations._v12_dead_letter_ids_never_reused(conn)
        raise RuntimeError("killed here")

    MIGRATIONS[11] = rebuilt_then_failed
    try:
        with pytest.raises(RuntimeError):
            open_state(path)
    finally:
        MIGRATIONS[11] = migrations._v12_dead_letter_ids_never_reused
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        ddl, rows, indexes = _table(conn)
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == 11
        assert "AUTOINCREMENT" not in ddl and rows == _ROWS and len(indexes) == 2
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM sqlite_master WHERE name = 'dead_letter_v11'").scalar() == 0
    engine.dispose()
    with open_state(path).read() as conn:
        assert "AUTOINCREMENT" in _table(conn)[0] and _table(conn)[1] == _ROWS
