//! The protobuf wire format, as much of it as pprof needs: reading fields (unknown ones skipped,
//! including groups) and writing them.

use crate::error::{malformed, Result};

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
pub const FIXED32: u8 = 5;

/// A field's value as it is on the wire.
#[derive(Clone, Copy)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed-width numbers and groups: no field of pprof has them, so they are skipped.
    Other,
}

pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

fn bad<T>(what: &str) -> Result<T> {
    malformed(format!("protobuf: {what}"))
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    #[inline]
    pub fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    #[inline(always)]
    pub fn varint(&mut self) -> Result<u64> {
        // Most varints of a profile (tags, ids, string indexes) are one or two bytes.
        let rest = &self.buf[self.at.min(self.buf.len())..];
        if let Some(&b) = rest.first() {
            if b < 0x80 {
                self.at += 1;
                return Ok(u64::from(b));
            }
            if let Some(&c) = rest.get(1) {
                if c < 0x80 {
                    self.at += 2;
                    return Ok(u64::from(b & 0x7f) | (u64::from(c) << 7));
                }
            }
        }
        self.long_varint()
    }

    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.at) else {
                return bad("truncated varint");
            };
            self.at += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        bad("varint longer than 10 bytes")
    }

    #[inline(always)]
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let left = (self.buf.len() - self.at) as u64;
        if n > left {
            return bad("truncated field");
        }
        let out = &self.buf[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(out)
    }

    #[inline(always)]
    fn tag(&mut self) -> Result<(u32, u8)> {
        let tag = self.varint()?;
        let field = tag >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return bad("invalid field number");
        }
        Ok((field as u32, (tag & 7) as u8))
    }

    /// The next field: (number, wire type, value). Inlined into each decoder's loop, so the
    /// value is matched where it is made rather than returned through memory.
    #[inline(always)]
    pub fn field(&mut self) -> Result<(u32, u8, Value<'a>)> {
        let (field, wire) = self.tag()?;
        let value = match wire {
            VARINT => Value::Varint(self.varint()?),
            FIXED64 => {
                self.take(8)?;
                Value::Other
            }
            LEN => {
                let n = self.varint()?;
                Value::Bytes(self.take(n)?)
            }
            FIXED32 => {
                self.take(4)?;
                Value::Other
            }
            START_GROUP => {
                self.skip_group(field)?;
                Value::Other
            }
            END_GROUP => return bad("unexpected end of group"),
            _ => return bad("invalid wire type"),
        };
        Ok((field, wire, value))
    }

    /// Skips to the end of the group `field` opened, nested groups included, without recursion.
    fn skip_group(&mut self, field: u32) -> Result<()> {
        let mut open = vec![field];
        while let Some(&inner) = open.last() {
            if self.done() {
                return bad("unterminated group");
            }
            let (f, wire) = self.tag()?;
            match wire {
                VARINT => {
                    self.varint()?;
                }
                FIXED64 => {
                    self.take(8)?;
                }
                LEN => {
                    let n = self.varint()?;
                    self.take(n)?;
                }
                FIXED32 => {
                    self.take(4)?;
                }
                START_GROUP => {
                    if open.len() >= 100 {
                        return bad("groups nested too deeply");
                    }
                    open.push(f);
                }
                END_GROUP if f == inner => {
                    open.pop();
                }
                END_GROUP => return bad("mismatched end of group"),
                _ => return bad("invalid wire type"),
            }
        }
        Ok(())
    }
}

/// Appends the numbers of a repeated varint field, packed (`Bytes`) or one per field.
#[inline]
pub fn repeated(value: Value<'_>, out: &mut Vec<u64>) -> Result<()> {
    match value {
        Value::Varint(v) => out.push(v),
        Value::Bytes(b) => {
            let mut r = Reader::new(b);
            while !r.done() {
                out.push(r.varint()?);
            }
        }
        Value::Other => {}
    }
    Ok(())
}

// Writing. Zero scalars are left out (proto3), as every protobuf runtime does.

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

pub fn put_u64(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_tag(out, field, VARINT);
        put_varint(out, v);
    }
}

pub fn put_i64(out: &mut Vec<u8>, field: u32, v: i64) {
    put_u64(out, field, v as u64);
}

pub fn put_bool(out: &mut Vec<u8>, field: u32, v: bool) {
    put_u64(out, field, u64::from(v));
}

pub fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A packed repeated varint field; nothing when empty.
pub fn put_packed(
    out: &mut Vec<u8>,
    field: u32,
    values: impl Iterator<Item = u64> + Clone,
    scratch: &mut Vec<u8>,
) {
    scratch.clear();
    for v in values {
        put_varint(scratch, v);
    }
    if !scratch.is_empty() {
        put_bytes(out, field, scratch);
    }
}
