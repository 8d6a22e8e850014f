"""Which Karla a state file's deliveries went to (step 13, ``state.karla_target``), and how `sync`, `run` and
`check` judge a change of it (``connector.going_live``; found by review life7)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine
from sqlmodel import SQLModel

from connector.errors import ConfigError
from connector.going_live import _judge, sandbox_refusal
from connector.settings import KarlaSettings, Settings
from state import SCHEMA_VERSION, open_state
from state.karla_target import NotedKarla, normalised, note, noted
from state.models import KarlaTarget
from tests.state_files import schema_file


def _v12_file(path: Path) -> Path:
    """A state file as 0.2.0 before step 13 left it, with an order Karla acknowledged."""
    return schema_file(path, 12, "INSERT INTO delivered (slug, order_key, part, hash, delivered_at) VALUES ('s', '1', 'order', 'h', 1.0)")


def test_a_file_at_schema_12_opens_and_notes_no_karla_until_a_delivery(tmp_path: Path) -> None:
    db = open_state(_v12_file(tmp_path / "v12.db"))
    with db.transaction() as conn:
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == SCHEMA_VERSION == 13
        assert noted(conn) is None  # which Karla acknowledged order 1 is not known: nothing is judged
        assert conn.exec_driver_sql("SELECT order_key FROM delivered").scalars().all() == ["1"]
        assert note(conn, "https://api.gokarla.io/", "shop", False, 5.0) is None
        assert noted(conn) == NotedKarla("https://api.gokarla.io", "shop", False, 5.0)
    db.close()


@pytest.fixture()
def conn() -> Iterator[Connection]:
    """The karla_target table alone, in memory."""
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        SQLModel.metadata.create_all(connection, tables=[KarlaTarget.__table__])  # type: ignore[attr-defined]
        yield connection
    engine.dispose()


def test_the_sandboxs_note_stays_until_deleted(conn: Connection) -> None:
    note(conn, "http://127.0.0.1:8080/", "shop", True, 5.0)
    assert note(conn, "http://127.0.0.1:8080", "shop", True, 6.0) is None  # the same Karla: not written again
    assert noted(conn) == NotedKarla("http://127.0.0.1:8080", "shop", True, 5.0)
    assert note(conn, "https://api.gokarla.io", "shop", False, 7.0) is None  # a real Karla: still the sandbox's file
    assert noted(conn) == NotedKarla("http://127.0.0.1:8080", "shop", True, 5.0)
    note(conn, "http://localhost:9090", "shop", True, 8.0)  # the sandbox on another port: followed
    assert noted(conn) == NotedKarla("http://localhost:9090", "shop", True, 8.0)
    conn.exec_driver_sql("DELETE FROM karla_target")  # README: sure it was never the sandbox
    note(conn, "https://api.gokarla.io", "shop", False, 9.0)
    assert noted(conn) == NotedKarla("https://api.gokarla.io", "shop", False, 9.0)


def test_a_real_karlas_note_follows_it_and_turns_to_the_sandbox_aloud(conn: Connection) -> None:
    """Review chg7a: a `dlq retry` against the sandbox with the production file replaced its remote note by a
    loopback one, silently; the real Karla reached through a local tunnel is the real Karla still."""
    note(conn, "https://api.gokarla.io", "shop", False, 1.0)
    assert note(conn, "http://127.0.0.1:15001", "shop", False, 2.0) == NotedKarla("https://api.gokarla.io", "shop", False, 1.0)
    assert noted(conn) == NotedKarla("http://127.0.0.1:15001", "shop", False, 2.0)  # a tunnel: still real
    was = note(conn, "http://127.0.0.1:8080", "shop", True, 3.0)  # the sandbox acknowledged: the caller warns
    assert was is not None and not was.sandbox
    assert noted(conn) == NotedKarla("http://127.0.0.1:8080", "shop", True, 3.0)


def test_a_file_before_step_13_read_read_only_has_no_note(tmp_path: Path) -> None:
    """`check` reads without upgrading: the table is not there yet."""
    engine = create_engine(f"sqlite:///{_v12_file(tmp_path / 'v12.db')}")
    with engine.connect() as conn:
        assert noted(conn) is None
    engine.dispose()


@pytest.mark.parametrize(("written", "same"), [
    ("HTTPS://API.GoKarla.io:443/", "https://api.gokarla.io"),
    ("http://LOCALHOST:80", "http://localhost"),
    ("http://[::1]:8080/", "http://[::1]:8080"),
    ("https://proxy.example/karla/", "https://proxy.example/karla"),
])
def test_one_karla_written_two_ways_is_one(written: str, same: str) -> None:
    assert normalised(written) == same


def _settings(tmp_path: Path, base_url: str, username: str | None = None) -> Settings:
    karla = KarlaSettings(base_url=base_url, shop_slug="shop", username=username, api_key="k")  # type: ignore[arg-type]
    return Settings(karla=karla, state={"path": tmp_path / "s.db"})  # type: ignore[arg-type]


@pytest.mark.parametrize(("was", "sandbox", "now", "refused", "said"), [
    ("http://127.0.0.1:8080", True, "https://api.gokarla.io", True, False),  # the sandbox's file going live
    ("http://localhost:9000", True, "https://karla.example", True, False),
    ("http://[::1]:8080", True, "https://api.gokarla.io", True, False),
    ("http://devbox:8080", True, "https://api.gokarla.io", True, False),  # a sandbox on another machine too
    ("http://127.0.0.1:8080", True, "http://127.0.0.1:9090", False, False),  # a sandbox restarted; or a tunnel:
    ("http://127.0.0.1:8080", True, "http://127.0.0.1:15001", False, False),  # its answers tell (test_sender_*)
    ("http://127.0.0.1:15001", False, "https://api.gokarla.io", False, True),  # review chg7a: a tunnel, then direct
    ("https://api.gokarla.io", False, "https://api.karla.example", False, True),  # Karla's new domain: said
    ("https://api.gokarla.io", False, "http://127.0.0.1:8080", False, True),
    ("https://api.gokarla.io", False, "https://API.gokarla.io:443/", False, False),  # the same Karla
])
def test_only_the_sandboxs_file_against_a_karla_elsewhere_is_refused_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, was: str, sandbox: bool, now: str, refused: bool, said: bool
) -> None:
    settings = _settings(tmp_path, now)
    caplog.set_level(logging.INFO, "connector")
    if refused:
        with pytest.raises(ConfigError, match=r"count as sent in this file.*set \[state\] path to a new file"):
            _judge(settings, tmp_path / "s.db", NotedKarla(was, "shop", sandbox, 1.0))
    else:
        _judge(settings, tmp_path / "s.db", NotedKarla(was, "shop", sandbox, 1.0))
    assert any("holds deliveries to Karla at" in r.getMessage() for r in caplog.records) == said


def test_another_api_user_of_the_same_karla_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "connector")
    _judge(_settings(tmp_path, "https://api.gokarla.io", "other"), tmp_path / "s.db",
           NotedKarla("https://api.gokarla.io", "shop", False, 1.0))
    assert "(user shop); [karla] is now https://api.gokarla.io (user other)" in caplog.text


def test_the_refusal_names_the_variable_that_overrides_state_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review chg7a: under systemd the advice "set [state] path" changed nothing: the unit's variable wins."""
    was, path = NotedKarla("http://127.0.0.1:8080", "shop", True, 1.0), Path("/var/lib/k/state db")
    monkeypatch.delenv("KARLA_CONNECTOR_STATE__PATH", raising=False)
    plain = sandbox_refusal(path, was, "[karla] base_url is now https://api.gokarla.io", "https://api.gokarla.io")
    assert "set [state] path to a new file" in plain and "overrides" not in plain
    assert "sqlite3 '/var/lib/k/state db' \"DELETE FROM karla_target\"" in plain and "never the sandbox" in plain
    monkeypatch.setenv("KARLA_CONNECTOR_STATE__PATH", str(path))
    said = sandbox_refusal(path, was, "[karla] base_url is now https://api.gokarla.io", "https://api.gokarla.io")
    assert "KARLA_CONNECTOR_STATE__PATH, set in this environment (the service's unit or container), overrides " \
           "[state].path: set it to a new file" in said
