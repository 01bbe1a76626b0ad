"""A session's requests arranged as a tree by `Helicone-Session-Path` (`/plan/step-1` puts a
request under `plan` → `step-1`), each node with its start offset and duration for a waterfall
and the totals of its subtree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heliograph.domain.money import nano_to_usd


@dataclass
class Node:
    name: str
    path: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)

    def child(self, name: str) -> Node:
        if name not in self.children:
            path = f"{self.path.rstrip('/')}/{name}"
            self.children[name] = Node(name, path)
        return self.children[name]


def build_tree(session_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`rows` carry request_id, session_path, created_ms, latency, cost, total_tokens, model,
    status; they come back as nested nodes with offsets from the session's first request."""
    root = Node(session_id, "/")
    start = min((int(row["created_ms"]) for row in rows), default=0)
    for row in rows:
        node = root
        for segment in str(row.get("session_path") or "/").split("/"):
            if segment:
                node = node.child(segment)
        node.requests.append(_request(row, start))
    return _shape(root)


def _request(row: dict[str, Any], start: int) -> dict[str, Any]:
    offset = int(row["created_ms"]) - start
    return {
        "request_id": row["request_id"],
        "start_offset_ms": offset,
        "duration_ms": int(row["latency"]),
        "cost_nano_usd": int(row["cost"]),
        "cost": nano_to_usd(row["cost"]),
        "total_tokens": int(row["total_tokens"]),
        "model": row["model"],
        "status": int(row["status"]),
    }


def _shape(node: Node) -> dict[str, Any]:
    children = [_shape(child) for child in node.children.values()]
    spans = [(r["start_offset_ms"], r["start_offset_ms"] + r["duration_ms"]) for r in node.requests]
    spans += [
        (c["start_offset_ms"], c["start_offset_ms"] + c["duration_ms"])
        for c in children
        if c["total_requests"]
    ]
    begin = min((s for s, _ in spans), default=0)
    end = max((e for _, e in spans), default=0)
    cost_nano = sum(r["cost_nano_usd"] for r in node.requests)
    cost_nano += sum(c["total_cost_nano_usd"] for c in children)
    return {
        "name": node.name,
        "path": node.path,
        "start_offset_ms": begin,
        "duration_ms": end - begin,
        "total_requests": len(node.requests) + sum(c["total_requests"] for c in children),
        "total_cost_nano_usd": cost_nano,  # summed exactly; shown in USD below
        "total_cost": nano_to_usd(cost_nano),
        "total_tokens": sum(r["total_tokens"] for r in node.requests)
        + sum(c["total_tokens"] for c in children),
        "requests": node.requests,
        "children": sorted(children, key=lambda c: (c["start_offset_ms"], c["path"])),
    }
