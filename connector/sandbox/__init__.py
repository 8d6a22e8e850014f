"""The Karla sandbox: Upsert Order, Bulk Fulfillment and Search Orders on loopback, validated like the docs."""

from connector.sandbox.server import Faults, RequestLog, Sandbox, serve

__all__ = ["Faults", "RequestLog", "Sandbox", "serve"]
