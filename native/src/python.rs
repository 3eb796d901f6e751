//! The `shared.pprof._native` module. Every function that reads or writes a profile releases
//! the GIL, so the threads of one process use every core; a panic becomes MalformedProfile.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::{guarded, Error};
use crate::{flame, gz, merge, profile};

pub(crate) fn raise(py: Python<'_>, e: Error) -> PyErr {
    let errors = match py.import("shared.pprof.errors") {
        Ok(m) => m,
        Err(err) => return err,
    };
    let made = match &e {
        Error::Malformed(reason) => errors
            .getattr("MalformedProfile")
            .and_then(|c| c.call1((reason,))),
        Error::TooLarge(limit) => errors
            .getattr("ProfileTooLarge")
            .and_then(|c| c.call1((*limit,))),
        Error::Incompatible(a, b) => errors
            .getattr("IncompatibleProfiles")
            .and_then(|c| c.call1((a, b))),
    };
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// The protobuf bytes of `data`: gunzipped (every member) when it starts with gzip's magic,
/// stopped at `limit` while inflating; None when `data` is raw protobuf within the limit.
#[pyfunction]
fn inflate(py: Python<'_>, data: &[u8], limit: usize) -> PyResult<Option<Py<PyBytes>>> {
    let raw = py
        .allow_threads(|| guarded(|| gz::inflate(data, limit).map(|r| r.into_owned_if_borrowed())));
    match raw.map_err(|e| raise(py, e))? {
        Some(v) => Ok(Some(PyBytes::new(py, &v).unbind())),
        None => Ok(None),
    }
}

trait OwnedIfBorrowed {
    fn into_owned_if_borrowed(self) -> Option<Vec<u8>>;
}

impl OwnedIfBorrowed for std::borrow::Cow<'_, [u8]> {
    fn into_owned_if_borrowed(self) -> Option<Vec<u8>> {
        match self {
            std::borrow::Cow::Borrowed(_) => None,
            std::borrow::Cow::Owned(v) => Some(v),
        }
    }
}

pub(crate) type InfoTuple = (
    i64,
    Vec<(String, String)>,
    Option<(String, String)>,
    String,
    usize,
    Vec<i128>,
    bool,
    bool,
    usize,
);

pub(crate) fn info_tuple(i: crate::check::Info, size: usize) -> InfoTuple {
    (i.time_nanos, i.sample_types, i.period_type, i.signature, i.samples, i.totals, i.empty, i.skipped_fields, size)
}

/// Inflates, decodes and checks `data`; returns (the inflated bytes when `data` was gzip and
/// `inflated` is true, else None; (time_nanos, sample types, period type, signature, sample
/// count, totals, empty, whether fields were skipped, protobuf size)).
#[pyfunction]
#[pyo3(signature = (data, limit, inflated = true))]
fn check(
    py: Python<'_>,
    data: &[u8],
    limit: usize,
    inflated: bool,
) -> PyResult<(Option<Py<PyBytes>>, InfoTuple)> {
    let done = py.allow_threads(|| {
        guarded(|| {
            crate::checked(data, limit).map(|(raw, i)| {
                let size = raw.len();
                (
                    if inflated {
                        raw.into_owned_if_borrowed()
                    } else {
                        None
                    },
                    i,
                    size,
                )
            })
        })
    });
    let (raw, i, size) = done.map_err(|e| raise(py, e))?;
    let raw = raw.map(|v| PyBytes::new(py, &v).unbind());
    Ok((raw, info_tuple(i, size)))
}

/// The sum of each sample value column of the raw protobuf profile `raw`.
#[pyfunction]
fn totals(py: Python<'_>, raw: &[u8]) -> PyResult<Vec<i128>> {
    py.allow_threads(|| guarded(|| profile::Profile::decode(raw).map(|p| crate::check::totals(&p))))
        .map_err(|e| raise(py, e))
}

/// gzip of `raw` at `level`, mtime 0.
#[pyfunction]
fn compress(py: Python<'_>, raw: &[u8], level: u32) -> Py<PyBytes> {
    let out = py.allow_threads(|| gz::compress(raw, level));
    PyBytes::new(py, &out).unbind()
}

type FlameTuple = (
    Vec<(String, String)>,
    usize,
    Vec<String>,
    Vec<u32>,
    Vec<u32>,
    Vec<Vec<i64>>,
    Vec<Vec<i64>>,
    usize,
    Vec<(u32, Vec<i64>, Vec<i64>)>,
);

