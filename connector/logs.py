"""Logging: JSON lines for services, readable text on a terminal, secrets redacted everywhere.

Every configured secret value is registered with ``redact``; a filter scrubs it from each record's final
message (and from exception text), so a secret that slips into an error string still never reaches a log.
Credentials derived from them (HTTP Basic's base64, OAuth access tokens) are registered where they are made.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any, TextIO

from pydantic import BaseModel, SecretBytes, SecretStr

__all__ = [
    "clip",
    "configure_logging",
    "json_line",
    "logs_json",
    "named_secrets",
    "printable",
    "register_basic_auth",
    "register_secrets",
    "register_token",
    "redact",
    "redact_data",
    "secret_keys",
    "secret_values",
    "warn_once_configured",
]

_SECRETS: set[str] = set()
_TOKENS: dict[str, tuple[str, ...]] = {}  # owner -> its latest fetched access tokens
_TOKENS_KEPT = 3
_MASK = "***"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all C0 and C1 controls but tab and newline
_HELD: list[tuple[str, str]] = []  # (logger, message) of warnings logged before configure_logging
_CONFIGURED = False


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values (API keys, tokens, passwords) to be masked in every log line, as written and
    as quoted (``_quoted``)."""
    for value in values:
        if value and len(value) >= 4:
            _SECRETS.update(_quoted(value))


_ESCAPES = (lambda v: repr(v)[1:-1], lambda v: json.dumps(v)[1:-1], lambda v: json.dumps(v, ensure_ascii=False)[1:-1])


@lru_cache(maxsize=256)
def _quoted(secret: str) -> frozenset[str]:
    """``secret`` and how it reads quoted once or twice (``repr`` and JSON, in either order): an exception's
    ``repr`` (the "source failed" line, a run's stored error) doubles a backslash and escapes a quote, and a
    JSON body quoted in an error escapes it again, so the raw value alone would not match. Usually just
    ``{secret}``."""
    once = {escape(secret) for escape in _ESCAPES}
    return frozenset({secret, *once, *(escape(text) for text in once for escape in _ESCAPES)})


def register_basic_auth(user: str, password: str) -> None:
    """HTTP Basic sends base64 of ``user:password``: a server or proxy echoing the ``Authorization`` header
    shows that, in which the password itself never appears (encoded as httpx encodes it, UTF-8)."""
    if password:
        register_secrets([base64.b64encode(f"{user}:{password}".encode()).decode()])


def register_token(owner: str, token: str) -> None:
    """Mask an access token fetched at run time (an OAuth client-credentials grant) like a configured secret.

    A daemon fetches new ones for ever (one per run and expiry), so only the last few per ``owner`` (one
    shop's integration) are kept: masking every line must not slow down with the daemon's age."""
    if len(token) >= 4:
        _TOKENS[owner] = (*(t for t in _TOKENS.get(owner, ()) if t != token), token)[-_TOKENS_KEPT:]


def redact(text: str) -> str:
    secrets = _SECRETS.union(*(_quoted(token) for tokens in _TOKENS.values() for token in tokens))
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


def clip(text: str, limit: int) -> str:
    """``text`` masked, then cut to ``limit`` characters: cut first, a secret across the cut loses its tail
    and what is left no longer matches the mask (for an answer's body quoted in an error)."""
    return redact(text)[:limit]


