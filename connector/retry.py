"""The one retry policy: exponential backoff with full jitter that honours ``Retry-After``.

Used by the Karla client and by every adapter's HTTP client, so a merchant tunes retries in one place and
no code path can hot-loop against a struggling server. ``sleep`` is injectable so tests never wait.
An ``abort`` event ends a retry loop at once: checked before every attempt and by the stop condition,
and the pause between attempts is ``abort.wait`` so setting it wakes a sleeping loop.

A failed certificate check is the one transport error that is never retried: waiting cannot fix a wrong
CA or host name (nor a man-in-the-middle), so it ends as a ``ConfigError`` (see ``untrusted``). The TLS
options every HTTP client shares (``verify_tls``, ``ca_file``) are turned into httpx's ``verify`` here too
(``connector.loopback`` keeps every client's requests to this machine off the environment's proxy).
"""

from __future__ import annotations

import contextvars
import email.utils
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Annotated

import httpx
import tenacity
from pydantic import AfterValidator

from connector.errors import Aborted, ConfigError, RetryableError, Unavailable

__all__ = [
    "CaFile", "RetryPolicy", "ca_context", "checked_ca_file", "call_with_retries", "certificate_error",
    "make_retrying", "parse_retry_after", "tls_verify", "untrusted",
]

log = logging.getLogger(__name__)
_WHAT: contextvars.ContextVar[str] = contextvars.ContextVar("retried", default="")  # call_with_retries' ``what``


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded in attempts and in total time; ``max_wait`` caps a backoff pause.

    A ``Retry-After`` is honoured in full (RFC 9110: the server knows when it can take the call again). One
    that reaches beyond ``max_seconds`` ends the retries at once, not by sleeping past the budget nor by
    calling early: ``Unavailable.retry_after`` then tells the caller how long to leave the server alone.
    """

    attempts: int = 6
    max_seconds: float = 300.0
    initial: float = 0.5
    max_wait: float = 60.0


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now())


class _Wait(tenacity.wait.wait_base):
    """Full-jitter exponential backoff, but never shorter than the server's ``Retry-After``."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        cap = min(self.policy.max_wait, self.policy.initial * 2 ** (retry_state.attempt_number - 1))
        pause = self.rng.uniform(0, cap)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            pause = max(pause, float(retry_after))
        return pause


class _RetryAfterBeyondBudget(tenacity.stop.stop_base):
    """Stop when the server asks for a pause that would end beyond the time budget."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        elapsed = retry_state.seconds_since_start or 0.0
        return retry_after is not None and elapsed + float(retry_after) > self.policy.max_seconds


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    pause = retry_state.next_action.sleep if retry_state.next_action else 0.0
    # INFO: most retries succeed, and a warning each would bury real ones; giving up is a WARNING where it ends
    what = _WHAT.get()  # "Karla API", "Shopware https://…": a bare "Connection refused" says neither what nor where
    named = f"{what}: " if what and not str(exc).startswith(what) else ""
    log.info("%sretrying after %s (attempt %d, waiting %.1fs)", named, exc, retry_state.attempt_number, pause)


def make_retrying(
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[BaseException | None], None] | None = None,
) -> tenacity.Retrying:
    """A tenacity ``Retrying`` for ``RetryableError`` and transport errors; everything else propagates."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        _log_retry(state)
        if on_retry:
            on_retry(state.outcome.exception() if state.outcome else None)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_retryable),
        wait=_Wait(policy, rng or random.Random()),
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_after_delay(policy.max_seconds)
        | _RetryAfterBeyondBudget(policy),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


