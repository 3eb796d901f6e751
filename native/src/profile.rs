//! A decoded profile: its tables as flat vectors borrowing the strings of the input, string
//! indexes unresolved, as the wire has them. Decoding follows the protobuf runtimes: the last
//! value of a singular field wins, repeated numbers may be packed or not, a field with an
//! unexpected wire type is an unknown field and, like every unknown field, is skipped.

use std::ops::Range;

use crate::error::{malformed, Result};
use crate::wire::{repeated, Reader, Value, LEN, VARINT};

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueType {
    pub r#type: i64,
    pub unit: i64,
}

#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub locations: Range<usize>, // into Profile::location_ids
    pub values: Range<usize>,    // into Profile::values
    pub labels: Range<usize>,    // into Profile::labels
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    pub key: i64,
    pub str: i64,
    pub num: i64,
    pub num_unit: i64,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub id: u64,
    pub memory_start: u64,
    pub memory_limit: u64,
    pub file_offset: u64,
    pub filename: i64,
    pub build_id: i64,
    pub has_functions: bool,
    pub has_filenames: bool,
    pub has_line_numbers: bool,
    pub has_inline_frames: bool,
}

#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub id: u64,
    pub mapping_id: u64,
    pub address: u64,
    pub lines: Range<usize>, // into Profile::lines
    pub is_folded: bool,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    pub function_id: u64,
    pub line: i64,
    pub column: i64,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    pub id: u64,
    pub name: i64,
    pub system_name: i64,
    pub filename: i64,
    pub start_line: i64,
}

#[derive(Default, Debug, PartialEq, Eq)]
pub struct Profile<'a> {
    pub sample_types: Vec<ValueType>,
    pub samples: Vec<Sample>,
    pub mappings: Vec<Mapping>,
    pub locations: Vec<Location>,
    pub functions: Vec<Function>,
    pub strings: Vec<&'a str>,
    pub drop_frames: i64,
    pub keep_frames: i64,
    pub time_nanos: i64,
    pub duration_nanos: i64,
    pub period_type: Option<ValueType>,
    pub period: i64,
    pub comments: Vec<i64>,
    pub default_sample_type: i64,
    pub doc_url: i64,
    pub location_ids: Vec<u64>,
    pub values: Vec<i64>,
    pub labels: Vec<Label>,
    pub lines: Vec<Line>,
    /// Some field was skipped: unknown, or of an unexpected wire type.
    pub skipped_fields: bool,
}

/// The varint of a singular scalar field, or None for a value of another wire type.
fn scalar(wire: u8, value: Value<'_>) -> Option<u64> {
    match (wire, value) {
        (VARINT, Value::Varint(v)) => Some(v),
        _ => None,
    }
}

fn message<'a>(wire: u8, value: Value<'a>) -> Option<&'a [u8]> {
    match (wire, value) {
        (LEN, Value::Bytes(b)) => Some(b),
        _ => None,
    }
}

/// Sets `$dst` from a singular varint field; any other wire type is a skipped field.
macro_rules! set {
    ($skipped:expr, $dst:expr, $wire:expr, $value:expr, $conv:expr) => {
        match scalar($wire, $value) {
            Some(v) => $dst = $conv(v),
            None => *$skipped = true,
        }
    };
}

fn i64_of(v: u64) -> i64 {
    v as i64
}
fn u64_of(v: u64) -> u64 {
    v
}
fn bool_of(v: u64) -> bool {
    v != 0
}

