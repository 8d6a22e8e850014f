"""Group rows by order when rows of one order need not be adjacent, in bounded memory.

A file up to ``bucket_bytes`` is grouped in memory. A larger one is first partitioned on disk into N
spill files by a stable hash of the order number (so every row of an order lands in the same bucket),
then each bucket is grouped in memory in turn: memory follows the bucket size, not the file size.
Bucket contents and order within a bucket are deterministic, which is what makes a cursor of
``(bucket, orders done)`` a valid resume point after a crash.
"""

from __future__ import annotations

import math
import pickle
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import IO

from adapters.csv.reader import Row

__all__ = ["Buckets", "group"]


def _bucket_of(key: str, count: int) -> int:
    return zlib.crc32(key.encode("utf-8", "replace")) % count


class Buckets:
    """Rows partitioned into ``count`` groups; iterate ``bucket(i)`` for each ``i`` in ``range(count)``."""

    def __init__(self, rows: Iterator[Row], key: Callable[[Row], str], size_bytes: int, bucket_bytes: int) -> None:
        self.count = max(1, math.ceil(size_bytes / bucket_bytes))
        self._key = key
        self._memory: list[Row] | None = None
        self._files: list[IO[bytes]] = []
        self._stack = ExitStack()
        if self.count == 1:
            self._memory = list(rows)
        else:
            self._spill(rows)

    def _spill(self, rows: Iterator[Row]) -> None:
        self._files = [self._stack.enter_context(tempfile.TemporaryFile(prefix="karla-csv-")) for _ in range(self.count)]
        for row in rows:
            pickle.dump((row.line, row.values, row.problem), self._files[_bucket_of(self._key(row), self.count)], protocol=5)
        for f in self._files:
            f.flush()

    def bucket(self, index: int) -> dict[str, list[Row]]:
        """Rows of bucket ``index`` grouped by key, keys in order of first appearance."""
        groups: dict[str, list[Row]] = {}
        for row in self._rows(index):
            groups.setdefault(self._key(row), []).append(row)
        return groups

    def _rows(self, index: int) -> Iterator[Row]:
        if self._memory is not None:
            yield from self._memory
            return
        f = self._files[index]
        f.seek(0)
        while True:
            try:
                line, values, problem = pickle.load(f)
            except EOFError:
                return
            yield Row(line, values, problem)

    def close(self) -> None:
        self._stack.close()
        self._memory = None

    def __enter__(self) -> Buckets:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def group(rows: Iterator[Row], key: Callable[[Row], str], size_bytes: int, bucket_bytes: int) -> Buckets:
    return Buckets(rows, key, size_bytes, bucket_bytes)
