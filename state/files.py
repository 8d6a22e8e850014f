"""Files seen: which version of each file a source read to its end. Each method runs in the caller's transaction.

Apart from the other stores (``state.stores``, which re-exports it) because it shares nothing with them but
the connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

__all__ = ["Files"]


class Files:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def is_seen(self, source: str, path: str, sha256: str) -> tuple[int, float, int] | None:
        """``(size, mtime, dead letters)`` of ``path`` when it was last read to its end, if that was this
        content; else None.

        The content decides, not the modification time: the same file touched (copied without keeping
        times, restored from a backup) read again would send its older versions once more. Only the last
        version read counts: a file whose content went back to an earlier one is a change."""
        sql = "SELECT size, mtime, rejected, sha256 FROM seen_file WHERE source=? AND path=? ORDER BY seen_at DESC, rowid DESC LIMIT 1"
        row = self.conn.exec_driver_sql(sql, (source, path)).first()
        return None if row is None or row[3] != sha256 else (int(row[0]), float(row[1]), int(row[2] or 0))

    def was_read(self, source: str, path: str, size: int, mtime: float) -> tuple[str, int] | None:
        """``(sha256, dead letters)`` of a version of ``path`` with this size and mtime read to its end, or None."""
        sql = "SELECT sha256, rejected FROM seen_file WHERE source=? AND path=? AND size=? AND mtime=? ORDER BY seen_at DESC, rowid DESC"
        row = self.conn.exec_driver_sql(sql, (source, path, size, mtime)).first()
        return None if row is None else (str(row[0]), int(row[1] or 0))

    def read_versions(self, source: str) -> dict[tuple[str, int, float], tuple[str, int]]:
        """``was_read``'s answer for every (path, size, mtime) of the source, in one query: asked file by file,
        a folder of kept exports cost a query per file per poll (a year of them: 100k files, seconds)."""
        sql = "SELECT path, size, mtime, sha256, rejected FROM seen_file WHERE source=? ORDER BY seen_at, rowid"
        return {(path, size, mtime): (str(sha256), int(rejected or 0))  # the latest read of a key is the last
                for path, size, mtime, sha256, rejected in self.conn.exec_driver_sql(sql, (source,))}

    def mark_seen(self, source: str, marks: Iterable[Any], now: float) -> None:
        self.conn.exec_driver_sql(
            "INSERT OR REPLACE INTO seen_file (source, path, size, mtime, sha256, rejected, seen_at) VALUES (?,?,?,?,?,?,?)",
            [(source, m.path, m.size, m.mtime, m.sha256, m.rejected, now) for m in marks],
        )

    def read_since(self, source: str, path: str, since: float) -> bool:
        """Whether ``path`` was read to its end at ``since`` or later."""
        sql = "SELECT 1 FROM seen_file WHERE source = ? AND path = ? AND seen_at >= ?"
        return self.conn.exec_driver_sql(sql, (source, path, since)).first() is not None

    def count(self, source: str) -> int:
        return int(self.conn.exec_driver_sql("SELECT COUNT(*) FROM seen_file WHERE source = ?", (source,)).scalar() or 0)

    def has(self, source: str, path: str) -> bool:
        """Whether any version of ``path`` has been read to its end."""
        sql = "SELECT 1 FROM seen_file WHERE source = ? AND path = ?"
        return self.conn.exec_driver_sql(sql, (source, path)).first() is not None
