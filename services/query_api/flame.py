"""Flame graphs and top tables of a merged profile, and diffs of two: pure functions over
`shared.pprof.Profile`, no storage, no HTTP.

A tree node is one call path from the root; its `total` is every sample value under it and its
`self` what samples ending there hold. A tree is cut to a node budget by keeping the heaviest
paths (a kept node's parent is always kept) and summing each parent's dropped children into one
"other" child, so the totals of every kept node stay exact.

Values may be scaled (the mean per profile divides by the number of profiles merged); scaling is
applied when the answer is written, so the arithmetic is done on the profile's integers.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Iterator

from shared import pprof

OTHER = "other"
ROOT = "root"


@dataclass
class Node:
    name: str
    total: int = 0
    self: int = 0
    children: dict[str, Node] = field(default_factory=dict)

    def child(self, name: str) -> Node:
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = Node(name)
        return node


def sample_type_index(profile: pprof.Profile, wanted: str | None) -> int:
    """The column named `wanted`, or the last one (what `go tool pprof` shows by default)."""
    names = [t for t, _unit in pprof.sample_types(profile)]
    if not names:
        raise ValueError("the profile has no sample types")
    if not wanted:
        return len(names) - 1
    if wanted not in names:
        raise ValueError(f'no sample type "{wanted}" (have {", ".join(names)})')
    return names.index(wanted)


def stacks(profile: pprof.Profile, column: int) -> Iterator[tuple[list[str], int]]:
    """(function names root first, value) of every sample with a non-zero value in `column`.
    Inlined frames of one location come out as frames of their own, callers first."""
    strings = profile.string_table
    names = {f.id: strings[f.name] or f"0x{f.id:x}" for f in profile.function}
    frames: dict[int, list[str]] = {}
    for loc in profile.location:
        if loc.line:
            frames[loc.id] = [names.get(line.function_id, "?") for line in reversed(loc.line)]
        else:
            frames[loc.id] = [f"0x{loc.address:x}"]
    for sample in profile.sample:
        value = sample.value[column]
        if value == 0:
            continue
        stack: list[str] = []
        for loc_id in reversed(sample.location_id):
            stack.extend(frames.get(loc_id, ("?",)))
        yield stack, value


def build_tree(profile: pprof.Profile, column: int) -> Node:
    root = Node(ROOT)
    for stack, value in stacks(profile, column):
        root.total += value
        node = root
        for name in stack:
            node = node.child(name)
            node.total += value
        if node is root:
            root.self += value
        else:
            node.self += value
    return root


def top(profile: pprof.Profile, column: int) -> dict[str, tuple[int, int]]:
    """function -> (flat, cum); a recursive function counts once per sample in cum."""
    flat: dict[str, int] = {}
    cum: dict[str, int] = {}
    for stack, value in stacks(profile, column):
        if stack:
            flat[stack[-1]] = flat.get(stack[-1], 0) + value
        for name in set(stack):
            cum[name] = cum.get(name, 0) + value
    return {name: (flat.get(name, 0), c) for name, c in cum.items()}


def truncate(root: Node, budget: int, weight: Any = None) -> tuple[Node, int]:
    """A copy of the tree with at most `budget` nodes (besides "other" nodes), heaviest first by
    `weight(node)` (default: its total); returns it and how many nodes were folded away."""
    weigh = weight or (lambda n: n.total)
    kept = _kept(root, budget, weigh)
    folded = 0

    def copy(node: Node) -> Node:
        nonlocal folded
        out = Node(node.name, node.total, node.self)
        rest = Node(OTHER)
        for child in node.children.values():
            if id(child) in kept:
                out.children[child.name] = copy(child)
            else:
                rest.total += child.total
                rest.self += child.total
                folded += count(child)
        if rest.total:
            existing = out.children.get(OTHER)
            if existing is not None:  # a real function called "other"
                existing.total += rest.total
                existing.self += rest.self
            else:
                out.children[OTHER] = rest
        return out

    return copy(root), folded


def count(node: Node) -> int:
    return 1 + sum(count(c) for c in node.children.values())


class Names:
    """Interned names: each string once, nodes refer to its index."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def __call__(self, name: str) -> int:
        i = self.index.get(name)
        if i is None:
            i = self.index[name] = len(self.names)
            self.names.append(name)
        return i


def scaled(value: float, scale: float) -> float | int:
    """`value * scale` as an int when it is one, else rounded to 3 decimals (JSON stays short)."""
    if scale == 1:
        return value
    out = round(value * scale, 3)
    return int(out) if out == int(out) else out


