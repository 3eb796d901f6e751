//! Flame graph trees and top tables of a profile, or of two laid over each other for a diff.
//!
//! A node is one call path from the root, frames named by function (inlined frames of a location
//! are frames of their own, callers first; a location without lines is its address). Each node
//! holds, per side, its `total` (every sample value under it) and its `self` (what samples ending
//! there hold). The tree is cut to a node budget by keeping the heaviest paths (a kept node's
//! parent is always kept), the dropped children of each kept node summed into one "other" child,
//! so every kept total stays exact. A node's weight is the largest share of its side's whole it
//! holds on either side, so a diff keeps what matters on either side.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::profile::Profile;

pub const ROOT: &str = "root";
pub const OTHER: &str = "other";
const UNKNOWN: &str = "?";

#[derive(Default)]
struct Names {
    index: FxHashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

struct Node {
    name: u32,
    parent: u32,
    total: [i128; 2],
    self_: [i128; 2],
}

/// The merged tree of one or two sides (a diff: 0 the base, 1 the target) and, per function
/// name, its flat and cum values per side.
pub struct Tree {
    names: Names,
    nodes: Vec<Node>,
    children: FxHashMap<(u32, u32), u32>,
    flat: Vec<[i128; 2]>,
    cum: Vec<[i128; 2]>,
    seen: Vec<bool>,
    sides: usize,
}

/// A cut tree in pre-order (children heaviest first, "other" last, ties by name), with the
/// top table; names are indexes into `names`.
pub struct Cut {
    pub names: Vec<String>,
    pub name: Vec<u32>,
    pub depth: Vec<u32>,
    /// per side, per node
    pub total: Vec<Vec<i128>>,
    pub self_: Vec<Vec<i128>>,
    /// how many nodes were summed into "other" nodes
    pub folded: usize,
    /// (name, flat per side, cum per side)
    pub top: Vec<(u32, Vec<i128>, Vec<i128>)>,
}

/// The index of the sample type named `wanted`, or the last one (what `go tool pprof` shows by
/// default) when `wanted` is empty.
pub fn column(p: &Profile<'_>, wanted: &str) -> std::result::Result<usize, String> {
    let names: Vec<&str> = p.sample_types.iter().map(|t| str_at(p, t.r#type)).collect();
    if names.is_empty() {
        return Err("the profile has no sample types".to_string());
    }
    if wanted.is_empty() {
        return Ok(names.len() - 1);
    }
    names
        .iter()
        .position(|&n| n == wanted)
        .ok_or_else(|| format!("no sample type \"{wanted}\" (have {})", names.join(", ")))
}

fn str_at<'a>(p: &Profile<'a>, i: i64) -> &'a str {
    usize::try_from(i)
        .ok()
        .and_then(|i| p.strings.get(i))
        .copied()
        .unwrap_or("")
}

impl Tree {
    pub fn new(sides: usize) -> Tree {
        assert!(sides == 1 || sides == 2);
        let mut names = Names::default();
        let root = names.get(ROOT);
        names.get(OTHER);
        let nodes = vec![Node {
            name: root,
            parent: 0,
            total: [0; 2],
            self_: [0; 2],
        }];
        Tree {
            names,
            nodes,
            children: FxHashMap::default(),
            flat: vec![],
            cum: vec![],
            seen: vec![],
            sides,
        }
    }

