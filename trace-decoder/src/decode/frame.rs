//! The defmt wire format, read without trusting it: rzcobs frames, and the
//! arguments of a frame read by the types of its format string (looked up in the
//! loader ELF's table, [`super::table`]).
//!
//! defmt-decoder reads the same format, but keeps the decoded arguments private (a
//! decoder gets display strings only) and sizes its buffers from counts taken from
//! the frame, so one short hostile frame can make it allocate gigabytes. Here every
//! count is checked against the bytes that remain before anything is allocated,
//! and the arguments come out typed.

use defmt_parser::{DisplayHint, Fragment, ParserMode, Type};

pub use super::table::{Entry, Table, Tag};

/// The longest frame the decoder accepts, decoded: far above the loader's largest
/// (a `CommandLine` with a long command line), small enough that a stream without
/// frame ends cannot make the decoder hold much.
pub const MAX_FRAME: usize = 64 * 1024;

/// Why a frame does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The rzcobs encoding is broken.
    Encoding,
    /// The frame ends before its arguments do.
    Short,
    /// The table index names no log statement.
    UnknownIndex(u16),
    /// A count in the frame cannot fit the bytes that remain.
    ImpossibleCount,
    /// A value that cannot be (a bool other than 0 or 1, a string that is not UTF-8,
    /// an interned string index that names none).
    BadValue,
    /// A format string that does not parse, or uses a type this decoder cannot read.
    UnreadableFormat,
    /// Nesting deeper than any format the loader sends.
    TooDeep,
    /// Longer than [`MAX_FRAME`].
    TooLong,
}

impl FrameError {
    /// What went wrong, for a warning (`a count that cannot fit its bytes`).
    pub fn describe(self) -> String {
        match self {
            FrameError::Encoding => "broken rzcobs encoding".to_string(),
            FrameError::Short => "it ends before its arguments".to_string(),
            FrameError::UnknownIndex(index) => {
                format!("table index {index} names no log statement")
            }
            FrameError::ImpossibleCount => "a count that cannot fit its bytes".to_string(),
            FrameError::BadValue => "a value that cannot be".to_string(),
            FrameError::UnreadableFormat => "a format this decoder cannot read".to_string(),
            FrameError::TooDeep => "formats nested too deep".to_string(),
            FrameError::TooLong => format!("longer than {MAX_FRAME} bytes"),
        }
    }
}

/// Decodes one rzcobs frame (without its closing `00`).
///
/// rzcobs is read from the end: a group byte `0x01..=0x7f` stands for seven bytes,
/// its bit i set where the i-th of them is a zero (the others follow in the stream);
/// `0x80 | n` stands for `n + 7` non-zero bytes and then one zero; `0xff` for 134
/// non-zero bytes. The last group of a frame may stand for more zeros than the frame
/// has: they come out at the end, where a reader of defmt arguments never looks.
pub fn rzcobs_decode(encoded: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(encoded.len() * 8 / 7 + 1);
    let mut bytes = encoded.iter().rev().copied();
    while let Some(group) = bytes.next() {
        match group {
            0 => return Err(FrameError::Encoding),
            0x01..=0x7f => {
                for bit in (0..7).rev() {
                    if group & (1 << bit) == 0 {
                        out.push(bytes.next().ok_or(FrameError::Encoding)?);
                    } else {
                        out.push(0);
                    }
                }
            }
            0x80..=0xfe => {
                out.push(0);
                for _ in 0..(group & 0x7f) + 7 {
                    out.push(bytes.next().ok_or(FrameError::Encoding)?);
                }
            }
            0xff => {
                for _ in 0..134 {
                    out.push(bytes.next().ok_or(FrameError::Encoding)?);
                }
            }
        }
        if out.len() > MAX_FRAME {
            return Err(FrameError::TooLong);
        }
    }
    out.reverse();
    Ok(out)
}

