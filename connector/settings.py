"""Configuration: one TOML file, every key overridable from the environment (and systemd credentials).

Precedence, highest first: environment (``KARLA_CONNECTOR_KARLA__API_KEY``), files in
``$CREDENTIALS_DIRECTORY`` named like those variables (systemd ``LoadCredential=``), then the TOML file.
Source sections stay raw dicts here and are validated by their adapter's ``Config`` model (see
``connector.registry``), so a third-party adapter's keys are checked just as strictly as ours.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from connector.config_errors import describe
from connector.config_file import not_found, readable
from connector.envsources import ENV_PREFIX, CredentialsSource, EnvSource, key_origin, reason as _reason
from connector.errors import ConfigError
from connector.retry import CaFile
from connector.schedule import check_timezone, cron_trigger

__all__ = [
    "DaemonSettings",
    "KarlaSettings",
    "LogSettings",
    "Settings",
    "StateSettings",
    "check_timezone",
    "config_path",
    "cron_trigger",
    "load_settings",
]

DEFAULT_CONFIG = Path("karla-connector.toml")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KarlaSettings(_Section):
    base_url: str = Field("https://api.gokarla.io", description="API root without /v1")
    shop_slug: str = Field(min_length=1, description="Karla shop that receives the orders")
    username: str | None = Field(None, description="API key user name; defaults to shop_slug")
    api_key: SecretStr = Field(description="API key (better: env KARLA_CONNECTOR_KARLA__API_KEY)")
    api_version: str | None = Field(
        None, description="Karla API version sent as the Karla-Version header on every request, to try a dated "
        "version before upgrading; unset: Karla's latest stable version"
    )
    bulk_max_orders: int = Field(50, ge=1, le=1000, description="Items per Bulk Fulfillment call")
    bulk_max_bytes: int = Field(1_000_000, ge=10_000, description="Request body bytes per Bulk Fulfillment call")
    max_in_flight: int = Field(
        1, ge=1, le=16, description="Bulk calls on the wire at once; Karla publishes no limit, so raise it only with Karla's consent"
    )
    deliver_while_reading_after: int = Field(
        1000, ge=0, description="Parts a sync queues before it delivers complete orders from a second process "
        "while it reads on (0: deliver only after reading)"
    )
    timeout_seconds: float = Field(30.0, gt=0, description="Per-request timeout")
    verify_tls: bool = Field(True, description="Verify Karla's TLS certificate (keep on; false is logged as a warning)")
    ca_file: CaFile = Field(
        None, description="PEM file of the CAs that sign Karla's certificate (a TLS-inspecting proxy's); replaces the default CAs"
    )
    retry_attempts: int = Field(6, ge=1, description="Attempts per request before a run gives up (exit 3)")
    retry_max_seconds: float = Field(300.0, gt=0, description="Total time one request may spend retrying")
    unknown_order_max_age_hours: float = Field(
        72.0, gt=0, description="How long trackings wait for an order Karla does not know before they are dead-lettered"
    )
    failing_order_max_age_hours: float = Field(
        72.0, gt=0, description="How long an order Karla keeps failing on (a 500 for it alone) is retried before it is dead-lettered"
    )

    @field_validator("base_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.rstrip("/")
        if value.endswith("/v1"):
            value = value[:-3]
        from adapters.http import has_userinfo, safe_scheme  # here: adapters.http imports retry, which needs settings

        if has_userinfo(value):  # the URL is named in messages and logs
            raise ValueError("must not contain user:password@ (it would be shown in messages and logs): "
                             "the API key goes in api_key or KARLA_CONNECTOR_KARLA__API_KEY")
        if not safe_scheme(value):  # the API key goes with every request: never in clear text across a network
            raise ValueError("must start with https:// (http:// only for a sandbox on 127.0.0.1, ::1 or localhost)")
        return value

    @field_validator("api_version")
    @classmethod
    def _header_value(cls, value: str | None) -> str | None:
        """Checked at load: a value httpx cannot send would fail every request, with a less helpful message."""
        if value is not None and (not value.strip() or not value.isascii() or not value.isprintable()):
            raise ValueError("must be a version as Karla's changelog names it (printable ASCII, e.g. a date), or left out")
        return value.strip() if value is not None else None

    @property
    def user(self) -> str:
        return self.username or self.shop_slug


class StateSettings(_Section):
    path: Path = Field(
        Path("karla-connector.db"), description="SQLite state file (cursors, outbox, dead letters); relative: next to the config file"
    )


class DaemonSettings(_Section):
    health_host: str = Field("127.0.0.1", description="Address of /healthz, /readyz, /metrics")
    health_port: int = Field(9308, ge=0, le=65535, description="Port of the health server; 0 disables it")
    timezone: str = Field("UTC", description="Time zone of full_sync_cron expressions, e.g. Europe/Berlin")
    delivery_interval: float = Field(30.0, gt=0, description="Seconds between outbox drains in `run`")
    shutdown_grace_seconds: float = Field(
        40.0, ge=0, description="How long SIGTERM waits for in-flight work (above the 30 s request timeouts)"
    )
    ready_max_failure_seconds: float = Field(
        3600.0, gt=0, description="/readyz fails when a source has been failing for longer than this"
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)


class LogSettings(_Section):
    format: Literal["auto", "json", "text"] = Field("auto", description="auto: text on a terminal, JSON lines otherwise")
    level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR (any case)")

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(LOG_LEVELS)}")
        return value.upper()


class Settings(BaseSettings):
    """The whole configuration. ``sources`` maps a source name to its raw table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True, case_sensitive=False
    )

    karla: KarlaSettings
    state: StateSettings = StateSettings()
    daemon: DaemonSettings = DaemonSettings()
    log: LogSettings = LogSettings()
    # Raw tables may hold secrets until their adapter's Config turns them into SecretStr: keep them out of repr.
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False)

    @field_validator("sources")
    @classmethod
    def _names_differ_beyond_case(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # Environment names arrive lowercased: KARLA_CONNECTOR_SOURCES__MYTOY__X beside [sources.MyToy]
        # would otherwise become a second, half-configured source.
        seen: dict[str, str] = {}
        for name in value:
            if name.lower() == "karla":  # /readyz, the logs and the run history name the delivery so
                raise ValueError("a source may not be named 'karla': /readyz, status and the logs call the delivery "
                                 "to Karla that; name the table after the shop or system it reads, e.g. [sources.shop]")
            other = seen.setdefault(name.lower(), name)
            if other != name:
                lower = name.lower()
                raise ValueError(f"sources {other!r} and {name!r} differ only in case (environment variable names are "
                                 f"not case-sensitive): name the table [sources.{lower}]")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, EnvSource(settings_cls), CredentialsSource(settings_cls)]
        if _TOML_PATH is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_TOML_PATH))
        if not _NEED_API_KEY:
            sources.append(_NoApiKey(settings_cls))
        return tuple(sources)