impl<'a> Profile<'a> {
    /// Decodes the protobuf bytes of a profile (no validity checks: see `check`).
    pub fn decode(buf: &'a [u8]) -> Result<Profile<'a>> {
        let mut p = Profile::default();
        p.reserve(buf);
        let mut r = Reader::new(buf);
        let mut numbers = Vec::new();
        let mut skipped = false;
        while !r.done() {
            let (field, wire, value) = r.field()?;
            match field {
                1 => {
                    if let Some(b) = message(wire, value) {
                        let mut vt = ValueType::default();
                        decode_value_type(b, &mut vt, &mut skipped)?;
                        p.sample_types.push(vt);
                    } else {
                        skipped = true;
                    }
                }
                2 => {
                    if let Some(b) = message(wire, value) {
                        p.decode_sample(b, &mut numbers, &mut skipped)?;
                    } else {
                        skipped = true;
                    }
                }
                3 => {
                    if let Some(b) = message(wire, value) {
                        p.mappings.push(decode_mapping(b, &mut skipped)?);
                    } else {
                        skipped = true;
                    }
                }
                4 => {
                    if let Some(b) = message(wire, value) {
                        p.decode_location(b, &mut skipped)?;
                    } else {
                        skipped = true;
                    }
                }
                5 => {
                    if let Some(b) = message(wire, value) {
                        p.functions.push(decode_function(b, &mut skipped)?);
                    } else {
                        skipped = true;
                    }
                }
                6 => {
                    if let Some(b) = message(wire, value) {
                        match std::str::from_utf8(b) {
                            Ok(s) => p.strings.push(s),
                            Err(_) => {
                                return malformed("protobuf: string_table holds invalid UTF-8")
                            }
                        }
                    } else {
                        skipped = true;
                    }
                }
                7 => set!(&mut skipped, p.drop_frames, wire, value, i64_of),
                8 => set!(&mut skipped, p.keep_frames, wire, value, i64_of),
                9 => set!(&mut skipped, p.time_nanos, wire, value, i64_of),
                10 => set!(&mut skipped, p.duration_nanos, wire, value, i64_of),
                11 => {
                    if let Some(b) = message(wire, value) {
                        // A repeated singular message merges into the one before it.
                        let vt = p.period_type.get_or_insert_with(ValueType::default);
                        decode_value_type(b, vt, &mut skipped)?;
                    } else {
                        skipped = true;
                    }
                }
                12 => set!(&mut skipped, p.period, wire, value, i64_of),
                13 => {
                    if wire == VARINT || wire == LEN {
                        numbers.clear();
                        repeated(value, &mut numbers)?;
                        p.comments.extend(numbers.iter().map(|&v| v as i64));
                    } else {
                        skipped = true;
                    }
                }
                14 => set!(&mut skipped, p.default_sample_type, wire, value, i64_of),
                15 => set!(&mut skipped, p.doc_url, wire, value, i64_of),
                _ => skipped = true,
            }
        }
        p.skipped_fields |= skipped;
        Ok(p)
    }

    /// Sizes the tables from one pass over the top-level fields, so that decoding does not grow
    /// them by doubling (and copying). Best effort: it stops at the first malformed field, which
    /// decoding then reports.
    fn reserve(&mut self, buf: &[u8]) {
        let (
            mut samples,
            mut sample_bytes,
            mut mappings,
            mut locations,
            mut functions,
            mut strings,
        ) = (0, 0, 0, 0, 0, 0);
        let mut r = Reader::new(buf);
        while !r.done() {
            let Ok((field, _, value)) = r.field() else {
                break;
            };
            let Value::Bytes(b) = value else { continue };
            match field {
                2 => {
                    samples += 1;
                    sample_bytes += b.len();
                }
                3 => mappings += 1,
                4 => locations += 1,
                5 => functions += 1,
                6 => strings += 1,
                _ => {}
            }
        }
        self.samples.reserve(samples);
        // A location id takes one to three bytes of a sample, whose values and tags take more.
        self.location_ids.reserve(sample_bytes / 2);
        self.values.reserve(samples * 2);
        self.mappings.reserve(mappings);
        self.locations.reserve(locations);
        // Most locations have one line; inlined frames add a few.
        self.lines.reserve(locations + locations / 4);
        self.functions.reserve(functions);
        self.strings.reserve(strings);
    }

    fn decode_sample(
        &mut self,
        buf: &[u8],
        numbers: &mut Vec<u64>,
        skipped: &mut bool,
    ) -> Result<()> {
        let (l0, v0, b0) = (
            self.location_ids.len(),
            self.values.len(),
            self.labels.len(),
        );
        let mut r = Reader::new(buf);
        while !r.done() {
            let (field, wire, value) = r.field()?;
            match (field, wire) {
                (1, VARINT | LEN) => repeated(value, &mut self.location_ids)?,
                (2, VARINT | LEN) => {
                    numbers.clear();
                    repeated(value, numbers)?;
                    self.values.extend(numbers.iter().map(|&v| v as i64));
                }
                (3, LEN) => {
                    if let Value::Bytes(b) = value {
                        self.labels.push(decode_label(b, skipped)?);
                    }
                }
                _ => *skipped = true,
            }
        }
        self.samples.push(Sample {
            locations: l0..self.location_ids.len(),
            values: v0..self.values.len(),
            labels: b0..self.labels.len(),
        });
        Ok(())
    }

    fn decode_location(&mut self, buf: &[u8], skipped: &mut bool) -> Result<()> {
        let mut loc = Location {
            lines: self.lines.len()..self.lines.len(),
            ..Default::default()
        };
        let mut r = Reader::new(buf);
        while !r.done() {
            let (field, wire, value) = r.field()?;
            match field {
                1 => set!(skipped, loc.id, wire, value, u64_of),
                2 => set!(skipped, loc.mapping_id, wire, value, u64_of),
                3 => set!(skipped, loc.address, wire, value, u64_of),
                4 => match message(wire, value) {
                    Some(b) => self.lines.push(decode_line(b, skipped)?),
                    None => *skipped = true,
                },
                5 => set!(skipped, loc.is_folded, wire, value, bool_of),
                _ => *skipped = true,
            }
        }
        loc.lines.end = self.lines.len();
        self.locations.push(loc);
        Ok(())
    }

    pub fn string(&self, i: i64) -> &'a str {
        self.strings[i as usize]
    }

