//! Merging profiles the way google/pprof's profile.Merge does, one input at a time, holding only
//! the merged state. The rules are those of shared/pprof/merge.py's docstring:
//! - every input has the signature (period type and sample types) of the first;
//! - samples with the same stack and labels are one sample, values added; all-zero ones dropped;
//! - a stack compares locations by identity: mapping (build id, else file name, with size rounded
//!   to 4 KiB and file offset), address relative to the mapping, lines and is_folded;
//! - duration summed, period the maximum, time_nanos the earliest non-zero (whatever the input
//!   order, unlike pprof), comments once each in first-seen order, drop/keep frames from the
//!   first input, default_sample_type and doc_url the first non-empty;
//! - the result holds only what its samples reference, ids from 1, the main mapping first.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::check::{check, signature};
use crate::error::{Error, Result};
use crate::gz;
use crate::profile::Profile;
use crate::wire::{put_bool, put_bytes, put_i64, put_packed, put_u64};

const MAPSIZE_ROUNDING: u64 = 0x1000;

/// Strings of the merged state, each held once; "" is 0.
#[derive(Default)]
struct Interner {
    index: FxHashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

impl Interner {
    fn new() -> Self {
        let mut i = Interner::default();
        i.get("");
        i
    }

    fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        let shared: Arc<str> = Arc::from(s);
        self.strings.push(shared.clone());
        self.index.insert(shared, i);
        i
    }
}

/// One input's string indexes mapped to the merged strings, each resolved on first use.
struct Strings<'p, 'a> {
    p: &'p Profile<'a>,
    merged: Vec<u32>,
}

impl<'p, 'a> Strings<'p, 'a> {
    fn new(p: &'p Profile<'a>) -> Self {
        Strings {
            p,
            merged: vec![u32::MAX; p.strings.len()],
        }
    }

    fn get(&mut self, interner: &mut Interner, i: i64) -> u32 {
        let slot = &mut self.merged[i as usize];
        if *slot == u32::MAX {
            *slot = interner.get(self.p.string(i));
        }
        *slot
    }
}

/// Input ids to merged indexes: a vector when the ids are small, as they nearly always are.
enum IdMap {
    Dense(Vec<u32>),
    Sparse(FxHashMap<u64, u32>),
}

impl IdMap {
    fn new(n: usize, max_id: u64) -> Self {
        if max_id <= (n as u64) * 4 + 64 {
            IdMap::Dense(vec![u32::MAX; max_id as usize + 1])
        } else {
            IdMap::Sparse(FxHashMap::with_capacity_and_hasher(n, Default::default()))
        }
    }

    fn set(&mut self, id: u64, v: u32) {
        match self {
            IdMap::Dense(d) => d[id as usize] = v,
            IdMap::Sparse(s) => {
                s.insert(id, v);
            }
        }
    }

    /// Ids are checked to resolve before a profile is merged.
    fn get(&self, id: u64) -> u32 {
        match self {
            IdMap::Dense(d) => d[id as usize],
            IdMap::Sparse(s) => s[&id],
        }
    }
}

/// An input's mappings: its ids to its own indexes, and each one's (merged index, start).
struct InputMappings {
    ids: IdMap,
    merged: Vec<(u32, u64)>,
}

struct Header {
    signature: String,
    sample_types: Vec<(u32, u32)>,
    period_type: Option<(u32, u32)>,
    drop_frames: u32,
    keep_frames: u32,
    time_nanos: i64,
    duration_nanos: i64,
    period: i64,
    comments: Vec<u32>,
    seen_comments: FxHashSet<u32>,
    default_sample_type: u32,
    doc_url: u32,
}

#[derive(Clone, Copy)]
struct MergedMapping {
    start: u64,
    limit: u64,
    offset: u64,
    filename: u32,
    build_id: u32,
    flags: [bool; 4],
}

struct MergedLocation {
    mapping: Option<u32>,
    address: u64,
    lines: Box<[(u32, i64, i64)]>,
    folded: bool,
}

fn push_i64(key: &mut Vec<u32>, v: i64) {
    key.push(v as u32);
    key.push(((v as u64) >> 32) as u32);
}