/// Sums beyond i64 (292 years of CPU time) saturate, so every value converts to a Python int cheaply.
fn clamp(v: &[i128]) -> Vec<i64> {
    v.iter()
        .map(|&x| i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX }))
        .collect()
}

/// The flame graph of the raw protobuf profile `raw` cut to `budget` nodes, with its top table
/// (see flame.rs); with `base`, a diff: the base is side 0 and `raw` side 1. Returns (sample types
/// of `raw`, the column shown, names, then per node: name, depth; per side then node: totals,
/// selfs; the nodes folded; top rows (name, flat per side, cum per side)). ValueError for a
/// sample type the profiles lack.
#[pyfunction]
#[pyo3(signature = (raw, sample_type, budget, top_rows, base = None))]
fn flame_tree(
    py: Python<'_>,
    raw: &[u8],
    sample_type: &str,
    budget: usize,
    top_rows: usize,
    base: Option<&[u8]>,
) -> PyResult<FlameTuple> {
    let done = py.allow_threads(|| {
        guarded(|| {
            let target = profile::Profile::decode(raw)?;
            let column = match flame::column(&target, sample_type) {
                Ok(c) => c,
                Err(why) => return Ok(Err(why)),
            };
            let types: Vec<(String, String)> = target
                .sample_types
                .iter()
                .map(|t| {
                    (
                        target.string(t.r#type).to_string(),
                        target.string(t.unit).to_string(),
                    )
                })
                .collect();
            let mut tree = flame::Tree::new(if base.is_some() { 2 } else { 1 });
            if let Some(base) = base {
                let b = profile::Profile::decode(base)?;
                match flame::column(&b, &types[column].0) {
                    Ok(bc) => tree.add(&b, bc, 0),
                    Err(why) => return Ok(Err(format!("the base: {why}"))),
                }
            }
            tree.add(&target, column, if base.is_some() { 1 } else { 0 });
            let cut = tree.cut(budget, top_rows);
            let top = cut
                .top
                .iter()
                .map(|(n, f, c)| (*n, clamp(f), clamp(c)))
                .collect();
            Ok(Ok((
                types,
                column,
                cut.names,
                cut.name,
                cut.depth,
                cut.total.iter().map(|v| clamp(v)).collect(),
                cut.self_.iter().map(|v| clamp(v)).collect(),
                cut.folded,
                top,
            )))
        })
    });
    match done.map_err(|e| raise(py, e))? {
        Ok(out) => Ok(out),
        Err(why) => Err(PyValueError::new_err(why)),
    }
}

/// A streaming merge: add profiles one at a time, then encode or write the result.
#[pyclass(name = "Merger", module = "shared.pprof._native")]
struct PyMerger {
    inner: merge::Merger,
}

#[pymethods]
impl PyMerger {
    #[new]
    fn new() -> Self {
        PyMerger {
            inner: merge::Merger::new(),
        }
    }

    /// Folds in one profile, gzip or raw protobuf, after the checks `check` makes.
    fn add(&mut self, py: Python<'_>, data: &[u8], limit: usize) -> PyResult<()> {
        let inner = &mut self.inner;
        py.allow_threads(|| guarded(|| inner.add_bytes(data, limit)))
            .map_err(|e| raise(py, e))
    }

    /// How many profiles were added.
    #[getter]
    fn profiles(&self) -> usize {
        self.inner.profiles()
    }

    /// The merged profile as raw protobuf.
    fn encode(&self, py: Python<'_>) -> PyResult<Py<PyBytes>> {
        let inner = &self.inner;
        let raw = py.allow_threads(|| guarded(|| Ok(inner.encode())));
        match raw.map_err(|e| raise(py, e))? {
            Some(v) => Ok(PyBytes::new(py, &v).unbind()),
            None => Err(PyValueError::new_err("no profiles to merge")),
        }
    }

    /// The merged profile as gzip pprof at `level`.
    fn write(&self, py: Python<'_>, level: u32) -> PyResult<Py<PyBytes>> {
        let inner = &self.inner;
        let out = py
            .allow_threads(|| guarded(|| Ok(inner.encode().map(|raw| gz::compress(&raw, level)))));
        match out.map_err(|e| raise(py, e))? {
            Some(v) => Ok(PyBytes::new(py, &v).unbind()),
            None => Err(PyValueError::new_err("no profiles to merge")),
        }
    }
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(inflate, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(totals, m)?)?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(flame_tree, m)?)?;
    m.add_class::<PyMerger>()?;
    m.add_class::<crate::http::HttpServer>()?;
    m.add_class::<crate::http::PendingRequest>()?;
    Ok(())
}