def call_with_retries(
    retrying: tenacity.Retrying, fn: Callable[[], object], what: str, *, abort: threading.Event | None = None,
    ca_option: str | None = None,
) -> object:
    """Run ``fn`` under ``retrying``; when the budget is spent raise ``Unavailable`` naming ``what``.

    A refused certificate is at once a ``ConfigError`` naming ``ca_option`` (the option that trusts a private CA).

    Once ``abort`` is set no further attempt starts (not even the first) and no pause is slept out:
    ``Aborted`` (an ``Unavailable``, so the work stays pending) is raised instead.
    """
    guarded = None
    if abort is not None:
        retrying = retrying.copy(stop=retrying.stop | tenacity.stop_when_event_set(abort), sleep=_pause(retrying.sleep, abort))
        fn = guarded = _Guarded(fn, abort)
    named = _WHAT.set(what)  # for the retry log line (``_log_retry``), in this thread only
    try:
        return retrying(fn)
    except (RetryableError, httpx.TransportError, _Stop) as exc:
        if isinstance(exc, Unavailable):
            raise
        if certificate_error(exc) is not None:  # never retried (``_retryable``): it arrives after one attempt
            raise untrusted(exc, what, ca_option) from exc
        if abort is not None and abort.is_set():
            last = guarded.last if guarded is not None else None
            if last is None:
                raise Aborted(f"{what}: not sent, asked to stop") from None
            raise Aborted(f"{what}: retrying stopped on request (last answer: {last})") from last
        raise Unavailable(f"{what} unavailable after retries: {exc}", retry_after=getattr(exc, "retry_after", None)) from exc
    finally:
        _WHAT.reset(named)


class _Stop(Exception):
    """Raised instead of an attempt once ``abort`` is set; never retried."""


class _Guarded:
    """``fn`` that refuses to run once ``abort`` is set, remembering the last failure for the message."""

    def __init__(self, fn: Callable[[], object], abort: threading.Event) -> None:
        self.fn, self.abort, self.last = fn, abort, None

    def __call__(self) -> object:
        if self.abort.is_set():
            raise _Stop
        try:
            return self.fn()
        except (RetryableError, httpx.TransportError) as exc:
            self.last = exc
            raise


def _pause(sleep: Callable[[float], None], abort: threading.Event) -> Callable[[float], object]:
    """Real time becomes ``abort.wait`` (setting the event ends the pause); an injected test clock is kept."""
    return abort.wait if sleep is time.sleep else sleep


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryableError):
        return True
    return isinstance(exc, httpx.TransportError) and certificate_error(exc) is None


# -- TLS ---------------------------------------------------------------------------------------------
def certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The failed certificate check behind ``exc`` (httpx wraps it in a ``ConnectError``), else None.

    An unknown CA, an expired certificate and a host name mismatch all end up here."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def untrusted(exc: BaseException, what: str, ca_option: str | None = None) -> ConfigError:
    """The fatal error for a refused certificate: names the host and ``ca_option``, never a secret.

    Not "unavailable": retrying cannot fix a wrong CA or name, and a man-in-the-middle must not be retried into."""
    cert = certificate_error(exc)
    reason = (cert.verify_message or cert.reason or str(cert)) if cert is not None else str(exc)
    host = _host(exc)
    fix = (f"if your network or server uses its own CA, set {ca_option} to that CA's PEM file" if ca_option
           else "check the certificate the server presents")
    return ConfigError(
        f"{what}: the TLS certificate of {host} was refused ({reason}); retrying cannot fix this. It is not "
        f"signed by a CA this machine trusts or not issued for {host}, or something between here and {host} "
        f"intercepts the connection (a TLS-inspecting proxy, or an attacker): {fix}"
    )


def _host(exc: BaseException) -> str:
    try:
        return exc.request.url.host if isinstance(exc, httpx.RequestError) else "the server"
    except RuntimeError:  # httpx sets ``request`` on errors raised while sending; not on one made by hand
        return "the server"


def ca_context(path: Path) -> ssl.SSLContext:
    """A verifying context that trusts the CAs in ``path`` (PEM). Raises ValueError saying why it cannot."""
    try:
        return ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except PermissionError:
        raise ValueError(f"{path} is not readable by this user") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder; name a PEM file of CA certificates") from None
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"{path} is not a PEM file of CA certificates ({exc.__class__.__name__}: {exc})") from None


def checked_ca_file(value: Path | None) -> Path | None:
    """A ``ca_file`` option's validator: missing, unreadable or not PEM is a config error at load, not a
    refused handshake later."""
    if value is not None:
        ca_context(value)
    return value


CaFile = Annotated[Path | None, AfterValidator(checked_ca_file)]  # the ``ca_file`` option of every TLS client


def tls_verify(verify_tls: bool, ca_file: Path | None) -> ssl.SSLContext | bool:
    """httpx's ``verify``: off, the CAs of ``ca_file`` (verification stays on), or certifi's bundle."""
    if not verify_tls:
        return False
    return ca_context(ca_file) if ca_file is not None else True
