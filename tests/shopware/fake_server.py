"""A fake Shopware 6 Admin API: a real HTTP server on 127.0.0.1 with the real one's traps.

- ``POST /api/oauth/token`` (client credentials, JSON or form): tokens expire on the injected clock,
  ``token_requests`` counts them; a wrong secret is 401 code 4, a key without a known prefix is 500
  FRAMEWORK__API_INVALID_ACCESS_KEY. Data routes answer 401 code 9 for a missing, expired or revoked token.
- ``POST /api/search/order`` runs the Criteria (``fake_criteria``); above ``max_limit`` it is 400
  FRAMEWORK__QUERY_LIMIT_EXCEEDED (``None``: no cap, as on 6.4/6.5).
- ``POST /api/search/state-machine-history`` runs them over ``history``, which ``set_delivery_state`` appends
  to (as ``StateMachineRegistry::transition`` does; an insert writes none, not even for a delivery created
  shipped). Its fields follow ``version``: 6.4 names the delivery in the JSON ``entityId`` only, 6.5 has
  that and ``referencedId``/``referencedVersionId``, 6.6+ only the latter; a filter or sort on a field the
  version lacks is 400 FRAMEWORK__UNMAPPED_FIELD. ``history_readable = False`` makes it a 403.
- ``POST /api/search/state-machine-state`` over ``states`` (core's order, delivery and payment states,
  ``factory.machine_states``); ``states_readable = False`` makes it a 403 (no ``state_machine:read``).
- Header traps: ``Accept: */*`` gets JSON:API, no Accept gets 415, a body without the JSON content type
  is ignored (unfiltered rows, up to the cap). ``GET /api/_info/version``.
- State: rows get ``updatedAt: null`` on insert; ``add_tracking_code`` and delivery state changes bump
  only the delivery's ``updatedAt``. ``before_search`` runs between page requests (concurrent writes),
  ``fail`` scripts 5xx/429/dropped connections. The ``Date`` header follows the shop's clock.
- ``unservable`` / ``max_rows``: an order page that loads such an order, or more rows, answers 500 (a row
  ``json_encode`` chokes on or a plugin subscriber throwing; PHP's memory limit); ``search-ids`` is
  unaffected. ``sales_channels`` answers ``POST /api/search/sales-channel`` (see ``fake_http``).
- ``redirect_to``: requests under ``redirect_from`` get a 301 to that origin, as a web server moving
  http to https or a bare domain to www does. ``front``: ``(status, headers, html)`` answered to requests
  under ``front_from`` by something in front of Shopware (HTTP basic auth, a WAF). An empty ``equalsAny`` is 400 FRAMEWORK__INVALID_FILTER_QUERY.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer
from typing import Any

from tests.shopware.factory import CHANNEL, machine_states, number_range, sales_channel
from tests.shopware.fake_criteria import check_fields, evaluate, serialize, unservable
from tests.shopware.fake_http import errors as _errors
from tests.shopware.fake_http import handler

__all__ = ["FakeShopware", "shopware_time"]

Entity = dict[str, Any]
LIVE = "0fa91ce3e96a4bc2be4bd9ce752c3425"
DELIVERY_MACHINE = uuid.uuid5(uuid.NAMESPACE_OID, "order_delivery.state").hex
ACTIONS = {"shipped": "ship", "shipped_partially": "ship_partially", "returned": "retour",
           "returned_partially": "retour_partially", "cancelled": "cancel", "open": "reopen"}


def shopware_time(moment: datetime) -> str:
    """RFC 3339 with milliseconds, as Shopware serialises datetimes."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


