"""Group rows by order when rows of one order need not be adjacent, in bounded memory.

Most exports already list an order's rows together, sorted by order number. A cheap first pass over the
keys (``is_grouped``) detects that, and such a file is grouped as it streams: one order in memory at a
time, no spill. Otherwise a file up to ``bucket_bytes`` is grouped in memory, and a larger one is first
partitioned on disk into N spill files by a stable hash of the order number (so every row of an order
lands in the same bucket), then each bucket is grouped in memory in turn: memory follows the bucket
size, not the file size. Group order is deterministic in every mode, which is what makes a cursor of
``(bucket, orders done)`` a valid resume point after a crash.
"""

from __future__ import annotations

import itertools
import math
import pickle
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import IO

from adapters.csv.reader import Row
from connector.scratch import scratch

__all__ = ["Buckets", "group", "is_grouped"]


def is_grouped(keys: Iterable[str]) -> bool:
    """True when equal keys are contiguous, proven by the keys never decreasing.

    Checked in two total orders at once, plain text and numeric-looking (``(len, text)``: 9 < 10), because
    a non-decreasing sequence in any total order keeps equal keys together. O(1) memory.
    """
    as_text = as_number = True
    previous = None
    for key in keys:
        if previous is not None and key != previous:
            as_text = as_text and key > previous
            as_number = as_number and (len(key), key) > (len(previous), previous)
            if not (as_text or as_number):
                return False
        previous = key
    return True


def _bucket_of(key: str, count: int) -> int:
    return zlib.crc32(key.encode("utf-8", "replace")) % count


class Buckets:
    """Rows in ``count`` buckets; ``groups(i)`` for each ``i`` in ``range(count)`` yields every order once."""

    def __init__(self, rows: Iterator[Row], key: Callable[[Row], str], size_bytes: int, bucket_bytes: int,
                 grouped: bool = False, name: str = "a file") -> None:
        self.count = 1 if grouped else max(1, math.ceil(size_bytes / bucket_bytes))
        self._key, self._name = key, name
        self._stream: Iterator[Row] | None = rows if grouped else None
        self._memory: list[Row] | None = None
        self._files: list[IO[bytes]] = []
        self._stack = ExitStack()
        if grouped:
            return
        if self.count == 1:
            self._memory = list(rows)
        else:
            try:
                self._spill(rows)
            except BaseException:  # the spill files made so far: the caller's ``with`` never gets this object
                self._stack.close()
                raise

    def _spill(self, rows: Iterator[Row]) -> None:
        make = lambda: tempfile.TemporaryFile(prefix="karla-csv-")  # noqa: E731
        why = f"sort the rows of {self._name} by order (larger than bucket_bytes, not sorted by order number)"
        self._files = [self._stack.enter_context(scratch(make, why)) for _ in range(self.count)]
        for row in rows:
            pickle.dump((row.line, row.values, row.problem), self._files[_bucket_of(self._key(row), self.count)], protocol=5)
        for f in self._files:
            f.flush()

    def groups(self, index: int) -> Iterator[tuple[str, list[Row]]]:
        """Rows of bucket ``index`` grouped by key, keys in order of first appearance."""
        if self._stream is not None:
            yield from ((k, list(rows)) for k, rows in itertools.groupby(self._stream, key=self._key))
            return
        groups: dict[str, list[Row]] = {}
        for row in self._rows(index):
            groups.setdefault(self._key(row), []).append(row)
        yield from groups.items()

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


def group(rows: Iterator[Row], key: Callable[[Row], str], size_bytes: int, bucket_bytes: int, grouped: bool = False,
          name: str = "a file") -> Buckets:
    """``name``: the file's, for the error when there is no temporary folder to spill it to."""
    return Buckets(rows, key, size_bytes, bucket_bytes, grouped, name)
