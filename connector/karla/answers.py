"""What a Karla answer the connector cannot act on per record means, said so a merchant can act on it.

A refused key, a missing shop, a base URL that reaches a web page: each stops delivery with everything pending
(``ConfigError``/``FatalError``), or holds back only the one shop it concerns (``ShopRefused``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx

from connector.errors import AUTH_KEYS, SETUP_KEYS, ConfigError, FatalError, ShopRefused
from connector.logs import clip
from connector.settings import KarlaSettings

__all__ = ["PLACEHOLDER", "fatal_answer", "web_page"]

PLACEHOLDER = "replace-me"  # config.example.toml's api_key


def web_page(response: httpx.Response, settings: KarlaSettings) -> FatalError:
    """A 2xx web page is not Karla's API (a site, a login portal, an app's fallback page): taking it as
    an acknowledgement would mark orders delivered that never arrived, so stop with everything pending."""
    page = clip(" ".join(response.text.split()), 120)
    return ConfigError(
        f"{response.request.method} {response.request.url.path} answered {response.status_code} with a web page "
        f"({page!r}), not Karla's API: check [karla].base_url (now {settings.base_url}). Nothing was marked delivered"
    )


def _other_shop(said: str, who: str, shop: str, key_works: bool | None, settings: KarlaSettings) -> ShopRefused:
    """A key refused for a shop other than [karla].shop_slug, though Karla takes it (``key_works``, None:
    unknown): Karla's keys belong to one shop unless they are organisation keys, so only that shop's
    orders wait; a key refused for [karla].shop_slug itself is still fatal for every shop."""
    unsure = "" if key_works else "; or the key is wrong, deleted or expired: check [karla].api_key"
    return ShopRefused(
        f"Karla answered {said} for shop {shop!r} ({who}): the API key may not be valid for this shop: a shop's "
        f"own key works only for its shop ([karla].shop_slug = {settings.shop_slug!r}); sending to other shops "
        "(a source's shop_slug, Shopware's sales_channels) needs an organisation-level key with the editor or "
        f"admin role, set as [karla].api_key with its user name as [karla].username{unsure}. Else check that shop_slug",
        slug=shop,
    )


def _not_set_up(said: str, who: str, shop: str, key: str) -> ShopRefused:
    """Karla knows the shop but it is not set up yet (its settings or fixtures are missing): nothing the
    merchant's configuration can fix, and no reason to hold back the shops that are set up."""
    missing = key.removeprefix("shop_").removesuffix("_not_found")
    return ShopRefused(f"Karla answered {said} for shop {shop!r} ({who}): Karla says shop {shop!r} is not set up yet "
                       f"(shop {missing} missing): ask Karla support to finish setting it up; its orders stay queued", slug=shop)


def fatal_answer(
    response: httpx.Response, info: dict[str, Any], settings: KarlaSettings, key_works: Callable[[], bool | None]
) -> FatalError:
    """A stop that keeps everything pending, with a message that says what Karla's answer means."""
    status, key = response.status_code, info["key"]
    said = f"{status} {key or ''}".rstrip() + (f" ({info['message']})" if info["message"] else "")
    where = f"{response.request.method} {response.request.url.path}"
    who = f"user {settings.user!r} at {settings.base_url}"
    shop = _shop_of(response.request.url.path)
    other = shop is not None and shop != settings.shop_slug
    if key in SETUP_KEYS and shop is not None:
        return _not_set_up(said, who, shop, key)
    if key == "shop_not_found" and shop is not None:
        return ShopRefused(f"Karla answered {said} for shop {shop!r} ({who}): the shop does not exist: check "
                           "[karla].shop_slug and each source's shop_slug (or sales_channels)", slug=shop)
    if key == "shop_not_found":
        return ConfigError(f"Karla answered {said} for {who}: the shop does not exist: check [karla].shop_slug (and each source's shop_slug)")
    if key == "invalid_merchant_or_key" and status == 400 and not other:  # for another shop: as a 401, below
        return ConfigError(f"Karla answered {said} for {who}: credentials missing or malformed: check [karla].username and [karla].api_key")
    refused_key = status == 401 or key == "invalid_merchant_or_key"
    if refused_key and settings.api_key.get_secret_value() == PLACEHOLDER:
        return ConfigError(f"Karla answered {said} for {who}: [karla].api_key is still the example's {PLACEHOLDER!r}: "
                           "set your key (better as KARLA_CONNECTOR_KARLA__API_KEY)")
    if other and (status in (401, 403) or key in AUTH_KEYS):
        # a 400/401 may be the key's own fault: asked of [karla].shop_slug (not when told to stop sending)
        works = key_works() if refused_key else True
        if works is not False:  # a 400 to the probe counts as taken (KeyProbe): the key stays a suspect
            return _other_shop(said, who, shop, works and status != 400, settings)
        who = f"shop {shop!r} and [karla].shop_slug {settings.shop_slug!r}, {who}"
    if refused_key:
        return ConfigError(
            f"Karla answered {said} for {who}: the API key was refused (wrong, deleted or expired), or the user "
            "name is not the key's: check [karla].api_key / KARLA_CONNECTOR_KARLA__API_KEY and the user name "
            "([karla].username, which defaults to [karla].shop_slug)"
        )
    if (status == 403 or key in AUTH_KEYS) and shop is not None:
        return ShopRefused(f"Karla answered {said} for shop {shop!r} ({who}): the API key lacks rights for this shop: "
                           "it needs the editor or admin role", slug=shop)
    if status == 403 or key in AUTH_KEYS:
        return ConfigError(f"Karla answered {said} for {who}: the API key lacks rights for this shop: it needs the editor or admin role")
    if status in (404, 409):
        return ConfigError(
            f"Karla answered {said} to {where} without naming a record: check [karla].base_url "
            f"(now {settings.base_url}; the API root, without /v1) and [karla].shop_slug. Nothing was dead-lettered"
        )
    if status == 501:
        return FatalError(
            f"Karla answered {said} to {where}: Karla does not offer this (yet) for this account; retrying cannot "
            "help: delivery stops, every order stays pending, nothing was dead-lettered; ask Karla's support"
        )
    if 300 <= status < 400:
        target = response.headers.get("Location", "nowhere")
        return ConfigError(f"Karla answered {said} to {where}, redirecting to {target}: check [karla].base_url (now {settings.base_url})")
    return FatalError(
        f"Karla answered {said} to {where}, which names no record and is not a documented answer the "
        "connector can act on: delivery stops, every order stays pending, nothing was dead-lettered"
    )


def _shop_of(path: str) -> str | None:
    """The shop slug of a request path (``/v1/shops/{slug}/orders…``), as sent (percent-encoded)."""
    match = re.search(r"/shops/([^/]+)/", path)
    return unquote(match.group(1)) if match else None
