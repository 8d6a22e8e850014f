"""Shopify's published Admin GraphQL schema (2025-01), its cost rules, and its bulk-query restrictions.

The schema file lives in ``shared/shopify/`` next to the repository (or may be copied, with its
license, to ``tests/shopify/data/``). graphql-core validates every query against it exactly as Shopify
checks a query's shape.

Later versions are modelled only where the adapter depends on a difference: 2025-07 added
``bulkOperationRunQuery(groupObjects: Boolean! = true)``, and 2026-01 changed that default to ``false``
(shopify.dev changelog "Bulk operations group objects default changed to false"). Otherwise a later
version is validated as 2025-01: a field *removed* after 2025-01 would pass here, so the adapter sticks to
long-standing fields and a newer default ``api_version`` is checked against Shopify's changelog by hand.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode, FieldNode, FragmentDefinitionNode, FragmentSpreadNode, GraphQLNamedType, GraphQLObjectType,
    GraphQLSchema, InlineFragmentNode, OperationDefinitionNode, SelectionSetNode, build_client_schema, get_named_type,
    get_nullable_type, is_leaf_type, is_list_type, parse, validate, value_from_ast,
)

__all__ = ["SCHEMA_FILE", "bulk_violations", "group_objects_default", "load_schema", "requested_cost", "actual_cost",
           "validate_document"]

_NAME = "admin_schema_2025-01.json.gz"
_CANDIDATES = (
    Path(__file__).resolve().parent / "data" / _NAME,
    Path(__file__).resolve().parents[2] / ".." / "shared" / "shopify" / _NAME,
)
SCHEMA_FILE = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[-1])
MUTATION_COST = 10


def group_objects_default(version: str) -> bool | None:
    """``groupObjects``' default in ``version``; None where the argument does not exist (always grouped)."""
    if version != "unstable" and version < "2025-07":
        return None
    return version != "unstable" and version < "2026-01"


@lru_cache(maxsize=1)
def _introspection() -> str:
    with gzip.open(SCHEMA_FILE) as handle:
        return handle.read().decode()


@lru_cache(maxsize=3)
def _build(group_default: bool | None) -> GraphQLSchema:
    data = json.loads(_introspection())["data"]
    if group_default is not None:
        mutation = next(t for t in data["__schema"]["types"] if t["name"] == data["__schema"]["mutationType"]["name"])
        field = next(f for f in mutation["fields"] if f["name"] == "bulkOperationRunQuery")
        field["args"].append({
            "name": "groupObjects", "description": "Group child lines under their parent in the JSONL output.",
            "type": {"kind": "NON_NULL", "name": None, "ofType": {"kind": "SCALAR", "name": "Boolean", "ofType": None}},
            "defaultValue": json.dumps(group_default),
        })
    schema = build_client_schema(data)
    # Shopify's schema trips two deprecation-consistency rules of graphql-js; queries are still validated.
    schema._validation_errors = []  # type: ignore[attr-defined]
    return schema


def load_schema(version: str = "2025-01") -> GraphQLSchema:
    return _build(group_objects_default(version))


@lru_cache(maxsize=128)
def validate_document(document: str, version: str = "2025-01") -> tuple[DocumentNode | None, list[str]]:
    try:
        ast = parse(document)
    except Exception as exc:  # noqa: BLE001 - a syntax error is an answer, not a crash
        return None, [str(exc)]
    return ast, [e.message for e in validate(load_schema(version), ast)]


@lru_cache(maxsize=128)
def _parsed(document: str) -> DocumentNode:
    return parse(document)


def _operation(ast: DocumentNode) -> OperationDefinitionNode:
    return next(d for d in ast.definitions if isinstance(d, OperationDefinitionNode))


class _Walker:
    """Walks selections with their schema types (fragments included)."""

    def __init__(self, ast: DocumentNode, variables: dict[str, Any]) -> None:
        self.schema, self.variables = load_schema(), variables
        self.fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}

    def fields(self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None) -> list[tuple[FieldNode, Any, GraphQLNamedType]]:
        found: list[tuple[FieldNode, Any, GraphQLNamedType]] = []
        for sel in selection_set.selections if selection_set else ():
            if isinstance(sel, FieldNode):
                if sel.name.value.startswith("__"):
                    continue
                definition = parent.fields[sel.name.value]  # type: ignore[attr-defined]
                found.append((sel, definition, parent))
            elif isinstance(sel, InlineFragmentNode):
                target = self.schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                found += self.fields(target, sel.selection_set)  # type: ignore[arg-type]
            elif isinstance(sel, FragmentSpreadNode):
                fragment = self.fragments[sel.name.value]
                found += self.fields(self.schema.get_type(fragment.type_condition.name.value), fragment.selection_set)  # type: ignore[arg-type]
        return found

    def args(self, node: FieldNode, definition: Any) -> dict[str, Any]:
        values = {}
        for arg in node.arguments:
            values[arg.name.value] = value_from_ast(arg.value, definition.args[arg.name.value].type, self.variables)
        return values


