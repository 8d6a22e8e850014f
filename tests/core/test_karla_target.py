"""Which Karla a state file's deliveries went to (step 13, ``state.karla_target``), and how `sync`, `run` and
`check` judge a change of it (``connector.going_live``; found by review life7)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from connector.errors import ConfigError
from connector.going_live import _judge
from connector.settings import KarlaSettings, Settings
from state import SCHEMA_VERSION, open_state
from state.karla_target import NotedKarla, normalised, note, noted
from state.migrations import MIGRATIONS


def _v12_file(path: Path) -> Path:
    """A state file as 0.2.0 before step 13 left it, with an order Karla acknowledged."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for migrate in MIGRATIONS[:12]:
            migrate(conn)
        conn.exec_driver_sql("PRAGMA user_version = 12")
        conn.exec_driver_sql("INSERT INTO delivered (slug, order_key, part, hash, delivered_at) VALUES ('s', '1', 'order', 'h', 1.0)")
    engine.dispose()
    return path


def test_a_file_at_schema_12_opens_and_notes_no_karla_until_a_delivery(tmp_path: Path) -> None:
    db = open_state(_v12_file(tmp_path / "v12.db"))
    with db.transaction() as conn:
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == SCHEMA_VERSION == 13
        assert noted(conn) is None  # which Karla acknowledged order 1 is not known: nothing is judged
        assert conn.exec_driver_sql("SELECT order_key FROM delivered").scalars().all() == ["1"]
        note(conn, "http://127.0.0.1:8080/", "shop", 5.0)
        note(conn, "http://127.0.0.1:8080", "shop", 6.0)  # the same Karla: not written again
        assert noted(conn) == NotedKarla("http://127.0.0.1:8080", "shop", 5.0)
        note(conn, "https://api.gokarla.io", "shop", 7.0)  # `dlq retry` against the real Karla: still the sandbox's file
        assert noted(conn) == NotedKarla("http://127.0.0.1:8080", "shop", 5.0)
        note(conn, "http://localhost:9090", "shop", 8.0)  # another Karla on this machine: followed
        assert noted(conn) == NotedKarla("http://localhost:9090", "shop", 8.0)
        conn.exec_driver_sql("DELETE FROM karla_target")  # README: a local proxy to the same Karla
        note(conn, "https://api.gokarla.io", "shop", 9.0)
        note(conn, "https://karla.example", "other", 10.0)  # Karla's new domain, another user: followed
        assert noted(conn) == NotedKarla("https://karla.example", "other", 10.0)
    db.close()


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


@pytest.mark.parametrize(("was", "now", "refused", "said"), [
    ("http://127.0.0.1:8080", "https://api.gokarla.io", True, False),  # the sandbox's file going live
    ("http://localhost:9000", "https://karla.example", True, False),
    ("http://[::1]:8080", "https://api.gokarla.io", True, False),
    ("https://api.gokarla.io", "https://api.karla.example", False, True),  # Karla's new domain: said, not refused
    ("https://api.gokarla.io", "http://127.0.0.1:8080", False, True),
    ("http://127.0.0.1:8080", "http://127.0.0.1:9090", False, False),  # tests, a second sandbox
    ("https://api.gokarla.io", "https://API.gokarla.io:443/", False, False),  # the same Karla
])
def test_only_a_karla_on_this_machine_to_one_elsewhere_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, was: str, now: str, refused: bool, said: bool
) -> None:
    settings = _settings(tmp_path, now)
    caplog.set_level(logging.INFO, "connector")
    if refused:
        with pytest.raises(ConfigError, match=r"set \[state\] path \(KARLA_CONNECTOR_STATE__PATH\) to a new file"):
            _judge(settings, tmp_path / "s.db", NotedKarla(was, "shop", 1.0))
    else:
        _judge(settings, tmp_path / "s.db", NotedKarla(was, "shop", 1.0))
    assert any("holds deliveries to Karla at" in r.getMessage() for r in caplog.records) == said


def test_another_api_user_of_the_same_karla_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "connector")
    _judge(_settings(tmp_path, "https://api.gokarla.io", "other"), tmp_path / "s.db",
           NotedKarla("https://api.gokarla.io", "shop", 1.0))
    assert "(user shop); [karla] is now https://api.gokarla.io (user other)" in caplog.text
