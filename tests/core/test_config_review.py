"""Operator-facing config promises after review: crontab weekdays, disabled sources, environment names,
errors of every table at once, Shopify's credential variables."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connector.errors import ConfigError
from connector.logs import redact
from connector.registry import validate_source, validate_sources
from connector.schedule import cron_trigger
from connector.settings import load_settings

SUNDAY_NOON = datetime(2026, 12, 6, 12, 0, tzinfo=ZoneInfo("UTC"))  # a Sunday: injected, nothing sleeps
SHOPWARE_SECRET = "sw-secret-7c1d"


pytestmark = pytest.mark.usefixtures("clean_env")


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f'[karla]\nshop_slug = "s"\napi_key = "k"\n[sources.w]\ntype = "csv"\nurl = "file:///x"\n{extra}\n')
    return config


def _days(expression: str, count: int = 4) -> list[str]:
    """The weekdays of the next ``count`` fires after Sunday noon."""
    trigger, previous, days = cron_trigger(expression, "UTC"), None, []
    now = SUNDAY_NOON
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, now)
        days.append(previous.strftime("%a"))
        now = previous
    return days


# -- 1: full_sync_cron's day of week as crontab reads it ----------------------------------------------------

@pytest.mark.parametrize(("expression", "days"), [
    ("0 2 * * 0", ["Sun", "Sun"]),
    ("0 2 * * 7", ["Sun", "Sun"]),
    ("0 2 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]),
    ("0 2 * * 0,6", ["Sat", "Sun", "Sat"]),
    ("0 2 * * */2", ["Tue", "Thu", "Sat", "Sun"]),   # 0,2,4,6 (Sunday noon: today's 02:00 is past)
    ("0 2 * * 1-5/2", ["Mon", "Wed", "Fri", "Mon"]),  # a step over a range starts at its first day
    ("0 2 * * 5-7", ["Fri", "Sat", "Sun", "Fri"]),
    ("0 2 * * sun-thu", ["Mon", "Tue", "Wed", "Thu", "Sun"]),
    ("0 2 * * MON", ["Mon", "Mon"]),
    ("0 0 2 * * 0", ["Sun", "Sun"]),                  # six fields: seconds first, same weekdays
])
def test_cron_weekdays_count_as_crontab_does(expression: str, days: list[str]) -> None:
    assert _days(expression, len(days)) == days


def test_cron_weekday_8_and_backward_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="0 and 7 are Sunday"):
        cron_trigger("0 2 * * 8")
    with pytest.raises(ValueError, match="runs backwards"):
        cron_trigger("0 2 * * 5-1")


def test_day_of_month_and_weekday_both_set_are_refused_at_start(tmp_path: Path) -> None:
    from connector.app import Connector

    with pytest.raises(ValueError, match="both set"):
        cron_trigger("0 2 1 * 1")
    settings = load_settings(_config(tmp_path, 'full_sync_cron = "0 2 1-7 * mon"'))
    with pytest.raises(ConfigError, match=r"sources\.w\.full_sync_cron.*both set: crontab runs on either"):
        Connector(settings)
    assert _days("0 2 1 * *", 1) == ["Fri"] and _days("0 2 * * */1", 1) == ["Mon"]  # one of them *: fine


def test_the_daemon_still_wraps_the_trigger_for_dst() -> None:
    from connector.apscheduler_fixes import OncePerWallClock
    from connector.daemon import cron_trigger as daemon_trigger

    trigger = daemon_trigger("30 2 * * 0", "Europe/Berlin")
    assert isinstance(trigger, OncePerWallClock)
    autumn = datetime(2026, 10, 24, 12, tzinfo=ZoneInfo("Europe/Berlin"))  # the clocks go back on Sunday the 25th
    fire = trigger.get_next_fire_time(None, autumn)
    assert fire.strftime("%a %d %H:%M") == "Sun 25 02:30"
    assert trigger.get_next_fire_time(fire, fire).strftime("%a %d") == "Sun 01"  # not again an hour later


# -- 2 and 5: disabled tables do not stop the others; every table's problems at once -----------------------

def _shopware(enabled: str) -> dict[str, object]:
    """As config.example.toml ships it, but with a typo beside the secret (the secret itself may be missing)."""
    return {"type": "shopware", "enabled": enabled, "base_url": "https://shop.example", "client_id": "id",
            "client_secret": SHOPWARE_SECRET, "sales_chanels": {}}


def test_a_disabled_invalid_source_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    sources = {"w": {"type": "csv", "url": "file:///x"}, "sw": _shopware("false")}
    with caplog.at_level(logging.WARNING, logger="connector.registry"):
        checked = validate_sources(sources)
    assert list(checked.valid) == ["w"] and "sources.sw" in checked.disabled["sw"]
    assert any("source sw (enabled = false) skipped" in r.getMessage() for r in caplog.records)
    assert SHOPWARE_SECRET not in redact(f"leaked {SHOPWARE_SECRET}")  # its secrets stay masked


def test_an_enabled_invalid_source_still_stops_start_up() -> None:
    with pytest.raises(ConfigError, match=r"sources\.sw"):
        validate_sources({"w": {"type": "csv", "url": "file:///x"}, "sw": _shopware("true")})


def test_every_bad_source_table_is_listed_in_one_error() -> None:
    sources = {"a": {"type": "csv", "url": "file:///x", "encodin": "x"}, "b": {"type": "csv"}, "c": {"type": "nope"}}
    with pytest.raises(ConfigError) as info:
        validate_sources(sources)
    message = str(info.value)
    assert message.count("invalid configuration") == 1
    assert "sources.a.encodin: unknown key" in message and "sources.b.url" in message and "'nope'" in message


def test_core_and_source_tables_are_listed_together(tmp_path: Path) -> None:
    config = _config(tmp_path, '[log]\nlevel = "loud"\n[sources.v]\ntype = "csv"\nurl = "file:///y"\nencodin = "x"')
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert "log.level" in message and "sources.v.encodin: unknown key" in message and "sources.w" not in message


# -- 3 and 4: environment variable names ---------------------------------------------------------------------

@pytest.mark.parametrize(("variable", "hint"), [
    ("KARLA_CONNECTOR_DEAMON__TIMEZONE", "did you mean daemon?"),
    ("KARLA_CONNECTOR_SOURCE__W__ENCODING", "did you mean sources?"),
    ("KARLA_CONNECTOR_KARLA_API_KEY", "KARLA_CONNECTOR_KARLA__API_KEY (two underscores"),
])
def test_a_typo_in_the_first_part_of_a_variable_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, hint: str
) -> None:
    monkeypatch.setenv(variable, "cp1252")
    with pytest.raises(ConfigError) as info:
        load_settings(_config(tmp_path))
    assert variable in str(info.value) and hint in str(info.value)


def test_a_typo_in_a_credential_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "KARLA_CONNECTOR_KARAL__API_KEY").write_text("secret-value")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    with pytest.raises(ConfigError, match="credential KARLA_CONNECTOR_KARAL__API_KEY: unknown section 'karal'; did you mean karla"):
        load_settings(_config(tmp_path))


def test_the_config_variable_and_nested_names_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARLA_CONNECTOR_CONFIG", str(_config(tmp_path)))
    monkeypatch.setenv("KARLA_CONNECTOR_DAEMON__TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("KARLA_CONNECTOR_STATE", '{"path": "/tmp/k.db"}')  # a whole table as JSON still works
    settings = load_settings()
    assert settings.daemon.timezone == "Europe/Berlin" and settings.state.path == Path("/tmp/k.db")


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("KARLA_CONNECTOR_STATE", "/var/lib/k.db", "set KARLA_CONNECTOR_STATE__PATH"),
    ("KARLA_CONNECTOR_LOG", "debug", "KARLA_CONNECTOR_LOG__<KEY> (keys: format, level)"),
    ("KARLA_CONNECTOR_SOURCES", "x", "KARLA_CONNECTOR_SOURCES__<NAME>__<KEY>"),
])
def test_a_section_given_a_plain_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no config file: the error must not blame one
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__SHOP_SLUG", "s")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings(need_api_key=False)
    message = str(info.value)
    assert f"environment variable {variable} sets the whole" in message and expected in message
    assert "config file" not in message and value not in message  # the value may be a secret


# -- 6: Shopify without credentials names variables that set them ---------------------------------------

def test_shopify_without_credentials_names_the_credential_variables() -> None:
    with pytest.raises(ConfigError) as info:
        validate_source("shop", {"type": "shopify", "shop_domain": "a.myshopify.com"})
    message = str(info.value)
    assert "config table sources.shop: " in message
    assert "env KARLA_CONNECTOR_SOURCES__SHOP__ACCESS_TOKEN, KARLA_CONNECTOR_SOURCES__SHOP__CLIENT_ID, " \
           "KARLA_CONNECTOR_SOURCES__SHOP__CLIENT_SECRET)" in message
    assert "KARLA_CONNECTOR_SOURCES__SHOP)" not in message