    pub fn location_ids_of(&self, s: &Sample) -> &[u64] {
        &self.location_ids[s.locations.clone()]
    }

    pub fn values_of(&self, s: &Sample) -> &[i64] {
        &self.values[s.values.clone()]
    }

    pub fn labels_of(&self, s: &Sample) -> &[Label] {
        &self.labels[s.labels.clone()]
    }

    pub fn lines_of(&self, l: &Location) -> &[Line] {
        &self.lines[l.lines.clone()]
    }
}

fn decode_value_type(buf: &[u8], vt: &mut ValueType, skipped: &mut bool) -> Result<()> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire, value) = r.field()?;
        match field {
            1 => set!(skipped, vt.r#type, wire, value, i64_of),
            2 => set!(skipped, vt.unit, wire, value, i64_of),
            _ => *skipped = true,
        }
    }
    Ok(())
}

fn decode_label(buf: &[u8], skipped: &mut bool) -> Result<Label> {
    let mut l = Label::default();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire, value) = r.field()?;
        match field {
            1 => set!(skipped, l.key, wire, value, i64_of),
            2 => set!(skipped, l.str, wire, value, i64_of),
            3 => set!(skipped, l.num, wire, value, i64_of),
            4 => set!(skipped, l.num_unit, wire, value, i64_of),
            _ => *skipped = true,
        }
    }
    Ok(l)
}

fn decode_mapping(buf: &[u8], skipped: &mut bool) -> Result<Mapping> {
    let mut m = Mapping::default();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire, value) = r.field()?;
        match field {
            1 => set!(skipped, m.id, wire, value, u64_of),
            2 => set!(skipped, m.memory_start, wire, value, u64_of),
            3 => set!(skipped, m.memory_limit, wire, value, u64_of),
            4 => set!(skipped, m.file_offset, wire, value, u64_of),
            5 => set!(skipped, m.filename, wire, value, i64_of),
            6 => set!(skipped, m.build_id, wire, value, i64_of),
            7 => set!(skipped, m.has_functions, wire, value, bool_of),
            8 => set!(skipped, m.has_filenames, wire, value, bool_of),
            9 => set!(skipped, m.has_line_numbers, wire, value, bool_of),
            10 => set!(skipped, m.has_inline_frames, wire, value, bool_of),
            _ => *skipped = true,
        }
    }
    Ok(m)
}

fn decode_line(buf: &[u8], skipped: &mut bool) -> Result<Line> {
    let mut l = Line::default();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire, value) = r.field()?;
        match field {
            1 => set!(skipped, l.function_id, wire, value, u64_of),
            2 => set!(skipped, l.line, wire, value, i64_of),
            3 => set!(skipped, l.column, wire, value, i64_of),
            _ => *skipped = true,
        }
    }
    Ok(l)
}

fn decode_function(buf: &[u8], skipped: &mut bool) -> Result<Function> {
    let mut f = Function::default();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire, value) = r.field()?;
        match field {
            1 => set!(skipped, f.id, wire, value, u64_of),
            2 => set!(skipped, f.name, wire, value, i64_of),
            3 => set!(skipped, f.system_name, wire, value, i64_of),
            4 => set!(skipped, f.filename, wire, value, i64_of),
            5 => set!(skipped, f.start_line, wire, value, i64_of),
            _ => *skipped = true,
        }
    }
    Ok(f)
}
