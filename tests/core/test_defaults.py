"""Defaults that must agree with each other across modules."""

from __future__ import annotations

import pytest

from connector.registry import load_adapter
from connector.settings import DaemonSettings, KarlaSettings


@pytest.mark.parametrize("type_", ["csv", "shopify", "shopware"])
def test_a_request_on_the_wire_ends_within_the_shutdown_grace(type_: str) -> None:
    # Shopify's 60 s was above the 40 s grace: a request still open at SIGTERM was cut off and read again.
    grace = DaemonSettings.model_fields["shutdown_grace_seconds"].default
    field = load_adapter(type_).Config.model_fields.get("timeout_seconds")
    assert field is None or field.default < grace
    assert KarlaSettings.model_fields["timeout_seconds"].default < grace