    /// Folds every sample of `p` with a non-zero value in `column` into `side`.
    pub fn add(&mut self, p: &Profile<'_>, column: usize, side: usize) {
        let names = &mut self.names;
        let functions: FxHashMap<u64, u32> = p
            .functions
            .iter()
            .map(|f| {
                let s = str_at(p, f.name);
                (
                    f.id,
                    if s.is_empty() {
                        names.get(&format!("0x{:x}", f.id))
                    } else {
                        names.get(s)
                    },
                )
            })
            .collect();
        let unknown = names.get(UNKNOWN);
        let mut frames: Vec<u32> = Vec::new();
        let mut located: FxHashMap<u64, (usize, usize)> = FxHashMap::default();
        for loc in &p.locations {
            let start = frames.len();
            let lines = p.lines_of(loc);
            if lines.is_empty() {
                frames.push(names.get(&format!("0x{:x}", loc.address)));
            }
            for line in lines.iter().rev() {
                frames.push(functions.get(&line.function_id).copied().unwrap_or(unknown));
            }
            located.insert(loc.id, (start, frames.len()));
        }
        let n = self.names.names.len();
        self.flat.resize(n, [0; 2]);
        self.cum.resize(n, [0; 2]);
        self.seen.resize(n, false);
        let mut stamp = vec![0u32; n]; // the last sample that counted a name in cum
        for (i, s) in p.samples.iter().enumerate() {
            let v = match p.values_of(s).get(column) {
                Some(&v) if v != 0 => i128::from(v),
                _ => continue,
            };
            let mark = i as u32 + 1;
            let mut node = 0u32;
            let mut leaf = None;
            self.nodes[0].total[side] += v;
            for loc in p.location_ids_of(s).iter().rev() {
                let stack = match located.get(loc) {
                    Some(&(a, b)) => &frames[a..b],
                    None => std::slice::from_ref(&unknown),
                };
                for &name in stack {
                    node = self.child(node, name);
                    self.nodes[node as usize].total[side] += v;
                    leaf = Some(name);
                    let k = name as usize;
                    if stamp[k] != mark {
                        stamp[k] = mark;
                        self.cum[k][side] += v;
                        self.seen[k] = true;
                    }
                }
            }
            self.nodes[node as usize].self_[side] += v;
            if let Some(name) = leaf {
                self.flat[name as usize][side] += v;
            }
        }
    }

    fn child(&mut self, parent: u32, name: u32) -> u32 {
        let nodes = &mut self.nodes;
        *self.children.entry((parent, name)).or_insert_with(|| {
            nodes.push(Node {
                name,
                parent,
                total: [0; 2],
                self_: [0; 2],
            });
            (nodes.len() - 1) as u32
        })
    }

    fn wholes(&self) -> [f64; 2] {
        let t = self.nodes[0].total;
        [
            if t[0] != 0 { t[0] as f64 } else { 1.0 },
            if t[1] != 0 { t[1] as f64 } else { 1.0 },
        ]
    }

    /// The share of its side's whole a node holds, the larger of the two sides.
    fn weight(&self, total: &[i128; 2], wholes: &[f64; 2]) -> f64 {
        (0..self.sides)
            .map(|s| total[s] as f64 / wholes[s])
            .fold(f64::MIN, f64::max)
    }

