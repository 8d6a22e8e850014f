"""Requests to this machine (the sandbox, a local shop, a test server) never go through the environment's proxy."""

from __future__ import annotations

import ipaddress

import httpx

__all__ = ["is_loopback", "loopback_direct"]

_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): a server on this machine."""
    host = (host or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_direct(base_url: str) -> dict[str, httpx.BaseTransport | None]:
    """httpx ``mounts`` that send requests for this machine straight to it, never to ``http_proxy`` or ``HTTPS_PROXY``.

    Plain http is allowed only to loopback because nothing crosses a network there; through a proxy the
    API key or client secret would travel in clear to the proxy's host. Every other URL still goes through
    the environment's proxy (and honours ``NO_PROXY``): that is how a corporate network reaches Karla or a
    shop. A ``None`` mount is httpx's "no proxy": the client's own transport (an injected test one too).
    """
    names = set(_LOOPBACK_NAMES)
    host = httpx.URL(base_url).host
    if is_loopback(host):
        names.add(f"[{host}]" if ":" in host else host)
    return {f"all://{name}": None for name in sorted(names)}
