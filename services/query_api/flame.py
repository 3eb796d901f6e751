"""Flame graphs and top tables of a merged profile, and diffs of two, as the compact JSON the UI
draws: no storage, no HTTP. The trees are built and cut by the native core
(`shared.pprof.flame_tree`, which says how); this module shapes its answer.

Values may be scaled (the mean per profile divides by the number of profiles merged); scaling is
applied when the answer is written, so the arithmetic is done on the profile's integers.
"""
from __future__ import annotations

from typing import Any

from shared.pprof import flame_tree


def scaled(value: float, scale: float) -> float | int:
    """`value * scale` as an int when it is one, else rounded to 3 decimals (JSON stays short)."""
    if scale == 1:
        return value
    out = round(value * scale, 3)
    return int(out) if out == int(out) else out


def scaled_all(values: list[int], scale: float) -> list[Any]:
    return values if scale == 1 else [scaled(v, scale) for v in values]


def flame_json(raw: bytes, *, sample_type: str | None, budget: int, scale: float = 1.0,
               top_rows: int = 1000) -> dict[str, Any]:
    """The flame graph and top table of the raw protobuf profile `raw` as compact JSON.

    `nodes` are in pre-order, children heaviest first, as parallel arrays: `name` (index into
    `names`), `depth`, `total`, `self`; a node's parent is the last node before it one level up.
    `top` rows are `[name, flat, cum]`, by flat descending. ValueError for an unknown sample type.
    """
    tree = flame_tree(raw, sample_type=sample_type, budget=budget, top_rows=top_rows)
    types = tree.sample_types
    return {
        "sample_types": [{"type": t, "unit": u} for t, u in types],
        "sample_type": types[tree.column][0],
        "unit": types[tree.column][1],
        "total": scaled(tree.total[0][0], scale),
        "folded": tree.folded,
        "names": tree.names,
        "nodes": {"name": tree.name, "depth": tree.depth, "total": scaled_all(tree.total[0], scale),
                  "self": scaled_all(tree.self[0], scale)},
        "top": [[n, scaled(flat[0], scale), scaled(cum[0], scale)] for n, flat, cum in tree.top],
    }


def diff_json(base: bytes, target: bytes, *, sample_type: str | None, budget: int, base_scale: float = 1.0,
              target_scale: float = 1.0, top_rows: int = 1000) -> dict[str, Any]:
    """A diff flame graph and table of two raw protobuf profiles. Nodes as in `flame_json`, with
    `base` and `target` totals in place of `total`/`self`; the UI colours each by the change of
    its share, each side normalised to its own total. `top` rows are `[name, base_flat,
    target_flat, base_cum, target_cum]`, by the change of flat share, largest change (either way)
    first. The two sides are scaled apart (each its own mean)."""
    tree = flame_tree(target, sample_type=sample_type, budget=budget, top_rows=top_rows, base=base)
    types = tree.sample_types
    bs, ts = base_scale, target_scale
    return {
        "sample_types": [{"type": t, "unit": u} for t, u in types],
        "sample_type": types[tree.column][0],
        "unit": types[tree.column][1],
        "base_total": scaled(tree.total[0][0], bs),
        "target_total": scaled(tree.total[1][0], ts),
        "folded": tree.folded,
        "names": tree.names,
        "nodes": {"name": tree.name, "depth": tree.depth, "base": scaled_all(tree.total[0], bs),
                  "target": scaled_all(tree.total[1], ts)},
        "top": [[n, scaled(f[0], bs), scaled(f[1], ts), scaled(c[0], bs), scaled(c[1], ts)] for n, f, c in tree.top],
    }
