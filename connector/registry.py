"""Finding adapters: the ``karla_connector.adapters`` entry-point group, loaded lazily and checked.

Our own adapters are declared in ``pyproject.toml`` exactly like a third party's, so there is one path.
A broken plugin is reported and skipped; it never takes the daemon down with it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import TypeAdapter, ValidationError

from adapters.base import Adapter, SourceConfig
from connector.errors import ConfigError
from connector.logs import named_secrets, register_secrets, secret_values

__all__ = [
    "GROUP", "AdapterInfo", "AdapterLoadError", "CheckedSources", "available", "is_enabled", "load_adapter",
    "register_source_secrets", "validate_source", "validate_sources",
]

GROUP = "karla_connector.adapters"
log = logging.getLogger(__name__)


class AdapterLoadError(ConfigError):
    """An installed adapter could not be imported or breaks the contract: skip its sources, run the rest."""


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    type: str
    entry_point: str
    distribution: str | None
    version: str | None


_WARNED: set[str] = set()
_OURS = "karla-connector"  # this distribution: its csv, shopify and shopware are never replaced by a plugin


def _entry_points() -> dict[str, EntryPoint]:
    """By name. Where installed packages declare one name, the one ``_used`` picks, warned about once."""
    found: dict[str, dict[str, EntryPoint]] = {}
    for ep in entry_points(group=GROUP):
        same = found.setdefault(ep.name, {})  # one class declared twice (installed twice) is no conflict
        if ep.value not in same or _ours(ep):
            same[ep.value] = ep
    return {name: _used(name, list(eps.values())) for name, eps in found.items()}


def _used(name: str, eps: list[EntryPoint]) -> EntryPoint:
    """Our own adapter, else the last by package name and entry point: the same on every machine, where the order
    packages are found in follows the file system. Not a broken plugin: installing a second package must not stop
    a source that runs; the warning names both, and the one used."""
    eps = sorted(eps, key=lambda ep: (_ours(ep), _dist(ep).lower(), ep.value))
    used = eps[-1]
    if len(eps) > 1 and name not in _WARNED:
        _WARNED.add(name)
        others = ", ".join(f"{ep.value} ({_dist(ep)})" for ep in eps[:-1])
        why = "the built-in one" if _ours(used) else "the last by package name"
        log.warning("%s installed adapters are named %r: %s (%s) is used, %s; %s ignored. Uninstall the package you "
                    "do not want", "two" if len(eps) == 2 else len(eps), name, used.value, _dist(used), why, others)
    return used


def _dist(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist else "unknown package"


def _ours(ep: EntryPoint) -> bool:
    return re.sub(r"[-_.]+", "-", _dist(ep)).lower() == _OURS


def available() -> list[AdapterInfo]:
    infos = []
    for name, ep in sorted(_entry_points().items()):
        dist = ep.dist
        infos.append(AdapterInfo(name, ep.value, dist.name if dist else None, dist.version if dist else None))
    return infos


def load_adapter(type_: str) -> type[Adapter]:
    """The adapter class for ``type_``; ``ConfigError`` lists the installed types when it is unknown."""
    eps = _entry_points()
    if type_ not in eps:
        names = ", ".join(sorted(eps)) or "none"
        raise ConfigError(f"unknown source type {type_!r}; installed adapters: {names}")
    try:
        cls = eps[type_].load()
    except Exception as exc:  # a third-party import error must not look like our crash
        raise AdapterLoadError(f"adapter {type_!r} ({eps[type_].value}) failed to load: {exc!r}") from exc
    problems = _contract_problems(cls)
    if problems:
        raise AdapterLoadError(f"adapter {type_!r} ({eps[type_].value}) does not satisfy the adapter contract: {problems}")
    if cls.type != type_:
        # Users write the entry-point name as `type = "..."`, and the class's Config only accepts its own `type`:
        # without this check the mismatch surfaces later as a puzzling "sources.NAME.type: Input should be ..."
        # that stops every source, not only this plugin's.
        raise AdapterLoadError(
            f"adapter {type_!r} ({eps[type_].value}): the entry-point name is {type_!r} but the class declares "
            f"type = {cls.type!r}; the two must be the same (fix the plugin's entry point or its class)"
        )
    field = cls.Config.model_fields.get("type")
    if field is not None:
        try:
            TypeAdapter(field.annotation).validate_python(type_)
        except ValidationError:
            raise AdapterLoadError(
                f"adapter {type_!r} ({eps[type_].value}): its Config ({cls.Config.__name__}) does not accept "
                f"type = {type_!r} (its type field is {field.annotation!r})"
            ) from None
    return cls


def _contract_problems(cls: Any) -> str:
    missing = [n for n in ("check", "streams", "read") if not callable(getattr(cls, n, None))]
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, SourceConfig)):
        missing.append("Config (a SourceConfig subclass)")
    if not isinstance(getattr(cls, "type", None), str):
        missing.append("type")
    return ", ".join(f"missing {m}" for m in missing)


def validate_source(name: str, raw: dict[str, Any]) -> tuple[type[Adapter], SourceConfig]:
    """Validate one ``[sources.NAME]`` table with its adapter's ``Config``; errors name the keys."""
    type_ = raw.get("type")
    if not type_:
        raise ConfigError(_orphan_message(name, raw) or f"config key sources.{name}.type is missing (e.g. type = \"csv\")")
    try:
        cls = load_adapter(str(type_))
    except AdapterLoadError:
        raise
    except ConfigError as exc:  # an unknown type: named as the other config errors are, by its key
        raise ConfigError(f"sources.{name}.type: {exc}") from None
    try:
        config = cls.Config.model_validate(raw)
    except ValidationError as exc:
        from connector.settings import describe_validation_error

        raise ConfigError(describe_validation_error(exc, None, prefix=f"sources.{name}", model=cls.Config)) from None
    register_secrets(secret_values(config))  # masked in every log line and in what commands print or store
    return cls, config


