"""The configured ``order_states`` and ``delivery_states`` checked against the shop's state machines.

They are technical names (``in_progress``), and a wrong one fails nowhere: the Administration's label
("In Progress"), a payment state ("paid") or a reversed name ("partially_shipped") selects no order or
delivery, so nothing is sent while every poll looks healthy. So ``check`` refuses a name the shop does not
have, naming the closest one, and a running daemon warns once per process. A name that differs from exactly
one of the shop's only in spaces or hyphens for underscores is read as that one. The lookup needs
``state_machine:read``; without it the names go unchecked (``check`` says so) and are used as written.

The engine builds an adapter per poll, so the shop's states (or that they are unreadable) are kept for the
process (``memory``) for ``STATES_TTL`` seconds, a plugin's new state is seen within that; ``check`` always
asks. A failed lookup keeps nothing, so the next poll asks again.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from adapters.shopware.client import LimitExceeded, MissingPrivilege, ShopwareClient
from adapters.shopware.config import ShopwareConfig
from adapters.shopware.criteria import state_criteria
from adapters.shopware.memory import first_time, keep, kept
from connector.errors import FatalError

__all__ = ["StateReview", "review_states", "state_facts", "use_states"]

OPTIONS = {"order_states": "order.state", "delivery_states": "order_delivery.state"}
PAYMENT = "order_transaction.state"
_KINDS = {"order.state": "an order state", "order_delivery.state": "a delivery state", PAYMENT: "a payment state"}
_WHERE = {"order.state": "list it in order_states", "order_delivery.state": "list it in delivery_states",
          PAYMENT: "the connector filters on order and delivery states, never on payment"}

Known = dict[str, dict[str, str]]  # state machine -> technical name -> label
STATES_TTL = 3600.0  # seconds the shop's states are kept between polls


@dataclass
class StateReview:
    """``resolved``: the names to use, for the options whose names were respelled; ``notes``: names read as
    another; ``problems``: names the shop does not have; ``unchecked``: why nothing could be checked."""

    resolved: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unchecked: str | None = None


def _label(row: dict[str, Any]) -> str:
    return str((row.get("translated") or {}).get("name") or row.get("name") or row.get("technicalName"))


def _state_rows(client: ShopwareClient) -> list[dict[str, Any]]:
    """All rows, paged; a shop capping pages below ``limit`` (LimitExceeded) is asked again from the start."""
    rows: list[dict[str, Any]] = []
    limit, page = 100, 1  # core has 22 states in these machines
    while True:
        try:
            found = client.search("state-machine-state", state_criteria([*OPTIONS.values(), PAYMENT], limit, page))
        except LimitExceeded as exc:
            if limit == 1:
                raise FatalError(f"{client.who}: refuses even one state-machine-state row per page") from exc
            limit, page, rows = max(1, min(exc.max_limit or limit // 2, limit // 2)), 1, []
            continue
        rows += found.get("data") or []
        if len(found.get("data") or []) < limit:
            return rows
        page += 1


def _shop_states(client: ShopwareClient) -> Known:
    rows = _state_rows(client)
    known: Known = {}
    for row in rows:
        machine, name = (row.get("stateMachine") or {}).get("technicalName"), row.get("technicalName")
        if machine and name:
            known.setdefault(str(machine), {})[str(name)] = _label(row)
    return known


def _squash(name: str) -> str:
    return re.sub(r"[\s_-]+", "_", name.strip().lower())


def _hint(wanted: str, machine: str, known: Known) -> str:
    """Where a name the machine lacks comes from: another machine, a label, the same words reordered, a typo."""
    for other, kind in _KINDS.items():
        if other != machine and wanted in known.get(other, {}):
            return f" ({wanted!r} is {kind}: {_WHERE[other]})"
    names = known[machine]
    by_label = [n for n, label in names.items() if _squash(label) == _squash(wanted)]
    if by_label:
        return f"; did you mean {by_label[0]!r} (the technical name of {names[by_label[0]]!r})?"
    words = sorted(_squash(wanted).split("_"))
    near = [n for n in names if sorted(n.split("_")) == words] or difflib.get_close_matches(_squash(wanted), list(names), 1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _review(option: str, configured: list[str], known: Known, review: StateReview) -> None:
    machine = OPTIONS[option]
    names = known[machine]
    use: list[str] = []
    for wanted in configured:
        same = [n for n in names if _squash(n) == _squash(wanted)]
        if wanted not in names and len(same) == 1:
            review.notes.append(f"{option}: {wanted!r} read as {same[0]!r}, Shopware's technical name; write that")
            wanted = same[0]
        elif wanted not in names:
            review.problems.append(f"{option}: {wanted!r} is not {_KINDS[machine]} in this shop{_hint(wanted, machine, known)}; "
                                   f"valid: {', '.join(names)}")
        use.append(wanted)
    if use != configured:
        review.resolved[option] = list(dict.fromkeys(use))


def _known(client: ShopwareClient, config: ShopwareConfig, fresh: bool) -> Known | None:
    """The shop's states, None if the integration may not read them: kept ``STATES_TTL`` unless ``fresh``."""
    now = client.monotonic()
    found, known = (False, None) if fresh else kept(config, "states", now, STATES_TTL)
    if not found:
        try:
            known = _shop_states(client)
        except MissingPrivilege:
            known = None  # a 403 is an answer: kept like one, not asked every poll
        keep(config, "states", now, known)
    return known


def review_states(client: ShopwareClient, config: ShopwareConfig, fresh: bool = False) -> StateReview:
    """The configured state names against the shop's (one search, or none while they are kept; ``fresh``: one
    anyway); unknown names are kept (they match nothing)."""
    known = _known(client, config, fresh)
    if known is None:
        return StateReview(unchecked="order_states and delivery_states NOT checked against the shop's states: the "
                                     "integration may not read state machines (grant state_machine:read to check them)")
    review = StateReview()
    for option, machine in OPTIONS.items():
        if known.get(machine):
            _review(option, getattr(config, option), known, review)
    if not any(known.get(machine) for machine in OPTIONS.values()):
        review.unchecked = "order_states and delivery_states NOT checked: Shopware listed no order or delivery states"
    return review


def use_states(client: ShopwareClient, config: ShopwareConfig, log: logging.Logger | logging.LoggerAdapter,
               fresh: bool = False) -> tuple[ShopwareConfig, StateReview]:
    """``config`` with the respelled state names, and the review, logged: each unknown name is warned about
    once per process and shop, not every poll (a changed config needs a restart)."""
    review = review_states(client, config, fresh)
    for note in (n for n in review.notes if first_time(config, n)):
        log.info("shopware: %s", note)
    for problem in (p for p in review.problems if first_time(config, p)):
        log.warning("shopware: %s; it selects nothing", problem)
    if review.unchecked and first_time(config, review.unchecked):
        log.debug("shopware: %s", review.unchecked)
    return config.model_copy(update=review.resolved), review


def state_facts(config: ShopwareConfig, review: StateReview) -> list[str]:
    """``check``'s lines on the state names (unknown ones are no fact but a refusal: see the adapter)."""
    if review.unchecked:
        return [f"warning: {review.unchecked}"]
    names = f"order_states ({', '.join(config.order_states) or 'none'}), delivery_states ({', '.join(config.delivery_states) or 'none'})"
    return [f"{names}: all known to the shop", *(f"warning: {note}" for note in review.notes)]
