"""One "not before" time shared by every sender of a Karla client: a ``Retry-After`` pauses them all.

Karla rate-limits the account's bulk operations, not one request: while the sender that got a 429 waits
out its ``Retry-After``, the others (``max_in_flight`` > 1) would use the limit up again and earn more
429s. So each attempt first waits for the shared pause. The sender whose answer started the pause sleeps
it out in its retry backoff (``connector.retry`` honours ``Retry-After``), so it does not wait twice.
The one exception is the client's (``KarlaClient._send``): the retry of a call Karla failed without a
``Retry-After`` (a 5xx, a timeout) keeps its short backoff, as it finds out whether Karla is down, and a
drain that finds Karla down ends the other senders' waits at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["SharedPause"]


class SharedPause:
    """``sleep`` and ``clock`` are injectable, as the retry policy's ``sleep`` is, so tests never wait."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self._sleep, self._clock = sleep, clock
        self._until = 0.0  # on ``clock``: no request before it
        self._lock = threading.Lock()

    def start(self, seconds: float) -> float:
        """Pause every sender for ``seconds`` from now (a longer pause already set stays); returns its end."""
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)
            return self._until

    def wait(self, abort: threading.Event, slept: float = 0.0) -> None:
        """Return when the pause is over, or at once when ``abort`` is set.

        ``slept``: the end of the pause this caller started and slept out itself; unless another answer made
        it longer since, it is over (also for an injected ``sleep`` that lets no time pass)."""
        while (left := self._left(slept)) > 0 and not abort.is_set():
            if self._sleep is not time.sleep:
                self._sleep(left)  # an injected test clock: one pause, as ``connector.retry`` sleeps
                return
            abort.wait(left)  # setting ``abort`` (a shutdown, Karla found down) ends the wait

    def _left(self, slept: float) -> float:
        with self._lock:
            if 0.0 < self._until <= slept:
                self._until = 0.0
            return self._until - self._clock() if self._until else 0.0