    /// The tree cut to `budget` nodes besides "other" ones, and the top table's first
    /// `top_rows` rows: by flat descending (then cum, then name) for one side, by the change
    /// of flat share (either way) for two.
    pub fn cut(&self, budget: usize, top_rows: usize) -> Cut {
        let n = self.nodes.len();
        let wholes = self.wholes();
        // Children in the order they were first met, as CSR; a child is always after its parent.
        let mut start = vec![0usize; n + 1];
        for node in &self.nodes[1..] {
            start[node.parent as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut kids = vec![0u32; n.saturating_sub(1)];
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            kids[fill[node.parent as usize]] = i as u32;
            fill[node.parent as usize] += 1;
        }
        let children = |i: usize| &kids[start[i]..start[i + 1]];
        let mut size = vec![1usize; n];
        for i in (1..n).rev() {
            size[self.nodes[i].parent as usize] += size[i];
        }

        let mut kept = vec![false; n];
        kept[0] = true;
        let mut count = 1;
        let mut heap = BinaryHeap::new();
        let mut order = 0u64;
        let mut push = |heap: &mut BinaryHeap<(Weight, Reverse<u64>, u32)>, i: u32| {
            heap.push((
                Weight(self.weight(&self.nodes[i as usize].total, &wholes)),
                Reverse(order),
                i,
            ));
            order += 1;
        };
        for &c in children(0) {
            push(&mut heap, c);
        }
        while count < budget {
            let Some((_, _, i)) = heap.pop() else { break };
            kept[i as usize] = true;
            count += 1;
            for &c in children(i as usize) {
                push(&mut heap, c);
            }
        }

        let other = self.names.index[OTHER];
        let mut out = Cut {
            names: vec![],
            name: vec![],
            depth: vec![],
            total: vec![vec![]; self.sides],
            self_: vec![vec![]; self.sides],
            folded: 0,
            top: vec![],
        };
        let mut interned: FxHashMap<u32, u32> = FxHashMap::default();
        let mut intern = |out: &mut Cut, name: u32| -> u32 {
            *interned.entry(name).or_insert_with(|| {
                out.names.push(self.names.names[name as usize].clone());
                (out.names.len() - 1) as u32
            })
        };
        // (node, or none for an "other" made of dropped children; name; total; self; depth)
        type Item = (Option<u32>, u32, [i128; 2], [i128; 2], u32);
        let root = &self.nodes[0];
        let mut stack: Vec<Item> = vec![(Some(0), root.name, root.total, root.self_, 0)];
        while let Some((node, name, total, self_, depth)) = stack.pop() {
            let id = intern(&mut out, name);
            out.name.push(id);
            out.depth.push(depth);
            for s in 0..self.sides {
                out.total[s].push(total[s]);
                out.self_[s].push(self_[s]);
            }
            let Some(node) = node else { continue };
            let mut items: Vec<Item> = Vec::new();
            let mut rest = [0i128; 2];
            let mut dropped = false;
            for &c in children(node as usize) {
                let child = &self.nodes[c as usize];
                if kept[c as usize] {
                    items.push((Some(c), child.name, child.total, child.self_, depth + 1));
                } else {
                    dropped = true;
                    out.folded += size[c as usize];
                    for s in 0..2 {
                        rest[s] += child.total[s];
                    }
                }
            }
            if dropped {
                match items.iter_mut().find(|it| it.1 == other) {
                    Some(it) => {
                        // a real function called "other"
                        for s in 0..2 {
                            it.2[s] += rest[s];
                            it.3[s] += rest[s];
                        }
                    }
                    None => items.push((None, other, rest, rest, depth + 1)),
                }
            }
            let key = |it: &Item| {
                (0..self.sides)
                    .map(|s| it.2[s] as f64 / wholes[s])
                    .sum::<f64>()
            };
            items.sort_by(|a, b| {
                (a.1 == other)
                    .cmp(&(b.1 == other))
                    .then_with(|| key(b).total_cmp(&key(a)))
                    .then_with(|| {
                        self.names.names[a.1 as usize].cmp(&self.names.names[b.1 as usize])
                    })
            });
            stack.extend(items.into_iter().rev());
        }

        let mut rows: Vec<u32> = (0..self.seen.len() as u32)
            .filter(|&i| self.seen[i as usize])
            .collect();
        let name_of = |i: u32| &self.names.names[i as usize];
        if self.sides == 1 {
            rows.sort_by(|&a, &b| {
                let (fa, fb) = (self.flat[a as usize][0], self.flat[b as usize][0]);
                let (ca, cb) = (self.cum[a as usize][0], self.cum[b as usize][0]);
                fb.cmp(&fa)
                    .then(cb.cmp(&ca))
                    .then_with(|| name_of(a).cmp(name_of(b)))
            });
        } else {
            let t = root.total;
            let share = |v: i128, whole: i128| {
                if whole != 0 {
                    v as f64 / whole as f64
                } else {
                    0.0
                }
            };
            let change = |i: u32| {
                let f = self.flat[i as usize];
                (share(f[1], t[1]) - share(f[0], t[0])).abs()
            };
            rows.sort_by(|&a, &b| {
                change(b)
                    .total_cmp(&change(a))
                    .then_with(|| name_of(a).cmp(name_of(b)))
            });
        }
        rows.truncate(top_rows);
        for i in rows {
            let k = i as usize;
            let id = intern(&mut out, i);
            out.top.push((
                id,
                self.flat[k][..self.sides].to_vec(),
                self.cum[k][..self.sides].to_vec(),
            ));
        }
        out
    }
}

/// An f64 ordered totally, for the heap.
struct Weight(f64);

impl PartialEq for Weight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Weight {}

impl PartialOrd for Weight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Weight {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