class FakeShopware:
    def __init__(self, clock: Callable[[], datetime], *, skew: timedelta = timedelta(0), version: str = "6.6.7.1") -> None:
        self.clock, self.skew, self.version = clock, skew, version
        self.credentials = {"SWIAFAKEINTEGRATION": "fake-secret-7d1e"}
        self.token_ttl, self.max_limit = 600, 500
        self.name_max_limit = True  # False: the limit error names no cap (the adapter must halve)
        self.accept_tokens = True  # False: the integration was deactivated; every token is refused
        self.missing_privileges: list[str] = []  # non-empty: searches answer 403 FRAMEWORK__MISSING_PRIVILEGE_ERROR
        self.tokens: dict[str, datetime] = {}
        self.token_requests, self.searches = 0, 0
        self.history_searches, self.id_searches = 0, 0
        self.sales_channels: dict[str, Entity] = {CHANNEL: sales_channel(CHANNEL, "Storefront")}
        self.number_ranges = [number_range("Orders", is_global=True)]  # ``number_ranges_readable = False``: 403
        self.number_ranges_readable = True
        self.unservable: dict[str, str] = {}  # order id -> the 500's message when a page loads it (bad row, plugin)
        self.max_rows: int | None = None  # more orders per loaded page: 500, PHP's memory limit
        self.orders: dict[str, Entity] = {}
        self.history: list[Entity] = []
        self.history_readable = True
        self.states: list[Entity] = machine_states()
        self.states_readable = True
        self.requests: list[dict[str, Any]] = []
        self.failures: list[tuple[str, Any]] = []
        self.before_search: Callable[[FakeShopware], None] | None = None
        self.redirect_to: str | None = None  # e.g. "https://www.shop.example": answer 301 to there
        self.redirect_from = "/"  # only paths starting with this are redirected
        self.front: tuple[int, dict[str, str], str] | None = None  # basic auth or a WAF answering instead of Shopware
        self.front_from = "/"
        self.lock = threading.RLock()
        self._auto_increment = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> FakeShopware:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def now(self) -> datetime:
        return self.clock() + self.skew

    # -- data ----------------------------------------------------------------------------------------
    def insert(self, order: Entity, at: datetime | None = None) -> Entity:
        """Store an order as a checkout would: ``createdAt`` on every row, ``updatedAt`` NULL."""
        stamp = shopware_time(at or self.now())
        with self.lock:
            order.setdefault("id", uuid.uuid4().hex)
            order["autoIncrement"] = next(self._auto_increment)
            for row in _rows(order):
                row["createdAt"], row["updatedAt"] = stamp, None
            self.orders[order["id"]] = order
        return order

    def update(self, order_id: str, at: datetime | None = None, **fields: Any) -> Entity:
        """A write to the order row itself (an admin edit, an order state transition)."""
        with self.lock:
            order = self.orders[order_id]
            order.update(fields)
            order["updatedAt"] = shopware_time(at or self.now())
            return order

    def delivery(self, delivery_id: str) -> tuple[Entity, Entity]:
        with self.lock:
            for order in self.orders.values():
                for delivery in order.get("deliveries") or []:
                    if delivery["id"] == delivery_id:
                        return order, delivery
        raise KeyError(delivery_id)

    def add_tracking_code(self, delivery_id: str, code: str, at: datetime | None = None) -> Entity:
        """``PATCH /api/order-delivery/{id}`` as an ERP does it: only the delivery's ``updatedAt`` moves."""
        with self.lock:
            _, delivery = self.delivery(delivery_id)
            delivery["trackingCodes"] = [*delivery["trackingCodes"], code]
            delivery["updatedAt"] = shopware_time(at or self.now())
            return delivery

    def set_delivery_state(self, delivery_id: str, state: Entity, at: datetime | None = None) -> Entity:
        """A state transition on the delivery (``.../state/ship``): the order row is not touched, a history
        entry is written with the same time."""
        stamp = shopware_time(at or self.now())
        with self.lock:
            _, delivery = self.delivery(delivery_id)
            entry = self._history_entry(delivery_id, delivery["stateMachineState"], state, stamp)
            delivery["stateMachineState"], delivery["stateId"] = state, state["id"]
            delivery["updatedAt"] = stamp
            self.history.append(entry)
            return entry

    def _history_entry(self, delivery_id: str, before: Entity, after: Entity, stamp: str) -> Entity:
        """A ``state_machine_history`` row as this version serialises it."""
        ident = uuid.uuid4().hex
        reference: Entity = {}
        if self.version.startswith(("6.4", "6.5")):
            reference["entityId"] = {"id": delivery_id, "version_id": LIVE}
        if not self.version.startswith("6.4"):
            reference |= {"referencedId": delivery_id, "referencedVersionId": LIVE}
        return {"translated": [], "createdAt": stamp, "updatedAt": None, **reference, "stateMachineId": DELIVERY_MACHINE,
                "stateMachine": None, "entityName": "order_delivery", "fromStateId": before["id"],
                "fromStateMachineState": before, "toStateId": after["id"], "toStateMachineState": after,
                "transitionActionName": ACTIONS.get(after["technicalName"], "process"), "userId": None, "user": None,
                "_uniqueIdentifier": ident, "versionId": None, "id": ident, "extensions": [], "apiAlias": "state_machine_history"}

    def history_fields(self) -> set[str]:
        """The fields ``state_machine_history`` has in this version (what a filter or sort may name)."""
        probe = self._history_entry("0" * 32, {"id": ""}, {"id": "", "technicalName": "open"}, "")
        return {k for k in probe if k not in ("translated", "_uniqueIdentifier", "extensions", "apiAlias", "versionId")}

    def fail(self, path: str, *actions: Any) -> None:
        """Script the next answers on ``path``: a status, ``(status, retry_after)``, or ``"drop"``."""
        with self.lock:
            self.failures.extend((path, action) for action in actions)

    # -- request handling (called by the handler thread) -----------------------------------------------
    def _scripted(self, path: str) -> Any:
        with self.lock:
            for index, (where, action) in enumerate(self.failures):
                if where == path:
                    del self.failures[index]
                    return action
        return None

    def _token(self, body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            self.token_requests += 1
            client_id, secret = str(body.get("client_id", "")), body.get("client_secret")
            if client_id[:4] not in ("SWIA", "SWUA", "SWSC"):
                return 500, _errors(500, "FRAMEWORK__API_INVALID_ACCESS_KEY", "Internal Server Error",
                                    "Access key is invalid and could not be identified.", [])
            if body.get("grant_type") != "client_credentials" or self.credentials.get(client_id) != secret:
                return 401, _errors(401, "4", "Client authentication failed", None)
            token = uuid.uuid4().hex
            self.tokens[token] = self.now() + timedelta(seconds=self.token_ttl)
            return 200, {"token_type": "Bearer", "expires_in": self.token_ttl, "access_token": token}

    def _authorised(self, header: str) -> bool:
        with self.lock:
            expiry = self.tokens.get(header.removeprefix("Bearer ").strip())
            return self.accept_tokens and expiry is not None and self.now() < expiry

    def _search(self, entity: str, criteria: dict[str, Any], ignore_body: bool,
                ids_only: bool = False) -> tuple[list[Any], int, dict[str, Any]]:
        """``entity`` as in the URL; ``before_search`` and ``searches`` concern order pages only (history
        searches are counted in ``history_searches``, ``search-ids`` ones in ``id_searches``)."""
        with self.lock:
            self._count(entity, ids_only)
            if ignore_body:  # the trap: criteria silently dropped
                criteria = {"limit": self.max_limit} if self.max_limit else {}
            if entity == "order":
                rows = sorted(self.orders.values(), key=lambda o: o["autoIncrement"])
            elif entity == "sales-channel":
                rows = list(self.sales_channels.values())
            elif entity == "number-range":
                rows = list(self.number_ranges)
            elif entity == "state-machine-state":
                rows = list(self.states)
            else:
                check_fields(criteria, "state_machine_history", self.history_fields())
                rows = list(self.history)
            page, total = evaluate(rows, criteria, self.max_limit)
            if ids_only:
                return [row["id"] for row in page], total, criteria
            if entity == "order" and criteria.get("associations"):
                unservable(page, self.unservable, self.max_rows)
            data = [serialize(row, criteria.get("associations") or {}, criteria.get("includes") or {}) for row in page]
            return json.loads(json.dumps(data)), total, criteria

    def _count(self, entity: str, ids_only: bool) -> None:
        if ids_only:
            self.id_searches += 1
        elif entity == "order":
            self.searches += 1
            if self.before_search:
                self.before_search(self)
        elif entity == "state-machine-history":
            self.history_searches += 1


def _rows(order: Entity) -> list[Entity]:
    rows = [order, *(order.get("lineItems") or []), *(order.get("addresses") or [])]
    for delivery in order.get("deliveries") or []:
        rows += [delivery, *(delivery.get("positions") or [])]
    return rows + ([order["orderCustomer"]] if order.get("orderCustomer") else [])
