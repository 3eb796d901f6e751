"""Flame graph trees of a profile, and of two laid over each other for a diff, built by the
native core (native/src/flame.rs) with the GIL released.

A node is one call path from the root, frames named by function (inlined frames are frames of
their own, callers first; a location without lines is named by its address). Its total is every
sample value under it, its self what samples ending there hold. The tree is cut to a node budget
by keeping the heaviest paths (a kept node's parent is always kept; weight: the largest share of
its side's whole the node holds on either side) and summing each kept node's dropped children
into one "other" child, so every kept total stays exact. Nodes come in pre-order, children
heaviest first (in a diff: by the sum of both sides' shares), "other" last, ties by name.

The top table counts flat at a sample's leaf and cum once per sample for every function on its
stack (a recursive function counts once). One side: by flat descending, then cum, then name. Two
sides: by the change of flat share, target minus base, largest either way first, then name.
"""
from __future__ import annotations

from typing import NamedTuple

from shared.pprof import _native

ROOT = "root"
OTHER = "other"


class FlameTree(NamedTuple):  # not a dataclass: see parse.Checked
    sample_types: tuple[tuple[str, str], ...]  # (type, unit) of each column of the target
    column: int  # the one shown
    names: list[str]
    name: list[int]  # per node, an index into names
    depth: list[int]
    total: list[list[int]]  # per side (the base first in a diff), per node
    self: list[list[int]]
    folded: int  # how many nodes were summed into "other" nodes
    top: list[tuple[int, list[int], list[int]]]  # (name, flat per side, cum per side)


def flame_tree(raw: bytes, *, sample_type: str | None, budget: int, top_rows: int,
               base: bytes | None = None) -> FlameTree:
    """The tree of the raw protobuf profile `raw` (as `Merger.encode` gives it) in the column
    named `sample_type` (default: the last, what `go tool pprof` shows), at most `budget` nodes
    besides "other" ones, and the first `top_rows` rows of its table. With `base`, a diff of the
    two, the base as side 0 in the same column. ValueError names a missing sample type."""
    types, column, names, name, depth, total, self_, folded, top = _native.flame_tree(
        raw, sample_type or "", budget, top_rows, base)
    return FlameTree(tuple(types), column, names, name, depth, total, self_, folded, top)
