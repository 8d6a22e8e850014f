"""An order's line items as Karla's products, including goods a plugin keeps in child lines.

Shopware's Custom Products (SwagCustomizedProducts) stores the bought item as a top-level line of type
``customized-products`` (its label is the template's name, ``productNumber`` is ``*``) whose child line of
type ``product`` is the real product, next to ``customized-products-option`` children. Product-set plugins
(dreisc-set, swkweb-product-set, repertus_product_container) nest their set's products the same way. The
plugin copies the product's delivery information onto the top-level line, so a delivery position points at
it. Such a *holder* (a top-level line of another type with ``product`` children) is one Karla product:

- with one product child of the holder's quantity (a customised product): that product (sku, title, image,
  ids) at the holder's quantity and unit price (which includes the options);
- else (a set, also one of several units of one product, a "3-pack"): a ``bundle`` with the holder's label and
  price, its products in ``bundled_products`` with their quantity per set. Shopware keeps a child's quantity
  as per set times sets (``LineItem::refreshChildQuantity`` scales it with the holder's).

Its price is in the sub-total once; its children are not top-level lines, so they are not added again.
"""

from __future__ import annotations

from typing import Any

from adapters.shopware.config import ShopwareConfig
from adapters.shopware.prices import gross_unit, is_net

__all__ = ["DISCOUNT_TYPES", "PRODUCT_TYPES", "Goods", "clean", "is_product", "product", "top_level", "unsent_lines"]

Entity = dict[str, Any]

# "custom": the Administration's "Add custom item" (engraving, a service); "container": a bundle, whose price
# holds its children's (they are nested lines, not counted again). Both are in amountTotal, so in the subtotal.
PRODUCT_TYPES = ("product", "custom", "container")
# Shopware core's other line item types (``LineItem::*_LINE_ITEM_TYPE``): money off, never goods.
DISCOUNT_TYPES = ("promotion", "credit", "discount")


def clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "")}


def is_product(item: Entity, config: ShopwareConfig) -> bool:
    kind = item.get("type")
    return kind in PRODUCT_TYPES or (config.deposit_line_item_type is not None and kind == config.deposit_line_item_type)


def _images(item: Entity) -> list[dict[str, Any]] | None:
    cover = (item.get("cover") or {}).get("url")
    return [clean({"src": cover, "alt": (item.get("cover") or {}).get("alt")})] if cover else None


def product(item: Entity, quantity: Any, net: bool) -> dict[str, Any]:
    """``net``: the order is net-priced, so the unit price is converted to gross (``prices``)."""
    payload = item.get("payload") or {}
    return clean({
        "sku": payload.get("productNumber") or item.get("referencedId"), "title": item.get("label"), "quantity": quantity,
        "price": gross_unit(item, net), "images": _images(item),
        "product_id": payload.get("parentId") or item.get("productId"), "variant_id": item.get("productId"),
    })


def top_level(order: Entity, kind: str | None = None) -> list[Entity]:
    return [i for i in order.get("lineItems") or [] if not i.get("parentId") and (kind is None or i.get("type") == kind)]


class Goods:
    """One order's lines, with the child lines of each, to tell holders (see the module) from other lines."""

    def __init__(self, order: Entity, config: ShopwareConfig) -> None:
        self.config, self.net = config, is_net(order)
        items = order.get("lineItems") or []
        self.by_id = {i.get("id"): i for i in items if i.get("id")}
        self.kids: dict[Any, list[Entity]] = {}
        for item in items:
            if item.get("parentId"):
                self.kids.setdefault(item["parentId"], []).append(item)

    def held(self, item: Entity) -> list[Entity]:
        """The ``product`` children of a line that is not sent as a product of its own type: a holder's goods."""
        if item.get("type") in PRODUCT_TYPES:
            return []
        return [c for c in self.kids.get(item.get("id"), []) if c.get("type") == "product"]

    def sent(self, item: Entity) -> bool:
        """Whether a top-level line is one of the order's products (and in its sub-total)."""
        return bool(self.held(item)) or is_product(item, self.config)

    def product(self, item: Entity, quantity: Any) -> dict[str, Any]:
        """A top-level line as Karla's product, ``quantity`` of it (the line's, or a delivery position's)."""
        children = self.held(item)
        if not children:
            return product(item, quantity, self.net)
        if self._customised(item, children):  # the product, at the price with its options
            return {**product(children[0], quantity, self.net), "price": gross_unit(item, self.net)}
        sku = (item.get("payload") or {}).get("productNumber")
        return clean({
            "type": "bundle", "sku": sku if sku != "*" else None, "title": item.get("label"), "quantity": quantity,
            "price": gross_unit(item, self.net), "images": _images(item), "product_id": item.get("productId"),
            "bundled_products": [self._bundled(child, item) for child in children],
        })

    @staticmethod
    def _customised(holder: Entity, children: list[Entity]) -> bool:
        """One product child of the holder's quantity: one unit per holder, so the product itself. A set of
        several units of one product (child 6 of holder 2) is a bundle: sent as the product, Karla would show
        2 units at the set's price where the customer gets 6."""
        return len(children) == 1 and children[0].get("quantity") == holder.get("quantity")

    def _bundled(self, child: Entity, holder: Entity) -> dict[str, Any]:
        """A set's product with its quantity per set (Shopware's child quantity counts all the sets)."""
        quantity, sets = child.get("quantity"), holder.get("quantity")
        if isinstance(quantity, int) and isinstance(sets, int) and sets > 0 and quantity % sets == 0:
            quantity //= sets
        return product(child, quantity, self.net)

    def in_parcel(self, item: Entity, quantity: Any) -> dict[str, Any] | None:
        """A delivery position's product: a holder's, also for a position on a customised product's only
        child (the product as the order lists it); a set's child (also a pack's only one) as itself; None for a line
        that is no goods."""
        parent = self.by_id.get(item.get("parentId"))
        held = self.held(parent) if parent is not None else []
        if parent is not None and [c.get("id") for c in held] == [item.get("id")] and self._customised(parent, held):
            return self.product(parent, quantity)
        return self.product(item, quantity) if self.sent(item) else None


def unsent_lines(order: Entity, config: ShopwareConfig) -> dict[str, str]:
    """Type -> label of top-level lines with a price that are neither sent as products nor as discounts (a
    plugin's fee or goods): in ``amountTotal`` but missing from ``sub_total_price``, worth a warning. A holder
    is sent (its child product), so it is not named."""
    goods = Goods(order, config)
    return {str(i.get("type")): str(i.get("label") or "") for i in top_level(order)
            if not goods.sent(i) and i.get("type") not in DISCOUNT_TYPES and float(i.get("totalPrice") or 0) > 0}