/// Encodes `data` as one rzcobs frame (without the closing `00`), as the loader's
/// defmt logger does: for tests and tools that write streams.
///
/// Bytes are taken seven at a time: a group with a zero in it becomes its non-zero
/// bytes and a bitmap of its zeros; seven non-zero bytes open a run that goes on to
/// the next zero (`0x80 | n`, n + 7 bytes) or to 134 bytes (`0xff`).
pub fn rzcobs_encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 7 + 2);
    // Bytes in the current group (0..7) or run (7..134), and the group's zeros.
    let mut run = 0u8;
    let mut zeros = 0u8;
    for &byte in data {
        if run < 7 {
            if byte == 0 {
                zeros |= 1 << run;
            } else {
                out.push(byte);
            }
            run += 1;
            if run == 7 && zeros != 0 {
                out.push(zeros);
                run = 0;
                zeros = 0;
            }
        } else if byte == 0 {
            out.push(0x80 | (run - 7));
            run = 0;
            zeros = 0;
        } else {
            out.push(byte);
            run += 1;
            if run == 134 {
                out.push(0xff);
                run = 0;
                zeros = 0;
            }
        }
    }
    match run {
        0 => {}
        // The group's unused places count as zeros.
        1..=6 => out.push((zeros | (0xff << run)) & 0x7f),
        _ => out.push(0x80 | (run - 7)),
    }
    out
}

/// One decoded argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Unsigned(u128),
    Signed(i128),
    Bool(bool),
    /// A `str`, an interned string or a character.
    Str(String),
    /// A nested format's arguments, with its format string.
    Format {
        format: String,
        args: Vec<Arg>,
    },
    /// The elements of a slice or array.
    List(Vec<Arg>),
    /// The parts a hand-written `Format` impl wrote, one nested format each, shown
    /// one after the other.
    Sequence(Vec<Arg>),
    /// Bytes (`{=[u8]}`).
    Bytes(Vec<u8>),
    /// A value shown as text (floats, preformatted `Debug`/`Display`).
    Text(String),
}

/// How deep formats may nest (the loader nests one level: a list of map entries).
const MAX_DEPTH: usize = 4;

/// Reads a frame's arguments by the types of a format string, checking every count
/// against the bytes that remain.
pub struct ArgReader<'a> {
    table: &'a Table,
    bytes: &'a [u8],
}

