"""Secrets derived at run time: registered like configured ones, a bounded number per owner."""

from __future__ import annotations

from connector.logs import clip, redact, register_basic_auth, register_secrets, register_token


def test_basic_auth_value_is_masked() -> None:
    register_basic_auth("derived-user", "derived-pass-31f9")
    assert redact("Authorization: Basic ZGVyaXZlZC11c2VyOmRlcml2ZWQtcGFzcy0zMWY5") == "Authorization: Basic ***"


def test_only_the_latest_tokens_of_an_owner_are_kept() -> None:
    # A daemon fetching a token per poll for months must not make every log line check thousands of them.
    tokens = [f"rotating-token-{n:04d}" for n in range(10)]
    for token in tokens:
        register_token("shopware https://shop.example SWIAKEEP", token)
    register_token("another integration", "other-token-5c1d")
    assert [redact(t) for t in tokens] == tokens[:7] + ["***"] * 3
    assert redact("other-token-5c1d") == "***"


def test_clip_masks_before_cutting() -> None:
    register_secrets(["clipped-secret-8e2a77"])
    assert clip("x" * 10 + "clipped-secret-8e2a77 tail", 20) == "x" * 10 + "*** tail"[:10]
