"""Configuration: the example file loads, env overrides nest, bad values name the key and the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connector.app import Connector
from connector.errors import ConfigError
from connector.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture()
def example_key(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """config.example.toml sets no secret (they belong in the environment): give it there the value it had.
    Only the key: its shop sources are commented out, and a secret set for one would make a table of it."""
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__API_KEY", "replace-me")


COMMENTED_SOURCES = ("shop", "shopware")  # the example's shop sources, shipped commented out


def uncommented_example(folder: Path) -> Path:
    """config.example.toml with its commented-out shop sources in use, as its comments tell a user to do it:
    one "# " off each line of each block, from its ``# [sources.NAME...]`` header to the next blank line."""
    header = re.compile(rf"^# \[sources\.({'|'.join(COMMENTED_SOURCES)})[.\]]")
    lines, inside, found = [], False, []
    for line in (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines():
        if header.match(line):
            inside = True
            found.append(line.split("]")[0].removeprefix("# ") + "]")
        elif not line.startswith("# "):
            inside = False
        lines.append(line.removeprefix("# ") if inside else line)
    assert found == ["[sources.shop]", "[sources.shop.carriers]", "[sources.shopware]", "[sources.shopware.carriers]",
                     "[sources.shopware.sales_channels]"], found
    config = folder / "uncommented.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


@pytest.mark.usefixtures("example_key")
def test_example_config_loads_and_every_source_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARLA_CONNECTOR_SOURCES__SHOP__ACCESS_TOKEN", "replace-me")
    monkeypatch.setenv("KARLA_CONNECTOR_SOURCES__SHOPWARE__CLIENT_SECRET", "replace-me")
    settings = load_settings(uncommented_example(tmp_path))
    assert settings.karla.shop_slug == "my-shop"
    assert settings.karla.bulk_max_orders == 50 and settings.karla.bulk_max_bytes == 1_000_000
    connector = Connector(settings)  # validates each [sources.*] with its adapter's Config
    assert {name: rt.config.type for name, rt in connector.sources.items()} == {
        "warehouse": "csv", "shop": "shopify", "shopware": "shopware"}
    assert connector.disabled == {} and connector.broken == {}
    assert all(rt.config.enabled for rt in connector.sources.values())  # uncommented is in use


def test_env_overrides_toml_with_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__API_KEY", "from-env-key")
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__BULK_MAX_ORDERS", "7")
    monkeypatch.setenv("KARLA_CONNECTOR_SOURCES__WAREHOUSE__ENCODING", "cp1252")
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.karla.api_key.get_secret_value() == "from-env-key"
    assert settings.karla.bulk_max_orders == 7
    assert settings.sources["warehouse"]["encoding"] == "cp1252"
    assert settings.sources["warehouse"]["url"] == "file:///srv/exports"  # the rest of the table survives


@pytest.mark.usefixtures("example_key")
def test_config_path_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARLA_CONNECTOR_CONFIG", str(ROOT / "config.example.toml"))
    assert load_settings().karla.shop_slug == "my-shop"


def test_credentials_directory_is_read_like_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "KARLA_CONNECTOR_KARLA__API_KEY").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.karla.api_key.get_secret_value() == "from-credential"