/// The merged state; see the module docstring for the rules.
#[derive(Default)]
pub struct Merger {
    header: Option<Header>,
    strings: Interner,
    functions: FxHashMap<[u64; 4], u32>,
    function_keys: Vec<[u64; 4]>,
    mappings: Vec<MergedMapping>,
    mapping_index: FxHashMap<[u64; 3], u32>,
    main_mapping: Option<u32>,
    locations: Vec<MergedLocation>,
    location_index: FxHashMap<Box<[u32]>, u32>,
    // A sample key is its stack (merged location indexes) then its labels as (key, str, num,
    // num_unit), strings merged; the sums are kept flat, one row of n values per sample.
    sample_index: FxHashMap<Arc<[u32]>, u32>,
    sample_keys: Vec<Arc<[u32]>>,
    sums: Vec<i64>,
    profiles: usize,
}

impl Merger {
    pub fn new() -> Self {
        Merger {
            strings: Interner::new(),
            ..Default::default()
        }
    }

    /// How many profiles were added.
    pub fn profiles(&self) -> usize {
        self.profiles
    }

    /// Inflates, decodes, checks and folds in one profile (gzip or raw protobuf).
    pub fn add_bytes(&mut self, data: &[u8], limit: usize) -> Result<()> {
        let raw = gz::inflate(data, limit)?;
        if raw.is_empty() {
            return Err(Error::Malformed("empty".into()));
        }
        let p = Profile::decode(&raw)?;
        check(&p)?;
        self.add(&p)
    }

    /// Folds in a checked profile; IncompatibleProfiles leaves the state as it was.
    pub fn add(&mut self, p: &Profile<'_>) -> Result<()> {
        let mut st = Strings::new(p);
        self.combine_header(p, &mut st)?;
        let functions = self.map_functions(p, &mut st);
        let mappings = self.map_mappings(p, &mut st);
        let locations = self.map_locations(p, &functions, &mappings);
        self.add_samples(p, &locations, &mut st);
        self.profiles += 1;
        Ok(())
    }