def _orphan_message(name: str, raw: dict[str, Any]) -> str | None:
    """A table of sub-tables only is what deleting a source's main table leaves behind (its
    ``[sources.NAME.carriers]`` kept): asking for its ``type`` would point the wrong way."""
    if not raw or not all(isinstance(value, dict) for value in raw.values()):
        return None
    subs = ", ".join(f"[sources.{name}.{sub}]" for sub in raw)
    return (f"[sources.{name}] has no keys of its own, only {subs}: a leftover of a removed or renamed source? "
            "Remove it, or move it under the source it belongs to")


def register_source_secrets(sources: dict[str, dict[str, Any]]) -> None:
    """Register each source's ``SecretStr`` values for masking, for every command. A table that fails to
    validate (its secret is the service's credential, not readable in this shell; a typo ``check``
    reports) has its values under secret-named keys masked instead: only there is a name the best guess,
    elsewhere it would mask a plain ``sort_key`` value everywhere."""
    for name, raw in sources.items():
        try:
            validate_source(name, raw)
        except Exception:  # noqa: BLE001 - only masking is at stake here
            register_secrets(named_secrets(raw))


@dataclass(frozen=True, slots=True)
class CheckedSources:
    """Every ``[sources.*]`` table, sorted by what happens to it.

    ``valid``: name -> (adapter class, config). ``broken``: an enabled source whose adapter failed to load
    (skipped and reported, the others run). ``disabled``: an ``enabled = false`` table that fails validation
    (skipped with a warning: a table nobody runs, such as a shop source disabled while its secret is not
    set, must not stop the ones that do)."""

    valid: dict[str, tuple[type[Adapter], SourceConfig]]
    broken: dict[str, str]
    disabled: dict[str, str]


def validate_sources(sources: dict[str, dict[str, Any]]) -> CheckedSources:
    """All tables at once; one ``ConfigError`` lists the problems of every enabled table, not the first."""
    checked, problems = _sorted(sources)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    for name, error in checked.disabled.items():
        log.warning("source %s (enabled = false) skipped: %s", name, error, extra={"source": name})
    for name, error in checked.broken.items():
        log.error("source %s skipped: %s", name, error, extra={"source": name})
    return checked


def source_problems(sources: dict[str, dict[str, Any]]) -> list[str]:
    """The lines ``validate_sources`` would refuse, for an error that already lists the core tables' problems."""
    return _sorted(sources)[1]


def _sorted(sources: dict[str, dict[str, Any]]) -> tuple[CheckedSources, list[str]]:
    """Each table validated and sorted; the problem lines of enabled tables that fail (no logging here)."""
    checked, problems = CheckedSources({}, {}, {}), []
    for name, raw in sources.items():
        try:
            checked.valid[name] = validate_source(name, raw)
        except ConfigError as exc:
            if not is_enabled(raw):
                checked.disabled[name] = "; ".join(problem_lines(str(exc)))
                register_secrets(named_secrets(raw))  # masked as register_source_secrets does
            elif isinstance(exc, AdapterLoadError):  # a broken plugin: reported, the other sources run
                checked.broken[name] = str(exc)
            else:
                problems += problem_lines(str(exc))
    return checked, problems


def problem_lines(message: str) -> list[str]:
    """A ``ConfigError``'s problems one per line, without the "invalid configuration:" heading."""
    return message.removeprefix("invalid configuration:\n  ").split("\n  ")


def is_enabled(raw: dict[str, Any]) -> bool:
    """As the source's ``Config`` reads ``enabled`` (``"false"`` from the environment is false); a value that is
    no boolean counts as enabled, so its table is checked strictly and the mistake reported."""
    try:
        return bool(TypeAdapter(bool).validate_python(raw.get("enabled", True)))
    except ValidationError:
        return True