@pytest.mark.parametrize("secret", ["20481632", "null", '"quoted"', "true", "0123"])
@pytest.mark.usefixtures("example_key")
def test_a_source_secret_from_env_or_credential_stays_the_text_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    # Below [sources.NAME.TABLE] pydantic-settings JSON-decoded values: 20481632 became a number (refused),
    # null became "no password", "quoted" lost its quotes.
    monkeypatch.setenv("KARLA_CONNECTOR_SOURCES__WAREHOUSE__SFTP__PASSWORD", secret)
    (tmp_path / "KARLA_CONNECTOR_SOURCES__WAREHOUSE__SFTP__PASSPHRASE").write_text(secret + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    settings = load_settings(ROOT / "config.example.toml")
    sftp = settings.sources["warehouse"]["sftp"]
    assert sftp["password"] == secret and sftp["passphrase"] == secret
    config = Connector(settings).sources["warehouse"].config
    assert config.sftp.password.get_secret_value() == secret  # type: ignore[union-attr]


@pytest.mark.usefixtures("example_key")
def test_a_number_in_a_source_table_from_env_is_converted_by_the_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARLA_CONNECTOR_SOURCES__WAREHOUSE__SFTP__TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("KARLA_CONNECTOR_SOURCES__WAREHOUSE__SFTP__INSECURE_SKIP_HOST_KEY_CHECK", "false")
    settings = load_settings(ROOT / "config.example.toml")
    assert settings.sources["warehouse"]["sftp"]["timeout_seconds"] == "12.5"  # text here, a float in its Config
    assert Connector(settings).sources["warehouse"].config.sftp.timeout_seconds == 12.5  # type: ignore[union-attr]


def test_bad_value_names_key_file_and_env(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\nbulk_max_orders = "lots"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert "karla.bulk_max_orders" in message and str(config) in message
    assert "KARLA_CONNECTOR_KARLA__BULK_MAX_ORDERS" in message


def test_unknown_key_and_missing_file_are_errors(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\nbulk_max_order = 5\n')
    with pytest.raises(ConfigError, match="karla.bulk_max_order"):
        load_settings(config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_bad_source_key_is_named_with_its_source(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\n[sources.w]\ntype = "csv"\nurl = "file:///x"\nencodng = "x"\n')
    with pytest.raises(ConfigError, match="sources.w.encodng: unknown key; did you mean encoding\\? \\(in .*c.toml or the environment"):
        Connector(load_settings(config))


def test_a_misspelt_key_is_named_unknown_with_the_nearest_known_one(tmp_path: Path) -> None:
    # It said "Extra inputs are not permitted" (pydantic's words), with no hint.
    config = tmp_path / "c.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\nbulk_max_order = 3\n[daemon]\nzzz = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert "karla.bulk_max_order: unknown key; did you mean bulk_max_orders?" in str(caught.value)
    assert "daemon.zzz: unknown key (known: health_host," in str(caught.value)


def test_unknown_source_type_lists_installed_adapters(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\n[sources.w]\ntype = "magento"\n')
    with pytest.raises(ConfigError, match=r"unknown source type 'magento'; installed adapters: .*csv"):
        Connector(load_settings(config))


@pytest.mark.usefixtures("example_key")
def test_secrets_are_masked_in_repr(tmp_path: Path) -> None:
    settings = load_settings(ROOT / "config.example.toml")
    assert "replace-me" not in repr(settings) and "replace-me" not in str(settings.karla.model_dump())
    connector = Connector(settings)
    for runtime in connector.sources.values():  # validated adapter configs hold SecretStr
        assert "replace-me" not in repr(runtime.config) + str(runtime.config)


def _config(tmp_path: Path, extra: str = "", source: str = "") -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f'[karla]\nshop_slug = "s"\napi_key = "k"\n{extra}\n[sources.w]\ntype = "csv"\nurl = "file:///x"\n{source}\n')
    return config


def test_bad_daemon_timezone_names_key_and_env(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_config(tmp_path, '[daemon]\ntimezone = "Europe/Berlinn"'))
    message = str(info.value)
    assert "daemon.timezone" in message and "Europe/Berlinn" in message and "KARLA_CONNECTOR_DAEMON__TIMEZONE" in message
    assert load_settings(_config(tmp_path, '[daemon]\ntimezone = "Europe/Berlin"')).daemon.timezone == "Europe/Berlin"


def test_log_level_is_checked_and_case_insensitive(tmp_path: Path) -> None:
    assert load_settings(_config(tmp_path, '[log]\nlevel = "warning"')).log.level == "WARNING"
    with pytest.raises(ConfigError, match=r"log\.level: .*'verbose'.*DEBUG, INFO, WARNING, ERROR"):
        load_settings(_config(tmp_path, '[log]\nlevel = "verbose"'))


@pytest.mark.parametrize("encoding", ["nonexistent-enc", "base64", "utf-16"])
def test_bad_csv_encoding_stops_start_up_naming_the_key(tmp_path: Path, encoding: str) -> None:
    settings = load_settings(_config(tmp_path, source=f'encoding = "{encoding}"'))
    with pytest.raises(ConfigError, match=rf"sources\.w\.encoding: .*{encoding}"):
        Connector(settings)


def test_csv_encoding_accepts_python_codec_names(tmp_path: Path) -> None:
    connector = Connector(load_settings(_config(tmp_path, source='encoding = "CP1252"')))
    assert connector.sources["w"].config.encoding == "CP1252"


@pytest.mark.parametrize(("cron", "why"), [
    ("0 25 * * *", "maximum value"),        # hour 25
    ("@daily", "expected 5 crontab fields"),  # APScheduler has no @-aliases
    ("0 2 * *", "got 4"),
])
def test_bad_full_sync_cron_stops_start_up_naming_the_key(tmp_path: Path, cron: str, why: str) -> None:
    settings = load_settings(_config(tmp_path, source=f'full_sync_cron = "{cron}"'))
    with pytest.raises(ConfigError) as info:
        Connector(settings)
    message = str(info.value)
    assert "sources.w.full_sync_cron" in message and why in message


def test_full_sync_cron_is_validated_by_the_parser_the_daemon_schedules_with(tmp_path: Path) -> None:
    from connector.daemon import cron_trigger

    connector = Connector(load_settings(_config(tmp_path, source='full_sync_cron = "*/30 * * * * *"')))  # 6 fields: seconds
    trigger = cron_trigger(connector.sources["w"].config.full_sync_cron, "Europe/Berlin")
    fields = {field.name: str(field) for field in trigger.fields}
    assert fields["second"] == "*/30" and fields["minute"] == "*"
    with pytest.raises(ConfigError, match="full_sync_cron '0 25 \\* \\* \\*'"):
        cron_trigger("0 25 * * *", "UTC")


def test_importing_the_adapter_contract_does_not_import_apscheduler() -> None:
    """SourceConfig validates full_sync_cron with APScheduler, imported only when a cron is set."""
    import subprocess
    import sys

    code = "import sys, adapters.base; print(sorted(m for m in sys.modules if m.startswith('apscheduler')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_default_config_file_is_named_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings()
    first, *rest = str(info.value).splitlines()
    assert f"karla-connector.toml (in {tmp_path}) not found" in first
    assert "--config" in first and "KARLA_CONNECTOR_CONFIG" in first
    assert any("config key karla" in line for line in rest)


def test_missing_default_config_is_fine_when_the_environment_has_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__SHOP_SLUG", "env-shop")
    monkeypatch.setenv("KARLA_CONNECTOR_KARLA__API_KEY", "env-key")
    assert load_settings().karla.shop_slug == "env-shop"


def test_config_path_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "config.toml"
    folder.mkdir()  # what `docker run -v missing-file:...` leaves behind
    with pytest.raises(ConfigError, match=rf"config file {folder} is a directory"):
        load_settings(folder)


def test_unreadable_credential_names_the_file_not_the_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "KARLA_CONNECTOR_KARLA__API_KEY").write_bytes(b"\xffsecret")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    with pytest.raises(ConfigError) as info:
        load_settings(ROOT / "config.example.toml")
    message = str(info.value)
    assert "KARLA_CONNECTOR_KARLA__API_KEY" in message and "not UTF-8" in message
    assert "secret" not in message and "0xff" not in message


@pytest.mark.usefixtures("example_key")
def test_source_names_that_differ_only_in_case_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An override for [sources.MyShop] arrives as `myshop`: it must not become a second, half-set source."""
    config = tmp_path / "c.toml"
    config.write_text(
        (ROOT / "config.example.toml").read_text().replace("[sources.warehouse", "[sources.Warehouse"), encoding="utf-8"
    )
    assert "Warehouse" in load_settings(config).sources  # alone, a capital letter is allowed
    monkeypatch.setenv("KARLA_CONNECTOR_SOURCES__WAREHOUSE__ENCODING", "cp1252")
    with pytest.raises(ConfigError, match=r"differ only in case .*name the table \[sources.warehouse\]"):
        load_settings(config)


def test_karla_base_url_is_https_or_a_loopback_sandbox(tmp_path: Path) -> None:
    """The API key goes with every request: plain http only where nothing crosses a network."""
    config = tmp_path / "k.toml"
    for url in ("http://127.0.0.1:8080", "http://localhost:8080/v1", "https://api.gokarla.io"):
        config.write_text(f'[karla]\nshop_slug = "s"\napi_key = "k"\nbase_url = "{url}"\n')
        assert load_settings(config).karla.base_url == url.removesuffix("/v1")
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\nbase_url = "http://karla-proxy.internal"\n')
    with pytest.raises(ConfigError, match=r"karla.base_url: .*http:// only for a sandbox on 127.0.0.1"):
        load_settings(config)


def test_a_relative_state_path_is_next_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Read from the folder a command ran in, a cron job or a shell elsewhere started over from an empty state
    # and sent everything again.
    (tmp_path / "etc").mkdir()
    (tmp_path / "elsewhere").mkdir()
    config = tmp_path / "etc" / "k.toml"
    config.write_text('[karla]\nshop_slug = "s"\napi_key = "k"\n[state]\npath = "state/k.db"\n')
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_settings(config).state.path == tmp_path / "etc" / "state" / "k.db"
    # A state file an earlier version created in the current folder is not silently left behind.
    (tmp_path / "elsewhere" / "state").mkdir()
    (tmp_path / "elsewhere" / "state" / "k.db").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"next to the config file.*does not exist.*move it there"):
        load_settings(config)


@pytest.mark.usefixtures("example_key")
def test_a_source_named_karla_is_refused(tmp_path: Path) -> None:
    """/readyz, status and the logs call the delivery 'karla': a source of that name shared its failure clock
    (a healthy source hid a Karla outage, and answered drains a broken source)."""
    config = tmp_path / "c.toml"
    config.write_text((ROOT / "config.example.toml").read_text().replace("[sources.warehouse", "[sources.Karla"),
                      encoding="utf-8")
    with pytest.raises(ConfigError, match=r"a source may not be named 'karla'"):
        load_settings(config)
