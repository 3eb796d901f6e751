//! gzip as pprof uses it: every member of the input inflated, stopped at a size limit while
//! inflating (a bomb never grows past one slice over the limit), and written with mtime 0.

use std::borrow::Cow;
use std::io::Write;

use flate2::{Compression, Decompress, FlushDecompress, GzBuilder, Status};

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
    // zlib-rs's level 1 is a quicker strategy than zlib's level 1 and a quarter larger; its
    // level 2 is zlib's level 1 in size, and still faster, so that is what "fast" means here.
    let level = if level == 1 { 2 } else { level };
    let mut enc = GzBuilder::new().mtime(0).write(
        Vec::with_capacity(raw.len() / 3 + 64),
        Compression::new(level.min(9)),
    );
    enc.write_all(raw).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}
