"""How the daemon ends when work is still in flight after the grace period (``Daemon.run``)."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

__all__ = ["exit_holding_lock"]

log = logging.getLogger("connector.daemon")


def exit_holding_lock() -> NoReturn:
    """The grace period is over and a job still works (a source read that does not return). Python would
    wait for that thread at exit, after the state lock was released, so it kept committing while another
    process could take the lock. End the process here instead: the kernel drops the lock as it ends, and
    nothing is lost (each committed page is in the outbox; a page half written is rolled back by SQLite).
    """
    log.warning("work still in flight after the grace period; exiting now (what it had not committed is read "
                "again on the next run, pending items stay queued)")
    log.info("daemon stopped")
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