def flame_json(profile: pprof.Profile, *, sample_type: str | None, budget: int, scale: float = 1.0,
               top_rows: int = 1000) -> dict[str, Any]:
    """The flame graph and top table of one profile as compact JSON.

    `nodes` are in pre-order, children heaviest first, as parallel arrays: `name` (index into
    `names`), `depth`, `total`, `self`; a node's parent is the last node before it one level up.
    `top` rows are `[name, flat, cum]`, by flat descending.
    """
    column = sample_type_index(profile, sample_type)
    types = pprof.sample_types(profile)
    tree, folded = truncate(build_tree(profile, column), budget)
    names = Names()
    nodes: dict[str, list[Any]] = {"name": [], "depth": [], "total": [], "self": []}
    stack: list[tuple[Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        nodes["name"].append(names(node.name))
        nodes["depth"].append(depth)
        nodes["total"].append(scaled(node.total, scale))
        nodes["self"].append(scaled(node.self, scale))
        for child in sorted(node.children.values(), key=child_order)[::-1]:
            stack.append((child, depth + 1))
    rows = sorted(top(profile, column).items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[:top_rows]
    return {
        "sample_types": [{"type": t, "unit": u} for t, u in types],
        "sample_type": types[column][0],
        "unit": types[column][1],
        "total": scaled(tree.total, scale),
        "folded": folded,
        "names": names.names,
        "nodes": nodes,
        "top": [[names(n), scaled(f, scale), scaled(c, scale)] for n, (f, c) in rows],
    }


def child_order(node: Node) -> tuple[int, int, str]:
    """Heaviest first, "other" last, ties by name."""
    return (node.name == OTHER, -node.total, node.name)


# Diffs ------------------------------------------------------------------------------------


@dataclass
class DiffNode:
    name: str
    base: int = 0
    target: int = 0
    children: dict[str, DiffNode] = field(default_factory=dict)


def diff_tree(base: Node, target: Node) -> DiffNode:
    """Both trees laid over each other: every path of either, with its total on each side."""
    out = DiffNode(ROOT)

    def add(into: DiffNode, node: Node, side: str) -> None:
        setattr(into, side, getattr(into, side) + node.total)
        for name, child in node.children.items():
            sub = into.children.get(name)
            if sub is None:
                sub = into.children[name] = DiffNode(name)
            add(sub, child, side)

    add(out, base, "base")
    add(out, target, "target")
    return out


def share_change(base: float, target: float, base_total: float, target_total: float) -> float:
    """How much of its side's whole a frame gained: target share minus base share, in [-1, 1].
    A side with nothing has a share of 0 everywhere."""
    b = base / base_total if base_total else 0.0
    t = target / target_total if target_total else 0.0
    return t - b


def diff_json(base: pprof.Profile, target: pprof.Profile, *, sample_type: str | None, budget: int,
              base_scale: float = 1.0, target_scale: float = 1.0, top_rows: int = 1000) -> dict[str, Any]:
    """A diff flame graph and table. Nodes as in `flame_json`, with `base` and `target` totals
    in place of `total`/`self`; the UI colours each by `share_change`. `top` rows are
    `[name, base_flat, target_flat, base_cum, target_cum]`, by the change of flat share, largest
    change (either way) first. The two sides are scaled apart (each its own mean)."""
    bcol = sample_type_index(base, sample_type)
    tcol = sample_type_index(target, sample_type or pprof.sample_types(base)[bcol][0])
    btree, ttree = build_tree(base, bcol), build_tree(target, tcol)
    merged = diff_tree(btree, ttree)
    btotal, ttotal = btree.total or 1, ttree.total or 1
    kept, folded = _truncate_diff(merged, budget, lambda n: max(n.base / btotal, n.target / ttotal))
    names = Names()
    nodes: dict[str, list[Any]] = {"name": [], "depth": [], "base": [], "target": []}
    stack: list[tuple[DiffNode, int]] = [(kept, 0)]
    while stack:
        node, depth = stack.pop()
        nodes["name"].append(names(node.name))
        nodes["depth"].append(depth)
        nodes["base"].append(scaled(node.base, base_scale))
        nodes["target"].append(scaled(node.target, target_scale))
        children = sorted(node.children.values(),
                          key=lambda n: (n.name == OTHER, -(n.base / btotal + n.target / ttotal), n.name))
        for child in children[::-1]:
            stack.append((child, depth + 1))
    btop, ttop = top(base, bcol), top(target, tcol)
    rows = []
    for name in set(btop) | set(ttop):
        bf, bc = btop.get(name, (0, 0))
        tf, tc = ttop.get(name, (0, 0))
        rows.append((name, bf, tf, bc, tc))
    rows.sort(key=lambda r: (-abs(share_change(r[1], r[2], btree.total, ttree.total)), r[0]))
    types = pprof.sample_types(target)
    return {
        "sample_types": [{"type": t, "unit": u} for t, u in types],
        "sample_type": types[tcol][0],
        "unit": types[tcol][1],
        "base_total": scaled(btree.total, base_scale),
        "target_total": scaled(ttree.total, target_scale),
        "folded": folded,
        "names": names.names,
        "nodes": nodes,
        "top": [[names(n), scaled(bf, base_scale), scaled(tf, target_scale), scaled(bc, base_scale),
                 scaled(tc, target_scale)] for n, bf, tf, bc, tc in rows[:top_rows]],
    }


def _truncate_diff(root: DiffNode, budget: int, weigh: Any) -> tuple[DiffNode, int]:
    kept = _kept(root, budget, weigh)
    folded = 0

    def size(node: DiffNode) -> int:
        return 1 + sum(size(c) for c in node.children.values())

    def copy(node: DiffNode) -> DiffNode:
        nonlocal folded
        out = DiffNode(node.name, node.base, node.target)
        rest = DiffNode(OTHER)
        for child in node.children.values():
            if id(child) in kept:
                out.children[child.name] = copy(child)
            else:
                rest.base += child.base
                rest.target += child.target
                folded += size(child)
        if rest.base or rest.target:
            into = out.children.setdefault(OTHER, DiffNode(OTHER))
            into.base += rest.base
            into.target += rest.target
        return out

    return copy(root), folded


def _kept(root: Any, budget: int, weigh: Any) -> set[int]:
    """The ids of the `budget` heaviest nodes that hang together from `root` (best first)."""
    kept: set[int] = {id(root)}
    heap: list[tuple[float, int, Any]] = []
    order = 0
    for child in root.children.values():
        heap.append((-weigh(child), order, child))
        order += 1
    heapq.heapify(heap)
    while heap and len(kept) < budget:
        _w, _o, node = heapq.heappop(heap)
        kept.add(id(node))
        for child in node.children.values():
            heapq.heappush(heap, (-weigh(child), order, child))
            order += 1
    return kept
