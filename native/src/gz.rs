//! gzip as pprof uses it: every member of the input inflated, stopped at a size limit while
//! inflating (a bomb never grows past one slice over the limit), and written with mtime 0.
//!
//! Two inflaters: libdeflate's, whole-buffer and about twice as fast, takes the common case (one
//! member whose trailer puts its size within the limit); anything else, and any input it
//! refuses, goes through zlib-rs's streaming one, which holds the limit while inflating and
//! gives every reason an input is refused. libdeflate writes too: faster than zlib at each level
//! and a little smaller.

use std::borrow::Cow;
use std::ptr::NonNull;

use flate2::{Decompress, FlushDecompress, Status};

use crate::error::{malformed, Error, Result};

pub const MAGIC: [u8; 2] = [0x1f, 0x8b];
// The least the output buffer grows by.
const SLICE: usize = 256 << 10;

/// The protobuf bytes of `data`: itself when it is not gzip, else every member inflated.
pub fn inflate(data: &[u8], limit: usize) -> Result<Cow<'_, [u8]>> {
    if data.is_empty() {
        return malformed("empty");
    }
    if !data.starts_with(&MAGIC) {
        if data.len() > limit {
            return Err(Error::TooLarge(limit));
        }
        return Ok(Cow::Borrowed(data));
    }
    if let Some(out) = one_member(data, limit) {
        return Ok(Cow::Owned(out));
    }
    let mut out = Vec::with_capacity((data.len() * 4).min(limit.saturating_add(1)).min(64 << 20));
    let mut rest = data;
    while !rest.is_empty() {
        if !rest.starts_with(&MAGIC) {
            return malformed("gzip: trailing data after the last member");
        }
        rest = member(rest, &mut out, limit)?;
    }
    Ok(Cow::Owned(out))
}

/// `data` inflated by libdeflate when it is one member whose trailer gives a size within the
/// limit and the inflated bytes match that size and the CRC; None for anything else (several
/// members, a trailer that lies, bad data), which the streaming inflater then reads or refuses.
fn one_member(data: &[u8], limit: usize) -> Option<Vec<u8>> {
    let body = header_len(data).ok()?;
    let trailer = data.len().checked_sub(8).filter(|&t| t >= body)?;
    let crc = u32::from_le_bytes(data[trailer..trailer + 4].try_into().unwrap());
    let size = u32::from_le_bytes(data[trailer + 4..].try_into().unwrap()) as usize;
    if size > limit {
        return None;
    }
    let mut out = Vec::with_capacity(size);
    let (consumed, produced) =
        Inflater::new()?.inflate(&data[body..trailer], out.spare_capacity_mut())?;
    if consumed != trailer - body || produced != size {
        return None;
    }
    // SAFETY: libdeflate wrote the first `produced` bytes of the spare capacity.
    unsafe { out.set_len(produced) };
    (crc32fast::hash(&out) == crc).then_some(out)
}

/// A libdeflate decompressor (whole buffers only).
struct Inflater(NonNull<libdeflate_sys::libdeflate_decompressor>);

impl Inflater {
    fn new() -> Option<Self> {
        // SAFETY: allocates a decompressor, freed by Drop; null only when out of memory.
        NonNull::new(unsafe { libdeflate_sys::libdeflate_alloc_decompressor() }).map(Inflater)
    }

    /// Inflates the raw deflate stream at the start of `input` into `out`: (bytes of input it
    /// took, bytes written), or None if the data is bad or does not fit.
    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut [std::mem::MaybeUninit<u8>],
    ) -> Option<(usize, usize)> {
        let (mut consumed, mut produced) = (0usize, 0usize);
        // SAFETY: the pointers and lengths are those of live slices; libdeflate reads `input`,
        // writes at most `out.len()` bytes into `out` and never reads them.
        let result = unsafe {
            libdeflate_sys::libdeflate_deflate_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut consumed,
                &mut produced,
            )
        };
        (result == libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS)
            .then_some((consumed, produced))
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor and freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// Inflates the gzip member at the start of `data` into `out`; returns the input after it.
fn member<'a>(data: &'a [u8], out: &mut Vec<u8>, limit: usize) -> Result<&'a [u8]> {
    let body = header_len(data)?;
    let start = out.len();
    let mut inflater = Decompress::new(false);
    let mut input = &data[body..];
    let cap = limit.saturating_add(1);
    loop {
        // Inflating writes into the spare capacity only, and the capacity never passes the
        // limit by more than a byte, so a bomb stops there. It grows geometrically meanwhile.
        if out.capacity() == out.len() {
            let want = (out.len() * 2).max(out.len() + SLICE).min(cap);
            if want <= out.len() {
                return Err(Error::TooLarge(limit));
            }
            out.reserve_exact(want - out.len());
        }
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        let status = inflater.decompress_vec(input, out, FlushDecompress::None);
        let consumed = (inflater.total_in() - before_in) as usize;
        let produced = (inflater.total_out() - before_out) as usize;
        input = &input[consumed..];
        if out.len() > limit {
            return Err(Error::TooLarge(limit));
        }
        match status {
            Ok(Status::StreamEnd) => break,
            Ok(_) if consumed == 0 && produced == 0 && out.capacity() > out.len() => {
                return malformed("gzip: truncated stream")
            }
            Ok(_) => {}
            Err(e) => return malformed(format!("gzip: invalid deflate data ({e})")),
        }
    }
    if input.len() < 8 {
        return malformed("gzip: truncated stream");
    }
    let crc = u32::from_le_bytes(input[0..4].try_into().unwrap());
    let size = u32::from_le_bytes(input[4..8].try_into().unwrap());
    let inflated = &out[start..];
    if crc32fast::hash(inflated) != crc {
        return malformed("gzip: CRC check failed");
    }
    if inflated.len() as u32 != size {
        return malformed("gzip: length check failed");
    }
    Ok(&input[8..])
}

/// The length of the member header at the start of `data` (RFC 1952, section 2.3).
fn header_len(data: &[u8]) -> Result<usize> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let truncated = || malformed("gzip: truncated stream");
    if data.len() < 10 {
        return truncated();
    }
    if data[2] != 8 {
        return malformed(format!("gzip: unknown compression method {}", data[2]));
    }
    let flags = data[3];
    if flags & 0xe0 != 0 {
        return malformed("gzip: reserved header flags set");
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        if data.len() < at + 2 {
            return truncated();
        }
        at += 2 + u16::from_le_bytes([data[at], data[at + 1]]) as usize;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            match data.get(at..).and_then(|d| d.iter().position(|&b| b == 0)) {
                Some(n) => at += n + 1,
                None => return truncated(),
            }
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    if at > data.len() {
        return truncated();
    }
    Ok(at)
}

/// gzip of `raw` at `level` (0-9), mtime 0 so equal profiles give equal bytes.
pub fn compress(raw: &[u8], level: u32) -> Vec<u8> {
    let level =
        libdeflater::CompressionLvl::new(level.min(9) as i32).expect("levels 0-9 are libdeflate's");
    let mut compressor = libdeflater::Compressor::new(level);
    let mut out = vec![0; compressor.gzip_compress_bound(raw.len())];
    let n = compressor
        .gzip_compress(raw, &mut out)
        .expect("the buffer is the bound");
    out.truncate(n);
    out
}
