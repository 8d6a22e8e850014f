"""Bulk query operations of the fake: one at a time, checked against Shopify's bulk rules, executed
when they complete, and served as JSONL with nested connections as ``__parentId`` child lines.

Grouped output puts each child right after its parent (2025-01/2025-04 always, later versions with
``groupObjects: true``). Ungrouped output (``groupObjects`` false, the 2026-01 default) lists all
parents first; ``layout`` can also force a file that breaks the promise (see ``FakeBulk``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import graphql_sync

from tests.shopify.schema import bulk_violations, load_schema

if TYPE_CHECKING:
    from tests.shopify.fake_server import FakeShopify

__all__ = ["FakeBulk", "flatten"]


@dataclass
class BulkOp:
    id: str
    query: str
    status: str = "CREATED"
    polls: int = 0
    error_code: str | None = None
    url: str | None = None
    object_count: int = 0
    lines: list[str] = field(default_factory=list)
    grouped: bool = True


def flatten(node: dict[str, Any], parent: str | None, lines: list[str]) -> None:
    """Shopify's JSONL: a node without its connections, then each connection's nodes as child lines."""
    own = {k: v for k, v in node.items() if not (isinstance(v, dict) and "edges" in v)}
    if parent:
        own["__parentId"] = parent
    lines.append(json.dumps(own, ensure_ascii=False))
    for value in node.values():
        if isinstance(value, dict) and "edges" in value:
            for edge in value["edges"]:
                flatten(edge["node"], node.get("id"), lines)


def arrange(lines: list[str], layout: str) -> list[str]:
    """Grouped JSONL lines re-ordered as ``layout`` says (see ``FakeBulk.layout``)."""
    if layout == "children-last":
        return [line for line in lines if "__parentId" not in line] + [line for line in lines if "__parentId" in line]
    if layout == "late-child":  # the second-to-last order's last child line comes after the last order
        last = max(i for i, line in enumerate(lines) if "__parentId" not in line)
        child = last - 1
        assert "__parentId" in lines[child], "the second-to-last order needs a child line"
        return lines[:child] + lines[child + 1 : last + 1] + [lines[child]] + lines[last + 1 :]
    return lines


class FakeBulk:
    def __init__(self, fake: FakeShopify) -> None:
        self.fake = fake
        self.ops: dict[str, BulkOp] = {}
        self.busy = False  # another operation of this app runs (started elsewhere)
        self.fail_with: str | None = None  # e.g. "INTERNAL_SERVER_ERROR": the next operation fails
        self.polls_to_finish = 2
        self.failing_downloads = 0  # the next this many result downloads answer 503
        self.downloads = 0
        # "grouped": as asked for. "children-last": every child line after all parents, whatever was asked.
        # "late-child": grouped except one child line, moved after the next order near the end of the file.
        self.layout = "grouped"
        self.started: list[str] = []
        self.group_objects: list[bool | None] = []  # the argument of each started operation (None: not sent)

    def run(self, query: str, group_objects: bool | None = None) -> dict[str, Any]:
        running = self.busy or any(op.status in ("CREATED", "RUNNING") for op in self.ops.values())
        if running:
            other = next((op.id for op in self.ops.values() if op.status in ("CREATED", "RUNNING")), "gid://shopify/BulkOperation/1")
            message = f"A bulk query operation for this app and shop is already in progress: {other}."
            return {"bulkOperation": None, "userErrors": [{"field": None, "message": message, "code": "OPERATION_IN_PROGRESS"}]}
        problems = bulk_violations(query)
        if problems:
            return {"bulkOperation": None, "userErrors": [{"field": ["query"], "message": p, "code": "INVALID"} for p in problems]}
        gid = f"gid://shopify/BulkOperation/{len(self.ops) + 1000}"
        op = BulkOp(id=gid, query=query, grouped=group_objects is not False)  # None: a version without the argument
        self.ops[op.id] = op
        self.started.append(query)
        self.group_objects.append(group_objects)
        return {"bulkOperation": self.view(op.id, poll=False), "userErrors": []}

    def view(self, gid: str, *, poll: bool = True) -> dict[str, Any] | None:
        op = self.ops.get(gid)
        if op is None:
            return None
        if poll and op.status in ("CREATED", "RUNNING"):
            op.polls += 1
            op.status = "RUNNING"
            if op.polls >= self.polls_to_finish:
                self._finish(op)
        return {
            "__typename": "BulkOperation", "id": op.id, "status": op.status, "errorCode": op.error_code,
            "objectCount": str(op.object_count), "rootObjectCount": "0", "fileSize": None, "url": op.url,
            "partialDataUrl": None, "query": op.query, "type": "QUERY", "createdAt": "2026-01-01T00:00:00Z",
            "completedAt": None,
        }

    def current(self) -> dict[str, Any] | None:
        return self.view(list(self.ops)[-1], poll=False) if self.ops else None

    def cancel(self, gid: str) -> dict[str, Any]:
        op = self.ops.get(gid)
        if op and op.status in ("CREATED", "RUNNING"):
            op.status = "CANCELED"
        return {"bulkOperation": self.view(gid, poll=False), "userErrors": []}

    def _finish(self, op: BulkOp) -> None:
        if self.fail_with:
            op.status, op.error_code = "FAILED", self.fail_with
            return
        result = graphql_sync(load_schema(), op.query, root_value=self.fake.resolvers.root(bulk=True))
        if result.errors:
            op.status, op.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
            return
        (root,) = result.data.values()  # type: ignore[union-attr]
        lines: list[str] = []
        for edge in root["edges"]:
            flatten(edge["node"], None, lines)
        lines = arrange(lines, self.layout if self.layout != "grouped" or op.grouped else "children-last")
        op.lines, op.object_count, op.status = lines, len(lines), "COMPLETED"
        op.url = f"{self.fake.url}/bulk/{op.id.rsplit('/', 1)[-1]}.jsonl" if lines else None

    def download_failure(self) -> bool:
        """Count a result download; True if it is to fail (``failing_downloads``)."""
        with self.fake.lock:
            self.downloads += 1
            if self.failing_downloads > 0:
                self.failing_downloads -= 1
                return True
            return False

    def file(self, name: str) -> str | None:
        for op in self.ops.values():
            if op.url and op.url.endswith(f"/bulk/{name}"):
                return "\n".join(op.lines) + "\n"
        return None