impl<'a> ArgReader<'a> {
    pub fn new(table: &'a Table, bytes: &'a [u8]) -> Self {
        ArgReader { table, bytes }
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.bytes.len() < n {
            return Err(FrameError::Short);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u128, FrameError> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u128, |acc, &b| (acc << 8) | u128::from(b)))
    }

    fn int(&mut self, n: usize) -> Result<i128, FrameError> {
        let value = self.uint(n)?;
        let shift = 128 - 8 * n as u32;
        Ok(((value << shift) as i128) >> shift)
    }

    /// A table index.
    pub fn index(&mut self) -> Result<u16, FrameError> {
        Ok(self.uint(2)? as u16)
    }

    /// A count of items of at least `min_size` bytes each (at least one byte is
    /// assumed, so a count never exceeds the bytes left).
    fn count(&mut self, min_size: usize) -> Result<usize, FrameError> {
        let count = self.uint(4)? as usize;
        if count.saturating_mul(min_size.max(1)) > self.bytes.len() {
            return Err(FrameError::ImpossibleCount);
        }
        Ok(count)
    }

    fn interned(&mut self) -> Result<&'a str, FrameError> {
        let index = self.index()?;
        let table: &'a Table = self.table;
        table
            .get(index)
            .map(|entry| entry.string.as_str())
            .ok_or(FrameError::BadValue)
    }

    /// Reads the arguments of `format`, in argument order.
    pub fn args(&mut self, format: &str) -> Result<Vec<Arg>, FrameError> {
        self.args_at(format, 0)
    }

    fn args_at(&mut self, format: &str, depth: usize) -> Result<Vec<Arg>, FrameError> {
        if depth > MAX_DEPTH {
            return Err(FrameError::TooDeep);
        }
        let params = parameters(format)?;
        params
            .iter()
            .map(|ty| self.arg(ty, depth))
            .collect::<Result<Vec<_>, _>>()
    }

    fn arg(&mut self, ty: &Type, depth: usize) -> Result<Arg, FrameError> {
        Ok(match ty {
            Type::U8 => Arg::Unsigned(self.uint(1)?),
            Type::U16 => Arg::Unsigned(self.uint(2)?),
            Type::U32 | Type::Usize => Arg::Unsigned(self.uint(4)?),
            Type::U64 => Arg::Unsigned(self.uint(8)?),
            Type::U128 => Arg::Unsigned(self.uint(16)?),
            Type::I8 => Arg::Signed(self.int(1)?),
            Type::I16 => Arg::Signed(self.int(2)?),
            Type::I32 | Type::Isize => Arg::Signed(self.int(4)?),
            Type::I64 => Arg::Signed(self.int(8)?),
            Type::I128 => Arg::Signed(self.int(16)?),
            Type::F32 => Arg::Text(f32::from_bits(self.uint(4)? as u32).to_string()),
            Type::F64 => Arg::Text(f64::from_bits(self.uint(8)? as u64).to_string()),
            Type::Bool => match self.uint(1)? {
                0 => Arg::Bool(false),
                1 => Arg::Bool(true),
                _ => return Err(FrameError::BadValue),
            },
            Type::Char => {
                let c = char::from_u32(self.uint(4)? as u32).ok_or(FrameError::BadValue)?;
                Arg::Str(c.to_string())
            }
            Type::Str => {
                let len = self.count(1)?;
                let bytes = self.take(len)?;
                let text = std::str::from_utf8(bytes).map_err(|_| FrameError::BadValue)?;
                Arg::Str(text.to_string())
            }
            Type::IStr => Arg::Str(self.interned()?.to_string()),
            Type::U8Slice => {
                let len = self.count(1)?;
                Arg::Bytes(self.take(len)?.to_vec())
            }
            Type::U8Array(len) => Arg::Bytes(self.take(*len)?.to_vec()),
            Type::Format => self.format(depth)?,
            Type::FormatSlice => {
                // The length, then the elements' format once, then each element. A
                // length beyond the bytes left is refused before anything else.
                let len = self.count(1)?;
                let format = self.interned()?;
                self.elements(len, format, depth)?
            }
            Type::FormatArray(len) => {
                let format = self.interned()?;
                self.elements(*len, format, depth)?
            }
            Type::FormatSequence => {
                let mut parts = Vec::new();
                loop {
                    let index = self.index()?;
                    if index == 0 {
                        break;
                    }
                    let format = self
                        .table
                        .get(index)
                        .map(|e| e.string.clone())
                        .ok_or(FrameError::BadValue)?;
                    let args = self.args_at(&format, depth + 1)?;
                    parts.push(Arg::Format { format, args });
                }
                Arg::Sequence(parts)
            }
            Type::Debug | Type::Display => {
                let end = self
                    .bytes
                    .iter()
                    .position(|&b| b == 0xff)
                    .ok_or(FrameError::Short)?;
                let text = std::str::from_utf8(self.take(end)?)
                    .map_err(|_| FrameError::BadValue)?
                    .to_string();
                self.take(1)?;
                Arg::Text(text)
            }
            Type::BitField(_) => return Err(FrameError::UnreadableFormat),
        })
    }

    fn format(&mut self, depth: usize) -> Result<Arg, FrameError> {
        let format = self.interned()?.to_string();
        if format.contains('|') {
            // Enum formats (variants separated by `|`) are not part of the loader's
            // contract.
            return Err(FrameError::UnreadableFormat);
        }
        let args = self.args_at(&format, depth + 1)?;
        Ok(Arg::Format { format, args })
    }

    /// `len` elements of `format`, the count checked against the bytes left.
    fn elements(&mut self, len: usize, format: &str, depth: usize) -> Result<Arg, FrameError> {
        if format.contains('|') {
            return Err(FrameError::UnreadableFormat);
        }
        let min = min_size(format, depth + 1)?;
        if len.saturating_mul(min.max(1)) > self.bytes.len() {
            return Err(FrameError::ImpossibleCount);
        }
        let format = format.to_string();
        let mut elements = Vec::with_capacity(len);
        for _ in 0..len {
            let args = self.args_at(&format, depth + 1)?;
            elements.push(Arg::Format {
                format: format.clone(),
                args,
            });
        }
        Ok(Arg::List(elements))
    }
}