def _node_selection(node: FieldNode) -> SelectionSetNode | None:
    for sel in node.selection_set.selections if node.selection_set else ():
        if isinstance(sel, FieldNode) and sel.name.value == "nodes":
            return sel.selection_set
        if isinstance(sel, FieldNode) and sel.name.value == "edges":
            for inner in sel.selection_set.selections if sel.selection_set else ():
                if isinstance(inner, FieldNode) and inner.name.value == "node":
                    return inner.selection_set
    return None


def _is_connection(named: GraphQLNamedType) -> bool:
    return named.name.endswith("Connection") and isinstance(named, GraphQLObjectType) and "pageInfo" in named.fields


def requested_cost(document: str, variables: dict[str, Any] | None = None) -> int:
    """Objects 1, scalars 0, a connection 2 + first x node, a list n x element (n = first, ids, else 1)."""
    ast = _parsed(document)
    operation = _operation(ast)
    if operation.operation.value == "mutation":
        return MUTATION_COST
    walker = _Walker(ast, variables or {})

    def cost(parent: GraphQLNamedType, selection_set: SelectionSetNode | None) -> int:
        total = 0
        for node, definition, _ in walker.fields(parent, selection_set):
            named = get_named_type(definition.type)
            if is_leaf_type(named):
                continue
            args = walker.args(node, definition)
            if _is_connection(named):
                element = get_named_type(named.fields["nodes"].type)  # type: ignore[attr-defined]
                total += 2 + int(args.get("first") or args.get("last") or 0) * (1 + cost(element, _node_selection(node)))
            elif is_list_type(get_nullable_type(definition.type)):
                count = args.get("first") or (len(args["ids"]) if "ids" in args else 1)
                total += int(count) * (1 + cost(named, node.selection_set))
            else:
                total += 1 + cost(named, node.selection_set)
        return total

    return cost(walker.schema.query_type, operation.selection_set)  # type: ignore[arg-type]


def actual_cost(data: Any) -> int:
    """What the answer really held: one point per object returned."""
    if isinstance(data, dict):
        return 1 + sum(actual_cost(v) for v in data.values())
    if isinstance(data, list):
        return sum(actual_cost(v) for v in data)
    return 0


def bulk_violations(document: str) -> list[str]:
    """Shopify's bulk-query rules: one top-level connection, at most 5 connections, nested at most two
    deep, and no connection inside a list field."""
    ast, errors = validate_document(document)
    if ast is None or errors:
        return errors
    walker = _Walker(ast, {})
    problems: list[str] = []
    connections = 0

    def walk(parent: GraphQLNamedType, selection_set: SelectionSetNode | None, depth: int, in_list: bool) -> None:
        nonlocal connections
        for node, definition, _ in walker.fields(parent, selection_set):
            named = get_named_type(definition.type)
            if is_leaf_type(named):
                continue
            if _is_connection(named):
                connections += 1
                if in_list:
                    problems.append("Queries that contain a connection field within a list field are not currently supported.")
                if depth + 1 > 2:
                    problems.append("Bulk queries cannot contain connections with a nesting depth greater than 2.")
                element = get_named_type(named.fields["nodes"].type)  # type: ignore[attr-defined]
                walk(element, _node_selection(node), depth + 1, in_list)
            else:
                walk(named, node.selection_set, depth, in_list or is_list_type(get_nullable_type(definition.type)))

    operation = _operation(ast)
    top = walker.fields(walker.schema.query_type, operation.selection_set)  # type: ignore[arg-type]
    if operation.operation.value != "query" or len(top) != 1:
        problems.append("Bulk queries must select exactly one top-level field.")
    walk(walker.schema.query_type, operation.selection_set, 0, False)  # type: ignore[arg-type]
    if connections == 0:
        problems.append("Bulk queries must contain at least one connection.")
    if connections > 5:
        problems.append("Bulk queries cannot contain more than 5 connections.")
    return sorted(set(problems))
