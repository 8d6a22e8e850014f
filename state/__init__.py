"""Everything the connector remembers, in one SQLite file: cursors, outbox, delivered hashes, dead letters,
files seen and runs. Only the engine (``connector``) uses this package; adapters never do."""

from state.db import StateDB, open_state
from state.migrations import SCHEMA_VERSION
from state.outbox import EnqueueCounts, Outbox, Part, PendingRow
from state.runs import Runs
from state.stores import Cursors, DeadLetterRow, DeadLetters, Files, origin

__all__ = [
    "SCHEMA_VERSION",
    "Cursors",
    "DeadLetterRow",
    "DeadLetters",
    "EnqueueCounts",
    "Files",
    "Outbox",
    "Part",
    "PendingRow",
    "Runs",
    "StateDB",
    "open_state",
    "origin",
]
