//! The ways a profile is refused; the Python layer turns each into its exception type.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not a valid profile; the text is the reason shown to the uploader.
    Malformed(String),
    /// Larger than the limit once decompressed (the limit in bytes).
    TooLarge(usize),
    /// Period types or sample types differ: the two signatures.
    Incompatible(String, String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub fn malformed<T>(reason: impl Into<String>) -> Result<T> {
    Err(Error::Malformed(reason.into()))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(reason) => f.write_str(reason),
            Error::TooLarge(limit) => {
                write!(f, "profile is larger than {limit} bytes once decompressed")
            }
            Error::Incompatible(a, b) => write!(f, "incompatible profiles: {a:?} and {b:?}"),
        }
    }
}

/// Runs `f`, turning a panic into MalformedProfile: a bug in the core must not crash the process
/// that called it.
pub fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::Malformed(format!(
            "internal error while reading the profile: {why}"
        )))
    })
}
