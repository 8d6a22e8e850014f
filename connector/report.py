"""What a ``sync`` run ends with: per-source counts, failures, delivery, and the exit code they make."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.delivery import DeliveryResult
from connector.engine import RunCounts

__all__ = ["ExitCode", "SyncReport"]


class ExitCode:
    OK = 0
    DEAD_LETTERS = 1
    CONFIG = 2
    UNFINISHED = 3


@dataclass(slots=True)
class SyncReport:
    sources: dict[str, RunCounts] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # could not finish: retried on the next run
    fatal: dict[str, str] = field(default_factory=dict)  # stopped by a configuration error: a human must act
    delivery: DeliveryResult = field(default_factory=DeliveryResult)
    karla_error: str | None = None
    shop_refused: str | None = None  # Karla refuses a shop (connector.errors.ShopRefused): its orders wait
    requests: int = 0
    bytes_sent: int = 0
    put_off: int = 0  # orders Karla failed on alone, waiting past the end of the run (connector.suspects)
    put_off_until: float | None = None  # when the first of them is tried again

    @property
    def rejected(self) -> int:
        return sum(c.rejected for c in self.sources.values()) + self.delivery.dead

    @property
    def exit_code(self) -> int:
        if self.fatal or self.shop_refused:
            return ExitCode.CONFIG
        if self.failures or self.karla_error or self.put_off:
            return ExitCode.UNFINISHED
        return ExitCode.DEAD_LETTERS if self.rejected else ExitCode.OK