/// The parameter types of a format string, in argument order (a parameter shown
/// twice is read once).
pub fn parameters(format: &str) -> Result<Vec<Type>, FrameError> {
    let fragments = defmt_parser::parse(format, ParserMode::ForwardsCompatible)
        .map_err(|_| FrameError::UnreadableFormat)?;
    let mut params: Vec<(usize, Type)> = fragments
        .into_iter()
        .filter_map(|f| match f {
            Fragment::Parameter(p) => Some((p.index, p.ty)),
            Fragment::Literal(_) => None,
        })
        .collect();
    params.sort_by_key(|(index, _)| *index);
    params.dedup_by_key(|(index, _)| *index);
    Ok(params.into_iter().map(|(_, ty)| ty).collect())
}

/// The fewest bytes one value of `format` takes on the wire.
fn min_size(format: &str, depth: usize) -> Result<usize, FrameError> {
    if depth > MAX_DEPTH {
        return Err(FrameError::TooDeep);
    }
    Ok(parameters(format)?
        .iter()
        .map(|ty| match ty {
            Type::U8 | Type::I8 | Type::Bool => 1,
            Type::U16 | Type::I16 | Type::IStr | Type::Format | Type::FormatSequence => 2,
            Type::U32 | Type::I32 | Type::Usize | Type::Isize | Type::F32 | Type::Char => 4,
            Type::Str | Type::U8Slice | Type::FormatSlice => 4,
            Type::U64 | Type::I64 | Type::F64 => 8,
            Type::U128 | Type::I128 => 16,
            Type::U8Array(n) => *n,
            Type::FormatArray(_) => 2,
            Type::Debug | Type::Display => 1,
            Type::BitField(_) => 1,
        })
        .sum())
}

/// Writes a format string with its arguments as defmt-print shows them: literals as
/// they are, each parameter by its display hint, lists as `[a, b]`.
pub fn render(format: &str, args: &[Arg], out: &mut String) {
    let Ok(fragments) = defmt_parser::parse(format, ParserMode::ForwardsCompatible) else {
        out.push_str(format);
        return;
    };
    for fragment in fragments {
        match fragment {
            Fragment::Literal(text) => out.push_str(&text),
            Fragment::Parameter(p) => match args.get(p.index) {
                Some(arg) => render_arg(arg, p.hint.as_ref(), out),
                None => out.push('?'),
            },
        }
    }
}

/// Writes one argument as defmt-print shows it, by its display hint.
pub fn render_arg(arg: &Arg, hint: Option<&DisplayHint>, out: &mut String) {
    use std::fmt::Write;
    match arg {
        Arg::Unsigned(n) => {
            let _ = match hint {
                Some(DisplayHint::Hexadecimal {
                    alternate: true, ..
                }) => write!(out, "{n:#x}"),
                Some(DisplayHint::Hexadecimal { .. }) => write!(out, "{n:x}"),
                Some(DisplayHint::Binary {
                    alternate: true, ..
                }) => write!(out, "{n:#b}"),
                _ => write!(out, "{n}"),
            };
        }
        Arg::Signed(n) => {
            let _ = write!(out, "{n}");
        }
        Arg::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Arg::Str(s) | Arg::Text(s) => out.push_str(s),
        Arg::Bytes(bytes) => {
            let _ = write!(out, "{bytes:?}");
        }
        Arg::Format { format, args } => render(format, args, out),
        Arg::Sequence(parts) => {
            for part in parts {
                render_arg(part, None, out);
            }
        }
        Arg::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_arg(item, None, out);
            }
            out.push(']');
        }
    }
}
