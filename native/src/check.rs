//! Validity as pprof's CheckValid has it, plus string-table bounds, and what ingest asks of a
//! profile. The checks run in the order of the messages they give, so the first problem found
//! is the one reported, whatever the input.

use rustc_hash::FxHashSet;

use crate::error::{malformed, Result};
use crate::profile::Profile;

/// Fails with the reason of the first problem found in `p`.
pub fn check(p: &Profile<'_>) -> Result<()> {
    if p.strings.is_empty() {
        return malformed("string table is empty");
    }
    if !p.strings[0].is_empty() {
        return malformed("string_table[0] must be the empty string");
    }
    check_samples(p)?;
    let mapping_ids = unique_ids("mapping", p.mappings.iter().map(|m| m.id))?;
    let function_ids = unique_ids("function", p.functions.iter().map(|f| f.id))?;
    let location_ids = unique_ids("location", p.locations.iter().map(|l| l.id))?;

    if p.lines.iter().any(|l| l.function_id == 0) {
        return malformed("a location has a line without a function (function id 0)");
    }
    // A location without a mapping has mapping id 0, which is not a reference.
    resolved(
        "location",
        "mapping",
        p.locations.iter().map(|l| l.mapping_id).filter(|&i| i != 0),
        &mapping_ids,
    )?;
    resolved(
        "location",
        "function",
        p.lines.iter().map(|l| l.function_id),
        &function_ids,
    )?;
    resolved(
        "sample",
        "location",
        p.location_ids.iter().copied(),
        &location_ids,
    )?;

    let n = p.strings.len();
    column(
        n,
        "sample type",
        p.sample_types.iter().flat_map(|t| [t.r#type, t.unit]),
    )?;
    let period = p.period_type.unwrap_or_default();
    column(n, "period type", [period.r#type, period.unit].into_iter())?;
    let header = [
        p.drop_frames,
        p.keep_frames,
        p.default_sample_type,
        p.doc_url,
    ];
    column(
        n,
        "profile header",
        header.into_iter().chain(p.comments.iter().copied()),
    )?;
    column(n, "mapping", p.mappings.iter().map(|m| m.filename))?;
    column(n, "mapping", p.mappings.iter().map(|m| m.build_id))?;
    column(n, "function", p.functions.iter().map(|f| f.name))?;
    column(n, "function", p.functions.iter().map(|f| f.system_name))?;
    column(n, "function", p.functions.iter().map(|f| f.filename))?;
    column(n, "label", p.labels.iter().map(|l| l.key))?;
    column(n, "label", p.labels.iter().map(|l| l.str))?;
    column(n, "label", p.labels.iter().map(|l| l.num_unit))?;
    Ok(())
}

fn check_samples(p: &Profile<'_>) -> Result<()> {
    let n_types = p.sample_types.len();
    if p.samples.is_empty() {
        return Ok(());
    }
    if n_types == 0 {
        return malformed(format!("{} samples but no sample types", p.samples.len()));
    }
    for (i, s) in p.samples.iter().enumerate() {
        if s.values.len() != n_types {
            return malformed(format!(
                "sample {i} has {} values, expected {n_types} sample types",
                s.values.len()
            ));
        }
    }
    Ok(())
}

/// The ids of one table: a bitmap when they are small, as they nearly always are, else a set.
enum IdSet {
    Dense(Vec<bool>),
    Sparse(FxHashSet<u64>),
}

impl IdSet {
    fn contains(&self, id: u64) -> bool {
        match self {
            IdSet::Dense(d) => d.get(id as usize).copied().unwrap_or(false),
            IdSet::Sparse(s) => s.contains(&id),
        }
    }
}

fn unique_ids(kind: &str, ids: impl ExactSizeIterator<Item = u64> + Clone) -> Result<IdSet> {
    if ids.clone().any(|id| id == 0) {
        return malformed(format!("{kind} with the reserved id 0"));
    }
    let max_id = ids.clone().max().unwrap_or(0);
    if max_id <= (ids.len() as u64) * 4 + 64 {
        let mut seen = vec![false; max_id as usize + 1];
        for id in ids {
            if std::mem::replace(&mut seen[id as usize], true) {
                return malformed(format!("duplicate {kind} id {id}"));
            }
        }
        return Ok(IdSet::Dense(seen));
    }
    let mut seen = FxHashSet::with_capacity_and_hasher(ids.len(), Default::default());
    for id in ids {
        if !seen.insert(id) {
            return malformed(format!("duplicate {kind} id {id}"));
        }
    }
    Ok(IdSet::Sparse(seen))
}

fn resolved(
    holder: &str,
    kind: &str,
    used: impl Iterator<Item = u64>,
    known: &IdSet,
) -> Result<()> {
    // The smallest missing id is named, so the message does not depend on the order.
    let missing = used.filter(|&id| !known.contains(id)).min();
    match missing {
        Some(id) => malformed(format!(
            "{holder} refers to {kind} id {id}, which does not exist"
        )),
        None => Ok(()),
    }
}

/// A column of string indexes is judged on its lowest index if negative, else its highest.
fn column(n: usize, what: &str, indexes: impl Iterator<Item = i64>) -> Result<()> {
    let (mut low, mut high) = (0i64, 0i64);
    for i in indexes {
        low = low.min(i);
        high = high.max(i);
    }
    if low < 0 || high as u64 >= n as u64 {
        let bad = if low < 0 { low } else { high };
        return malformed(format!(
            "{what} string index {bad} out of range (string table has {n} entries)"
        ));
    }
    Ok(())
}

/// What ingest asks of a checked profile, strings resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub time_nanos: i64,
    pub sample_types: Vec<(String, String)>,
    pub period_type: Option<(String, String)>,
    pub signature: String,
    pub samples: usize,
    /// The sum of each sample value column, as `totals`.
    pub totals: Vec<i128>,
    /// No sample carries a non-zero value.
    pub empty: bool,
    /// The bytes hold fields the checks skipped (unknown, or of an unexpected wire type).
    pub skipped_fields: bool,
}

/// A stable text key of the period type and sample types: two profiles merge iff theirs are
/// equal, e.g. "cpu/nanoseconds:samples/count,cpu/nanoseconds" (nothing before ":" when the
/// profile has no period type). `p` must be checked: its string indexes are trusted.
pub fn signature(p: &Profile<'_>) -> String {
    let mut out = String::new();
    if let Some((t, u)) = period_type(p) {
        out.push_str(t);
        out.push('/');
        out.push_str(u);
    }
    out.push(':');
    for (i, vt) in p.sample_types.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(p.string(vt.r#type));
        out.push('/');
        out.push_str(p.string(vt.unit));
    }
    out
}

fn period_type<'a>(p: &Profile<'a>) -> Option<(&'a str, &'a str)> {
    match p.period_type {
        Some(vt) if vt.r#type != 0 || vt.unit != 0 => {
            Some((p.string(vt.r#type), p.string(vt.unit)))
        }
        _ => None,
    }
}

/// `p`'s info; `p` must be checked.
pub fn info(p: &Profile<'_>) -> Info {
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    Info {
        time_nanos: p.time_nanos,
        sample_types: p
            .sample_types
            .iter()
            .map(|t| pair(p.string(t.r#type), p.string(t.unit)))
            .collect(),
        period_type: period_type(p).map(|(t, u)| pair(t, u)),
        signature: signature(p),
        samples: p.samples.len(),
        totals: totals(p),
        empty: p.values.iter().all(|&v| v == 0),
        skipped_fields: p.skipped_fields,
    }
}

/// The sum of each sample value column (wide enough never to overflow); values beyond the
/// sample types' count are not counted, so an unchecked profile is fine.
pub fn totals(p: &Profile<'_>) -> Vec<i128> {
    let mut sums = vec![0i128; p.sample_types.len()];
    for s in &p.samples {
        for (acc, v) in sums.iter_mut().zip(p.values_of(s)) {
            *acc += i128::from(*v);
        }
    }
    sums
}
