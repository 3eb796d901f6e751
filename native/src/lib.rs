//! The pprof core of profefe-py: bounded gunzip, protobuf decoding with pprof's validity checks,
//! a streaming merge that writes gzip pprof, and flame graph trees. Pure Rust; the Python module
//! (`python` feature) wraps it, releasing the GIL for every call that reads or writes a profile,
//! and holds `serve`'s HTTP server (http.rs), which checks uploads with it as they are read.

pub mod check;
pub mod error;
pub mod flame;
pub mod gz;
pub mod merge;
pub mod profile;
pub mod wire;

#[cfg(feature = "python")]
mod http;
#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};

// The hash of the crate's sources (the Makefile sets it): cargo compiles a crate again when a
// variable it reads changes, so a new clone's sources, given an old time, are judged by content.
const _SOURCES: Option<&str> = option_env!("PROFEFE_NATIVE_SOURCES");

/// Inflates, decodes and checks `data`: the profile's protobuf bytes (borrowed when not gzip).
pub fn checked(data: &[u8], limit: usize) -> Result<(std::borrow::Cow<'_, [u8]>, check::Info)> {
    let raw = gz::inflate(data, limit)?;
    if raw.is_empty() {
        return error::malformed("empty");
    }
    let info = {
        let p = profile::Profile::decode(&raw)?;
        check::check(&p)?;
        check::info(&p)
    };
    Ok((raw, info))
}
