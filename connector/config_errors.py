"""Configuration errors people can act on: the dotted key, what is wrong, where the value came from and the
environment variable that sets it; a misspelt key is named unknown, with the nearest known one."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from connector.envsources import ENV_PREFIX

__all__ = ["describe"]


def describe(
    exc: ValidationError, path: Path | None, prefix: str = "", where: str | None = None, model: type[BaseModel] | None = None
) -> str:
    """One line per problem: dotted key, what is wrong, and where the value came from. A misspelt key
    (``model`` given) is named as unknown, with the nearest known key as a suggestion."""
    where = where or (f"in {path} or the environment" if path else "in the config file or the environment")
    lines = []
    for err in exc.errors():
        parts = [*(prefix.split(".") if prefix else []), *(str(p) for p in err["loc"])]
        key = ".".join(parts)
        keys = _named_keys(key, err, model) if not err["loc"] and model else _required_keys(key, err, model)
        env = ", ".join(ENV_PREFIX + k.upper().replace(".", "__") for k in keys)
        message = _unknown_key(err["loc"], model) if err["type"] == "extra_forbidden" and model else err["msg"]
        lines.append(f"config {'key' if err['loc'] else 'table'} {key}: {message} ({where}; env {env})")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _required_keys(key: str, err: Any, model: type[BaseModel] | None) -> list[str]:
    """A missing table (no [karla] at all) is set from the environment key by key: name those keys, not
    ``KARLA_CONNECTOR_KARLA``, which sets nothing."""
    field = model.model_fields.get(str(err["loc"][0])) if model and err["type"] == "missing" and len(err["loc"]) == 1 else None
    inner = field.annotation if field else None
    if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
        return [key]
    return [f"{key}.{name}" for name, f in inner.model_fields.items() if f.is_required()] or [key]


def _named_keys(key: str, err: Any, model: type[BaseModel]) -> list[str]:
    """A whole table's error ("set access_token, or client_id and client_secret") has no key of its own, and
    ``KARLA_CONNECTOR_SOURCES__SHOP`` sets nothing: name the variables of the keys its message mentions."""
    words = set(re.findall(r"\w+", str(err["msg"])))
    named = [f"{key}.{name}" for name in model.model_fields if name in words]
    return named or [f"{key}.<key>"]


def _unknown_key(loc: tuple[Any, ...], model: type[BaseModel]) -> str:
    """"unknown key; did you mean after_processing?" for a key no field of its table has."""
    for step in loc[:-1]:
        field = model.model_fields.get(str(step))
        inner = field.annotation if field else None
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return "unknown key"
        model = inner
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f"unknown key; did you mean {close[0]}?" if close else f"unknown key (known: {', '.join(model.model_fields)})"