    fn combine_header(&mut self, p: &Profile<'_>, st: &mut Strings<'_, '_>) -> Result<()> {
        let sig = signature(p);
        let s = &mut self.strings;
        let h = match &mut self.header {
            Some(h) if h.signature != sig => {
                return Err(Error::Incompatible(h.signature.clone(), sig))
            }
            Some(h) => h,
            None => {
                let sample_types = p
                    .sample_types
                    .iter()
                    .map(|t| (st.get(s, t.r#type), st.get(s, t.unit)))
                    .collect();
                let period_type = p
                    .period_type
                    .map(|t| (st.get(s, t.r#type), st.get(s, t.unit)));
                self.header.insert(Header {
                    signature: sig,
                    sample_types,
                    period_type,
                    drop_frames: st.get(s, p.drop_frames),
                    keep_frames: st.get(s, p.keep_frames),
                    time_nanos: 0,
                    duration_nanos: 0,
                    period: 0,
                    comments: Vec::new(),
                    seen_comments: FxHashSet::default(),
                    default_sample_type: 0,
                    doc_url: 0,
                })
            }
        };
        if p.time_nanos != 0 && (h.time_nanos == 0 || p.time_nanos < h.time_nanos) {
            h.time_nanos = p.time_nanos;
        }
        h.duration_nanos = h.duration_nanos.wrapping_add(p.duration_nanos);
        h.period = h.period.max(p.period);
        for &c in &p.comments {
            let c = st.get(s, c);
            if h.seen_comments.insert(c) {
                h.comments.push(c);
            }
        }
        if h.default_sample_type == 0 {
            h.default_sample_type = st.get(s, p.default_sample_type);
        }
        if h.doc_url == 0 {
            h.doc_url = st.get(s, p.doc_url);
        }
        Ok(())
    }

    fn map_functions(&mut self, p: &Profile<'_>, st: &mut Strings<'_, '_>) -> IdMap {
        let max_id = p.functions.iter().map(|f| f.id).max().unwrap_or(0);
        let mut out = IdMap::new(p.functions.len(), max_id);
        let s = &mut self.strings;
        for f in &p.functions {
            let key = [
                u64::from(st.get(s, f.name)),
                u64::from(st.get(s, f.system_name)),
                u64::from(st.get(s, f.filename)),
                f.start_line as u64,
            ];
            let next = self.function_keys.len() as u32;
            let i = *self.functions.entry(key).or_insert_with(|| {
                self.function_keys.push(key);
                next
            });
            out.set(f.id, i);
        }
        out
    }

    /// Input mapping id -> (merged index, start of the input mapping).
    fn map_mappings(&mut self, p: &Profile<'_>, st: &mut Strings<'_, '_>) -> InputMappings {
        let max_id = p.mappings.iter().map(|m| m.id).max().unwrap_or(0);
        let mut ids = IdMap::new(p.mappings.len(), max_id);
        let mut merged = Vec::with_capacity(p.mappings.len());
        let s = &mut self.strings;
        for (n, m) in p.mappings.iter().enumerate() {
            let filename = st.get(s, m.filename);
            let build_id = st.get(s, m.build_id);
            let mut size =
                (m.memory_limit.wrapping_sub(m.memory_start)).wrapping_add(MAPSIZE_ROUNDING - 1);
            size -= size % MAPSIZE_ROUNDING;
            // Without a build id or a file name a mapping is a placeholder: all of them are one.
            let key = [
                size,
                m.file_offset,
                u64::from(if build_id != 0 { build_id } else { filename }),
            ];
            let next = self.mappings.len() as u32;
            let i = *self.mapping_index.entry(key).or_insert(next);
            if i == next {
                self.mappings.push(MergedMapping {
                    start: m.memory_start,
                    limit: m.memory_limit,
                    offset: m.file_offset,
                    filename,
                    build_id,
                    flags: [
                        m.has_functions,
                        m.has_filenames,
                        m.has_line_numbers,
                        m.has_inline_frames,
                    ],
                });
            }
            self.main_mapping.get_or_insert(i);
            ids.set(m.id, n as u32);
            merged.push((i, m.memory_start));
        }
        InputMappings { ids, merged }
    }

    fn map_locations(
        &mut self,
        p: &Profile<'_>,
        functions: &IdMap,
        mappings: &InputMappings,
    ) -> IdMap {
        let max_id = p.locations.iter().map(|l| l.id).max().unwrap_or(0);
        let mut out = IdMap::new(p.locations.len(), max_id);
        let mut key: Vec<u32> = Vec::new();
        let mut lines = Vec::new();
        for loc in &p.locations {
            lines.clear();
            lines.extend(
                p.lines_of(loc)
                    .iter()
                    .map(|l| (functions.get(l.function_id), l.line, l.column)),
            );
            let (mapping, rel) = if loc.mapping_id != 0 {
                let (merged, start) = mappings.merged[mappings.ids.get(loc.mapping_id) as usize];
                // Relative to the mapping, so address-space randomisation does not split locations.
                (Some(merged), i128::from(loc.address) - i128::from(start))
            } else {
                (None, i128::from(loc.address))
            };
            key.clear();
            key.push(mapping.map_or(0, |m| m + 1));
            key.extend((0..4).map(|k| (rel >> (32 * k)) as u32));
            key.push(u32::from(loc.is_folded));
            for &(f, line, column) in &lines {
                key.push(f);
                push_i64(&mut key, line);
                push_i64(&mut key, column);
            }
            let i = match self.location_index.get(key.as_slice()) {
                Some(&i) => i,
                None => {
                    let i = self.locations.len() as u32;
                    let address = match mapping {
                        Some(m) => (rel + i128::from(self.mappings[m as usize].start)) as u64,
                        None => loc.address,
                    };
                    self.locations.push(MergedLocation {
                        mapping,
                        address,
                        lines: lines.clone().into_boxed_slice(),
                        folded: loc.is_folded,
                    });
                    self.location_index
                        .insert(key.clone().into_boxed_slice(), i);
                    i
                }
            };
            out.set(loc.id, i);
        }
        out
    }

    fn add_samples(&mut self, p: &Profile<'_>, locations: &IdMap, st: &mut Strings<'_, '_>) {
        let n = p.sample_types.len();
        let mut key: Vec<u32> = Vec::new();
        let mut labels: Vec<(u32, u32, i64, u32)> = Vec::new();
        for sample in &p.samples {
            let values = p.values_of(sample);
            if values.iter().all(|&v| v == 0) {
                continue;
            }
            key.clear();
            key.extend(
                p.location_ids_of(sample)
                    .iter()
                    .map(|&id| locations.get(id)),
            );
            // Like pprof, a label with neither a string nor a number is no label; keys are
            // compared in sorted order, the values of one key in their own order (stable sort).
            labels.clear();
            for l in p.labels_of(sample) {
                if l.str != 0 || l.num != 0 || l.num_unit != 0 {
                    let s = &mut self.strings;
                    labels.push((
                        st.get(s, l.key),
                        st.get(s, l.str),
                        l.num,
                        st.get(s, l.num_unit),
                    ));
                }
            }
            // The stack's length goes first, so no stack can pass for another's labels.
            key.insert(0, key.len() as u32);
            let strings = &self.strings.strings;
            labels.sort_by(|a, b| strings[a.0 as usize].cmp(&strings[b.0 as usize]));
            for &(k, s, num, u) in &labels {
                key.extend([k, s]);
                push_i64(&mut key, num);
                key.push(u);
            }
            match self.sample_index.get(key.as_slice()) {
                Some(&i) => {
                    let row = &mut self.sums[i as usize * n..(i as usize + 1) * n];
                    for (acc, v) in row.iter_mut().zip(values) {
                        *acc = acc.wrapping_add(*v);
                    }
                }
                None => {
                    let i = self.sample_keys.len() as u32;
                    let shared: Arc<[u32]> = Arc::from(key.as_slice());
                    self.sample_keys.push(shared.clone());
                    self.sample_index.insert(shared, i);
                    self.sums.extend_from_slice(values);
                }
            }
        }
    }

    /// The merged profile as protobuf bytes; None before any profile was added.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let h = self.header.as_ref()?;
        Some(Encoder::new(self).encode(h))
    }
}

/// Writes a Merger's state as a compact profile, strings numbered in first-use order.
struct Encoder<'m> {
    m: &'m Merger,
    string_ids: Vec<u32>,
    table: Vec<u32>,
    scratch: Vec<u8>,
    packed: Vec<u8>,
}

impl<'m> Encoder<'m> {
    fn new(m: &'m Merger) -> Self {
        let mut string_ids = vec![u32::MAX; m.strings.strings.len()];
        string_ids[0] = 0;
        Encoder {
            m,
            string_ids,
            table: vec![0],
            scratch: Vec::new(),
            packed: Vec::new(),
        }
    }

    fn s(&mut self, merged: u32) -> u64 {
        let slot = &mut self.string_ids[merged as usize];
        if *slot == u32::MAX {
            *slot = self.table.len() as u32;
            self.table.push(merged);
        }
        u64::from(*slot)
    }

    fn message(
        &mut self,
        out: &mut Vec<u8>,
        field: u32,
        fill: impl FnOnce(&mut Self, &mut Vec<u8>),
    ) {
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        fill(self, &mut body);
        put_bytes(out, field, &body);
        self.scratch = body;
    }

    fn encode(mut self, h: &Header) -> Vec<u8> {
        let m = self.m;
        let n = h.sample_types.len();
        let mut types = Vec::new();
        for &(t, u) in &h.sample_types {
            let (t, u) = (self.s(t), self.s(u));
            self.message(&mut types, 1, |_, b| {
                put_u64(b, 1, t);
                put_u64(b, 2, u);
            });
        }

        let live: Vec<usize> = (0..m.sample_keys.len())
            .filter(|&i| m.sums[i * n..(i + 1) * n].iter().any(|&v| v != 0))
            .collect();
        let mut location_ids = vec![0u64; m.locations.len()];
        let mut used_locations = Vec::new();
        for &i in &live {
            let key = &m.sample_keys[i];
            for &l in &key[1..=key[0] as usize] {
                if location_ids[l as usize] == 0 {
                    used_locations.push(l);
                    location_ids[l as usize] = used_locations.len() as u64;
                }
            }
        }

        let mut used_mappings: Vec<u32> = used_locations
            .iter()
            .filter_map(|&l| m.locations[l as usize].mapping)
            .collect::<FxHashSet<u32>>()
            .into_iter()
            .collect();
        used_mappings.sort_by_key(|&i| (Some(i) != m.main_mapping, i));
        let mut mapping_ids = vec![0u64; m.mappings.len()];
        let mut mappings = Vec::new();
        for (n, &i) in used_mappings.iter().enumerate() {
            mapping_ids[i as usize] = n as u64 + 1;
            let mm = m.mappings[i as usize];
            let (filename, build_id) = (self.s(mm.filename), self.s(mm.build_id));
            self.message(&mut mappings, 3, |_, b| {
                put_u64(b, 1, n as u64 + 1);
                put_u64(b, 2, mm.start);
                put_u64(b, 3, mm.limit);
                put_u64(b, 4, mm.offset);
                put_u64(b, 5, filename);
                put_u64(b, 6, build_id);
                for (k, &flag) in mm.flags.iter().enumerate() {
                    put_bool(b, 7 + k as u32, flag);
                }
            });
        }

        let mut function_ids = vec![0u64; m.function_keys.len()];
        let mut next_function = 0u64;
        let mut functions = Vec::new();
        let mut locations = Vec::new();
        for &l in &used_locations {
            let loc = &m.locations[l as usize];
            let mut lines = Vec::with_capacity(loc.lines.len());
            for &(f, line, column) in loc.lines.iter() {
                if function_ids[f as usize] == 0 {
                    next_function += 1;
                    function_ids[f as usize] = next_function;
                    let [name, system_name, filename, start_line] = m.function_keys[f as usize];
                    let (name, system_name, filename) = (
                        self.s(name as u32),
                        self.s(system_name as u32),
                        self.s(filename as u32),
                    );
                    self.message(&mut functions, 5, |_, b| {
                        put_u64(b, 1, next_function);
                        put_u64(b, 2, name);
                        put_u64(b, 3, system_name);
                        put_u64(b, 4, filename);
                        put_u64(b, 5, start_line);
                    });
                }
                lines.push((function_ids[f as usize], line, column));
            }
            let mapping_id = loc.mapping.map_or(0, |i| mapping_ids[i as usize]);
            self.message(&mut locations, 4, |_, b| {
                put_u64(b, 1, location_ids[l as usize]);
                put_u64(b, 2, mapping_id);
                put_u64(b, 3, loc.address);
                let mut line_buf = Vec::new();
                for &(f, line, column) in &lines {
                    line_buf.clear();
                    put_u64(&mut line_buf, 1, f);
                    put_i64(&mut line_buf, 2, line);
                    put_i64(&mut line_buf, 3, column);
                    put_bytes(b, 4, &line_buf);
                }
                put_bool(b, 5, loc.folded);
            });
        }

        let mut samples = Vec::new();
        for &i in &live {
            let key = &m.sample_keys[i];
            let stack = &key[1..=key[0] as usize];
            let labels: Vec<(u64, u64, i64, u64)> = key[1 + stack.len()..]
                .chunks_exact(5)
                .map(|c| {
                    let num = (u64::from(c[2]) | (u64::from(c[3]) << 32)) as i64;
                    (self.s(c[0]), self.s(c[1]), num, self.s(c[4]))
                })
                .collect();
            let values = &m.sums[i * n..(i + 1) * n];
            let mut packed = std::mem::take(&mut self.packed);
            self.message(&mut samples, 2, |_, b| {
                put_packed(
                    b,
                    1,
                    stack.iter().map(|&l| location_ids[l as usize]),
                    &mut packed,
                );
                put_packed(b, 2, values.iter().map(|&v| v as u64), &mut packed);
                for &(k, s, num, u) in &labels {
                    let mut lb = Vec::new();
                    put_u64(&mut lb, 1, k);
                    put_u64(&mut lb, 2, s);
                    put_i64(&mut lb, 3, num);
                    put_u64(&mut lb, 4, u);
                    put_bytes(b, 3, &lb);
                }
            });
            self.packed = packed;
        }

        let period_type = h.period_type.map(|(t, u)| (self.s(t), self.s(u)));
        let drop_frames = self.s(h.drop_frames);
        let keep_frames = self.s(h.keep_frames);
        let comments: Vec<u64> = h.comments.iter().map(|&c| self.s(c)).collect();
        let default_sample_type = self.s(h.default_sample_type);
        let doc_url = self.s(h.doc_url);

        let mut out = Vec::with_capacity(
            types.len() + samples.len() + mappings.len() + locations.len() + functions.len() + 1024,
        );
        out.extend_from_slice(&types);
        out.extend_from_slice(&samples);
        out.extend_from_slice(&mappings);
        out.extend_from_slice(&locations);
        out.extend_from_slice(&functions);
        for &merged in &self.table {
            put_bytes(&mut out, 6, m.strings.strings[merged as usize].as_bytes());
        }
        put_u64(&mut out, 7, drop_frames);
        put_u64(&mut out, 8, keep_frames);
        put_i64(&mut out, 9, h.time_nanos);
        put_i64(&mut out, 10, h.duration_nanos);
        if let Some((t, u)) = period_type {
            let mut b = Vec::new();
            put_u64(&mut b, 1, t);
            put_u64(&mut b, 2, u);
            put_bytes(&mut out, 11, &b);
        }
        put_i64(&mut out, 12, h.period);
        let mut packed = Vec::new();
        put_packed(&mut out, 13, comments.iter().copied(), &mut packed);
        put_u64(&mut out, 14, default_sample_type);
        put_u64(&mut out, 15, doc_url);
        out
    }
}