class _NoApiKey(PydanticBaseSettingsSource):
    """Lowest precedence: an empty API key for commands that never call Karla (``status``, ``dlq list``,
    ``dlq drop``). Under systemd the key is a ``LoadCredential=`` file only the service can read; an
    operator's shell beside it has none, and these commands must still work there."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return {"karla": {"api_key": ""}}


_NEED_API_KEY = True
_TOML_PATH: Path | None = None
_LOADED_FROM: Path | None = None  # the file of the last load_settings, for errors found later (source tables)


def config_path(explicit: Path | None) -> tuple[Path, bool]:
    """The file to load and whether the user named it (a named file must exist)."""
    if explicit is not None:
        return explicit, True
    env = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if env:
        return Path(env), True
    return DEFAULT_CONFIG, False


def load_settings(explicit: Path | None = None, *, need_api_key: bool = True) -> Settings:
    """Load and validate; any problem becomes a ``ConfigError`` naming the key and the file.

    ``need_api_key=False`` for commands that never call Karla: a missing ``karla.api_key`` is then empty.
    """
    global _TOML_PATH, _LOADED_FROM, _NEED_API_KEY
    path, named = config_path(explicit)
    found = readable(path, named)
    _TOML_PATH = _LOADED_FROM = path if found else None
    _NEED_API_KEY = need_api_key
    try:
        settings = Settings()
        settings = _anchored(settings, path) if found else settings
    except ValidationError as exc:
        if found:
            raise ConfigError(describe_validation_error(exc, path, model=Settings) + _sources_too()) from None
        # Without a file every key must come from the environment: say first that the file was not found.
        raise ConfigError(
            f"{not_found(path)}; without one, every required key must come from the environment\n"
            + describe_validation_error(exc, None, where="in the environment", model=Settings) + _sources_too()
        ) from None
    except (ValueError, OSError) as exc:  # TOML syntax errors, a file that vanished or changed meanwhile
        raise ConfigError(f"cannot read config file {path}: {_reason(exc)}") from None
    finally:
        _TOML_PATH, _NEED_API_KEY = None, True
    if need_api_key and not settings.karla.api_key.get_secret_value().strip():
        raise ConfigError("invalid configuration:\n  config key karla.api_key: is empty (set "
                          f"{key_origin(path if found else None)}): set it to your Karla API key")
    return settings


class _RawSources(Settings):
    """Only the source tables, for an error in the core tables that should list theirs too."""

    model_config = SettingsConfigDict(extra="ignore")
    karla: Any = None
    state: Any = None
    daemon: Any = None
    log: Any = None


def _sources_too() -> str:
    """The source tables' problems, appended to the core tables': all mistakes in one round, not one a run."""
    from connector.registry import source_problems  # here: the registry imports adapters, which import settings

    try:
        lines = source_problems(_RawSources().sources)
    except Exception:  # noqa: BLE001 - the core tables' error is the one to raise; this only adds to it
        return ""
    return "".join(f"\n  {line}" for line in lines)


def _anchored(settings: Settings, config: Path) -> Settings:
    """A relative ``[state].path`` is next to the config file, not in whatever folder a command runs from: a
    cron job or a colleague's shell elsewhere started over from an empty state and sent everything again.
    A state file of that name in the current folder only (where earlier versions put it) is refused."""
    state = settings.state.path
    if state.is_absolute():
        return settings
    anchored, here = (config.parent / state).absolute(), Path.cwd() / state
    if not anchored.exists() and here.exists() and here.resolve() != anchored.resolve():
        raise ConfigError(
            f"[state].path {state} is relative, so it is read next to the config file, as {anchored}, which does not "
            f"exist; but {here} does (earlier versions read it in the folder they ran from): move it there (with its "
            "-wal, -shm and .lock files), or set an absolute [state].path"
        )
    return settings.model_copy(update={"state": settings.state.model_copy(update={"path": anchored})})


def describe_validation_error(
    exc: ValidationError, path: Path | None, prefix: str = "", where: str | None = None, model: type[BaseModel] | None = None
) -> str:
    """See ``connector.config_errors.describe``; a source's table is checked after loading: still name its file."""
    return describe(exc, path or _LOADED_FROM, prefix, where, model)
