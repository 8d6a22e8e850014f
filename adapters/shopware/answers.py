"""Reading Shopware's error answers: its JSON ``{"errors": [...]}`` body, and what is not Shopware's at all.

Kept apart from ``client`` (which decides what to do with an answer): these only read one response.
A 401 or 403 without Shopware's JSON errors, or with an HTTP basic-auth challenge, comes from something in
front of the shop (a password-protected staging site, a WAF or CDN): blaming the integration's credentials
or privileges for it would send the merchant to the wrong screen (``gatekeeper``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from connector.errors import ConfigError, FatalError
from connector.logs import clip
from connector.retry import parse_retry_after

__all__ = ["error_text", "gatekeeper", "json_body", "max_limit", "privileges", "redirect_target", "throttle", "unmapped"]

_MAX_LIMIT = re.compile(r"MAX_LIMIT\s*\(?=?\s*(\d+)")
_UNMAPPED = re.compile(r'Field "([^"]+)" in entity "[^"]*" was not found')


def redirect_target(response: httpx.Response) -> str:
    """The base URL the ``Location`` points at: the requested ``/api/...`` path cut off again, else the
    whole ``Location`` (a redirect to a login page or elsewhere)."""
    location = response.headers.get("Location")
    if not location:
        return "another URL (no Location header)"
    target = response.request.url.join(location)
    path = response.request.url.path
    api = path[path.find("/api/"):] if "/api/" in path else path
    if api and target.path.endswith(api):
        return str(target.copy_with(path=target.path[: -len(api)] or "/", query=None)).rstrip("/")
    return str(target)


def json_body(response: httpx.Response, who: str = "Shopware") -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise ConfigError(f"{who} did not answer JSON ({response.status_code}); is base_url the shop's URL?") from None
    if not isinstance(data, dict):
        raise FatalError(f"{who} answered an unexpected JSON shape")
    return data


def _error_list(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return []
    return [e for e in errors or [] if isinstance(e, dict)] if isinstance(errors, list) else []


def error_text(response: httpx.Response) -> str:
    found = [f"{e.get('code', '')}: {e.get('detail') or e.get('title') or ''}".strip(": ") for e in _error_list(response)]
    return clip("; ".join(found), 300) or response.reason_phrase  # masked first: a cut secret escapes the mask


def gatekeeper(response: httpx.Response) -> str | None:
    """What to say about a 401/403 that Shopware did not write, else None (Shopware's own: its JSON errors).

    HTTP basic auth answers with a ``WWW-Authenticate: Basic`` challenge and an HTML page; a WAF or CDN with
    its own page (``Server: cloudflare``). Shopware's OAuth server challenges only a client that sent an
    ``Authorization`` header other than Bearer, with realm "OAuth"; the connector never does."""
    if response.status_code not in (401, 403):
        return None
    challenge = response.headers.get("WWW-Authenticate", "")
    basic = challenge.lower().startswith("basic") and 'realm="oauth"' not in challenge.lower()
    if not basic and _error_list(response):
        return None
    what = [f"HTTP basic auth, {clip(challenge, 80)}" if basic else "a firewall/WAF, CDN or proxy"]
    if server := response.headers.get("Server"):
        what.append(f"Server: {clip(server, 60)}")
    return (f"something in front of Shopware's /api ({'; '.join(what)}) refused the request with "
            f"{response.status_code} {response.reason_phrase}, not Shopware: let /api through for this client "
            "(exempt /api from the password protection or firewall rule, or allow this machine's IP)")


def _parameters(error: dict[str, Any]) -> dict[str, Any]:
    meta = error.get("meta")
    parameters = meta.get("parameters") if isinstance(meta, dict) else None
    return parameters if isinstance(parameters, dict) else {}


def max_limit(response: httpx.Response) -> int | None:
    """The shop's page-size cap from a FRAMEWORK__QUERY_LIMIT_EXCEEDED answer, when it names one."""
    for error in _error_list(response):
        cap = str(_parameters(error).get("maxLimit", ""))
        if cap.isdigit():
            return int(cap)
        match = _MAX_LIMIT.search(str(error.get("detail") or ""))
        if match:
            return int(match.group(1))
    return None


def unmapped(response: httpx.Response) -> str | None:
    """The field named by an unmapped-field error (6.4 names it only in ``detail``; later also in parameters)."""
    for error in _error_list(response):
        named = _parameters(error).get("field")
        match = _UNMAPPED.search(str(error.get("detail") or ""))
        if error.get("code") == "FRAMEWORK__UNMAPPED_FIELD" or match:
            return str(named or (match.group(1) if match else "") or "?")
    return None


def privileges(response: httpx.Response) -> str:
    for error in _error_list(response):
        try:
            missing = json.loads(error.get("detail") or "{}").get("missingPrivileges")
        except (ValueError, AttributeError):
            missing = None
        if missing:
            return "missing privileges " + ", ".join(map(str, missing))
    return f"access denied ({error_text(response)})"


def throttle(response: httpx.Response) -> float | None:
    for error in _error_list(response):
        seconds = _parameters(error).get("seconds")
        if isinstance(seconds, (int, float)):
            return float(seconds)
    return parse_retry_after(response.headers.get("Retry-After"))