def redact_data(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every registered secret masked in its strings; for
    output built from stored text (a run's error, a failure's message) that no log filter sees."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(item) for item in value]
    return value


def printable(text: str, *, lines: bool = True) -> str:
    """``text`` with control characters as visible escapes (ESC as ``\\x1b``): a file name or CSV value such as
    ``orders_\\e]0;PWNED\\a.csv`` would otherwise set the terminal's title or colours when shown as text.
    Tab stays, and newline unless ``lines`` is False: text meant as one line (a log message, a dead letter's
    reason) shows a newline as ``\\n``, so a CSV value cannot forge a line of its own ("20:00:00 ERROR ...")."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if lines else text.replace("\n", "\\n")


def secret_values(value: Any, depth: int = 0) -> Iterator[str]:
    """Every ``SecretStr`` value in a validated config, nested models and containers included.

    What a field holds, not what it is called, makes it secret: a plugin's ``auth: SecretStr`` is masked,
    a ``private_key_file`` path is not.
    """
    if depth > 20:
        return
    if isinstance(value, (SecretStr, SecretBytes)):
        secret = value.get_secret_value()
        yield secret.decode(errors="replace") if isinstance(secret, bytes) else secret
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secret_values(getattr(value, name, None), depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_values(item, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from secret_values(item, depth + 1)


_SECRET_WORDS = frozenset({"key", "token", "secret", "password", "passphrase"})


def _names_secret(key: object) -> bool:
    return re.split(r"[_\-.]", str(key).lower())[-1] in _SECRET_WORDS


def named_secrets(value: object) -> list[str]:
    """Every string under a key whose last word names a secret (``api_key``, ``sftp.password``), in any
    source table: ``private_key_file`` (a path) and ``host_key_fingerprint`` (public) are not secrets."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and _names_secret(key):
                found.append(item)
            else:
                found.extend(named_secrets(item))
    return found


def secret_keys(value: object, prefix: str = "") -> list[str]:
    """The dotted names (``karla.api_key``) of the non-empty values ``named_secrets`` finds: to say which
    secrets a file holds without showing one."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}{key}"
            if isinstance(item, str) and _names_secret(key):
                found += [name] if item else []
            else:
                found.extend(secret_keys(item, f"{name}."))
    return found


def warn_once_configured(logger: str, message: str) -> None:
    """Log a warning found while reading the config that says how to log: held until ``configure_logging``,
    so it comes in the configured format and stream (a bare line on stderr would break a JSON log)."""
    if _CONFIGURED:
        logging.getLogger(logger).warning(message)
    elif (logger, message) not in _HELD:
        _HELD.append((logger, message))


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        record.msg, record.args = redact(message), ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        source = getattr(record, "source", None)
        if source:
            entry["source"] = source
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        source = getattr(record, "source", None)
        prefix = f"[{source}] " if source else ""
        # the date too, with the offset (ISO, as in JSON): a journal or a file kept for days needs it
        at = datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds")
        line = f"{at} {record.levelname:<7} {prefix}{record.getMessage()}"
        # JSON escapes control characters itself; text goes to a terminal as it is. One record, one line: only
        # a traceback keeps its line breaks.
        line = printable(line, lines=False)
        return f"{line}\n{printable(record.exc_text)}" if record.exc_text else line


def logs_json(fmt: str, stream: TextIO) -> bool:
    """Whether lines on ``stream`` are JSON: ``[log].format`` "json", or "auto" off a terminal (a service)."""
    return fmt == "json" or (fmt == "auto" and not stream.isatty())


def json_line(message: str, level: str = "error", logger: str = "connector.daemon") -> str:
    """``message`` (masked) as one line shaped like the JSON log's: for what is said outside the log, such as
    `run` refusing to start (port in use, state file locked), which a JSON log pipeline would mis-file as text."""
    record = logging.makeLogRecord({"name": logger, "levelname": level.upper(), "msg": redact(message)})
    return JsonFormatter().format(record)


def configure_logging(fmt: str = "auto", level: str = "INFO", stream=None) -> None:
    """Route all logging to one handler on ``stream`` (stderr by default: stdout is for data output); then log
    the warnings held by ``warn_once_configured``."""
    global _CONFIGURED
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if logs_json(fmt, stream) else TextFormatter())
    handler.addFilter(_RedactFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "paramiko", "apscheduler", "asyncssh"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _CONFIGURED = True
    for logger, message in _HELD:
        logging.getLogger(logger).warning(message)
    _HELD.clear()
