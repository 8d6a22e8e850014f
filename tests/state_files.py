"""State files as older releases left them, for upgrade tests: the first ``step`` migrations, then statements
that undo what later steps changed or add rows. One place, so every upgrade test
builds its old file the same way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from state.migrations import MIGRATIONS

__all__ = ["schema_file"]


def schema_file(path: Path, step: int, *statements: str | tuple[str, Sequence[Any]]) -> Path:
    """``path`` at schema ``step``; a statement is SQL, or (SQL, parameters) (a list of rows: one each)."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for migrate in MIGRATIONS[:step]:
            migrate(conn)
        conn.exec_driver_sql(f"PRAGMA user_version = {step}")  # first: a statement may set another number
        for statement in statements:
            sql, params = (statement, None) if isinstance(statement, str) else statement
            conn.exec_driver_sql(sql, params) if params is not None else conn.exec_driver_sql(sql)
    engine.dispose()
    return path
