//! A small flattened-device-tree (DTB) reader: just enough to check what the loader
//! built, namely the root's cells and `compatible`, the memory nodes and
//! `/chosen/bootargs`.
//!
//! Written here instead of taken from a crate so the kernels read the blob with code
//! that shares nothing with the loader's writer.

#![forbid(unsafe_code)]

/// The DTB magic, big-endian at offset 0.
pub const MAGIC: u32 = 0xd00d_feed;
/// Bytes of the header the reader needs.
pub const HEADER_LEN: usize = 40;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Deepest node nesting the reader follows.
const MAX_DEPTH: usize = 16;

/// What is wrong with a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// Not 0xd00dfeed at offset 0.
    BadMagic(u32),
    /// Fewer bytes than the header or `totalsize` says.
    Truncated,
    /// A block lies outside `totalsize`.
    BadLayout,
    /// `last_comp_version` above 17: a format this reader does not know.
    BadVersion(u32),
    /// An unknown token at this offset of the structure block.
    BadToken(usize),
    /// Nodes do not nest properly, nest too deep, or the block ends early.
    BadNesting,
    /// A property name offset outside the strings block.
    BadString,
    /// `#address-cells` or `#size-cells` is not 1 or 2.
    BadCells,
}

impl FdtError {
    /// A short description for failure messages.
    pub fn describe(self) -> &'static str {
        match self {
            FdtError::BadMagic(_) => "bad magic",
            FdtError::Truncated => "truncated",
            FdtError::BadLayout => "a block lies outside totalsize",
            FdtError::BadVersion(_) => "unsupported version",
            FdtError::BadToken(_) => "unknown structure token",
            FdtError::BadNesting => "nodes do not nest properly",
            FdtError::BadString => "property name outside the strings block",
            FdtError::BadCells => "#address-cells/#size-cells not 1 or 2",
        }
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The DTB header fields the reader uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Size of the whole blob.
    pub totalsize: u32,
    /// Offset of the structure block.
    pub off_dt_struct: u32,
    /// Offset of the strings block.
    pub off_dt_strings: u32,
    /// Format version.
    pub version: u32,
    /// Oldest version this blob is compatible with.
    pub last_comp_version: u32,
    /// Size of the strings block.
    pub size_dt_strings: u32,
    /// Size of the structure block.
    pub size_dt_struct: u32,
}

impl Header {
    /// Decodes the header from the first [`HEADER_LEN`] bytes: enough to learn how
    /// many bytes the whole blob has before reading (and mapping-checking) them.
    pub fn parse(bytes: &[u8]) -> Result<Header, FdtError> {
        let field = |i: usize| be32(bytes, 4 * i).ok_or(FdtError::Truncated);
        let magic = field(0)?;
        if magic != MAGIC {
            return Err(FdtError::BadMagic(magic));
        }
        let h = Header {
            totalsize: field(1)?,
            off_dt_struct: field(2)?,
            off_dt_strings: field(3)?,
            version: field(5)?,
            last_comp_version: field(6)?,
            size_dt_strings: field(8)?,
            size_dt_struct: field(9)?,
        };
        if h.last_comp_version > 17 {
            return Err(FdtError::BadVersion(h.last_comp_version));
        }
        Ok(h)
    }
}

/// One token of the structure block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// A node begins: its name (unit address included, root = empty).
    Begin(&'a [u8]),
    /// The current node ends.
    End,
    /// A property of the current node.
    Prop {
        /// Its name.
        name: &'a [u8],
        /// Its raw value.
        value: &'a [u8],
    },
}

/// A checked blob.
#[derive(Clone, Copy, Debug)]
pub struct Fdt<'a> {
    header: Header,
    structs: &'a [u8],
    strings: &'a [u8],
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl<'a> Fdt<'a> {
    /// Checks the header and the block bounds of a blob of `totalsize` bytes.
    pub fn new(bytes: &'a [u8]) -> Result<Fdt<'a>, FdtError> {
        let header = Header::parse(bytes)?;
        let total = header.totalsize as usize;
        let bytes = bytes.get(..total).ok_or(FdtError::Truncated)?;
        let block = |off: u32, size: u32| {
            let start = off as usize;
            bytes.get(start..start.checked_add(size as usize)?)
        };
        let structs =
            block(header.off_dt_struct, header.size_dt_struct).ok_or(FdtError::BadLayout)?;
        let strings =
            block(header.off_dt_strings, header.size_dt_strings).ok_or(FdtError::BadLayout)?;
        Ok(Fdt {
            header,
            structs,
            strings,
        })
    }

    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// Walks the structure block, calling `f(depth, token)`; the depth of a `Begin`,
    /// a `Prop` and an `End` is that of the node concerned (root = 0). Checks the
    /// nesting and that the block ends with `FDT_END` after the root closed.
    pub fn tokens(&self, f: &mut dyn FnMut(usize, Token<'a>)) -> Result<(), FdtError> {
        let s = self.structs;
        let mut at = 0usize;
        let mut depth = 0usize;
        let mut seen_root = false;
        loop {
            let token = be32(s, at).ok_or(FdtError::BadNesting)?;
            let here = at;
            at += 4;
            match token {
                FDT_BEGIN_NODE => {
                    if seen_root && depth == 0 {
                        return Err(FdtError::BadNesting);
                    }
                    let rest = s.get(at..).ok_or(FdtError::Truncated)?;
                    let len = rest
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or(FdtError::Truncated)?;
                    f(depth, Token::Begin(&rest[..len]));
                    at = align4(at + len + 1);
                    depth += 1;
                    seen_root = true;
                    if depth > MAX_DEPTH {
                        return Err(FdtError::BadNesting);
                    }
                }
                FDT_END_NODE => {
                    depth = depth.checked_sub(1).ok_or(FdtError::BadNesting)?;
                    f(depth, Token::End);
                }
                FDT_PROP => {
                    if depth == 0 {
                        return Err(FdtError::BadNesting);
                    }
                    let len = be32(s, at).ok_or(FdtError::Truncated)? as usize;
                    let nameoff = be32(s, at + 4).ok_or(FdtError::Truncated)? as usize;
                    let value = s.get(at + 8..at + 8 + len).ok_or(FdtError::Truncated)?;
                    let name = self.string(nameoff)?;
                    f(depth - 1, Token::Prop { name, value });
                    at = align4(at + 8 + len);
                }
                FDT_NOP => {}
                FDT_END => {
                    return if depth == 0 && seen_root {
                        Ok(())
                    } else {
                        Err(FdtError::BadNesting)
                    };
                }
                _ => return Err(FdtError::BadToken(here)),
            }
        }
    }

    fn string(&self, offset: usize) -> Result<&'a [u8], FdtError> {
        let rest = self.strings.get(offset..).ok_or(FdtError::BadString)?;
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(FdtError::BadString)?;
        Ok(&rest[..len])
    }

    /// A property of the root node.
    pub fn root_property(&self, name: &[u8]) -> Result<Option<&'a [u8]>, FdtError> {
        let mut found = None;
        self.tokens(&mut |depth, t| {
            if let (0, Token::Prop { name: n, value }) = (depth, t) {
                if n == name && found.is_none() {
                    found = Some(value);
                }
            }
        })?;
        Ok(found)
    }

    /// A property of a child of the root, e.g. (`chosen`, `bootargs`).
    pub fn child_property(&self, node: &[u8], name: &[u8]) -> Result<Option<&'a [u8]>, FdtError> {
        let mut found = None;
        let mut in_node = false;
        self.tokens(&mut |depth, t| match (depth, t) {
            (1, Token::Begin(n)) => in_node = n == node,
            (1, Token::End) => in_node = false,
            (1, Token::Prop { name: n, value }) if in_node && n == name && found.is_none() => {
                found = Some(value);
            }
            _ => {}
        })?;
        Ok(found)
    }

    /// The root's `#address-cells` and `#size-cells` (defaults 2 and 1), each 1 or 2.
    pub fn root_cells(&self) -> Result<(u32, u32), FdtError> {
        let cells = |name: &[u8], default: u32| -> Result<u32, FdtError> {
            match self.root_property(name)? {
                None => Ok(default),
                Some(v) => match be32(v, 0) {
                    Some(c @ (1 | 2)) if v.len() == 4 => Ok(c),
                    _ => Err(FdtError::BadCells),
                },
            }
        };
        Ok((cells(b"#address-cells", 2)?, cells(b"#size-cells", 1)?))
    }

    /// Calls `f(start, size)` with the first `reg` pair of every child of the root
    /// whose `device_type` is `"memory"` (the pair Hermit kernels read), in blob
    /// order. A memory node without a full first pair is reported as (0, 0).
    pub fn memory(&self, f: &mut dyn FnMut(u64, u64)) -> Result<usize, FdtError> {
        let (address_cells, size_cells) = self.root_cells()?;
        let mut count = 0;
        let mut is_memory = false;
        let mut reg: Option<&[u8]> = None;
        self.tokens(&mut |depth, t| match (depth, t) {
            (1, Token::Begin(_)) => {
                is_memory = false;
                reg = None;
            }
            (
                1,
                Token::Prop {
                    name: b"device_type",
                    value,
                },
            ) => is_memory = value == b"memory\0",
            (
                1,
                Token::Prop {
                    name: b"reg",
                    value,
                },
            ) => reg = Some(value),
            (1, Token::End) if is_memory => {
                count += 1;
                let pair = reg.and_then(|r| {
                    let start = cells_value(r, 0, address_cells)?;
                    let size = cells_value(r, address_cells as usize * 4, size_cells)?;
                    Some((start, size))
                });
                let (start, size) = pair.unwrap_or((0, 0));
                f(start, size);
            }
            _ => {}
        })?;
        Ok(count)
    }
}

/// A value of `cells` (1 or 2) big-endian u32 cells at byte `at`.
fn cells_value(bytes: &[u8], at: usize, cells: u32) -> Option<u64> {
    let hi = be32(bytes, at)?;
    if cells == 1 {
        return Some(u64::from(hi));
    }
    let lo = be32(bytes, at + 4)?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// A string property's text: the value without its terminating NUL.
pub fn string_value(value: &[u8]) -> &[u8] {
    value.strip_suffix(b"\0").unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A blob written by the `vm-fdt` crate (the writer the loader uses), shaped like
    /// upstream's: compatible "hermit,multiboot", cells 2/2, memory@0 and
    /// memory@100000 for QEMU's two usable regions with 128 MiB, and /chosen/bootargs
    /// "rusty-loader -freq 2800 -- hello world". See `testdata/README.md`.
    const HERMIT_DTB: &[u8] = include_bytes!("../testdata/hermit-multiboot.dtb");

    fn memory(fdt: &Fdt) -> Vec<(u64, u64)> {
        let mut regions = Vec::new();
        let n = fdt.memory(&mut |s, l| regions.push((s, l))).unwrap();
        assert_eq!(n, regions.len());
        regions
    }

    #[test]
    fn reads_the_upstream_shaped_blob() {
        let fdt = Fdt::new(HERMIT_DTB).unwrap();
        assert_eq!(fdt.header().totalsize as usize, HERMIT_DTB.len());
        assert_eq!(fdt.root_cells(), Ok((2, 2)));
        assert_eq!(
            fdt.root_property(b"compatible").unwrap(),
            Some(&b"hermit,multiboot\0"[..])
        );
        assert_eq!(memory(&fdt), [(0, 0x9fc00), (0x10_0000, 0x7ee_0000)]);
        let bootargs = fdt.child_property(b"chosen", b"bootargs").unwrap().unwrap();
        assert_eq!(
            string_value(bootargs),
            b"rusty-loader -freq 2800 -- hello world"
        );
        assert_eq!(fdt.child_property(b"chosen", b"nothing").unwrap(), None);
        assert_eq!(fdt.child_property(b"nothing", b"bootargs").unwrap(), None);
    }

    /// A minimal writer for blobs the fixture does not cover.
    struct Builder {
        structs: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn new() -> Self {
            Builder {
                structs: Vec::new(),
                strings: Vec::new(),
            }
        }
        fn token(&mut self, t: u32) -> &mut Self {
            self.structs.extend_from_slice(&t.to_be_bytes());
            self
        }
        fn begin(&mut self, name: &str) -> &mut Self {
            self.token(FDT_BEGIN_NODE);
            self.structs.extend_from_slice(name.as_bytes());
            self.structs.push(0);
            self.structs.resize(align4(self.structs.len()), 0);
            self
        }
        fn end(&mut self) -> &mut Self {
            self.token(FDT_END_NODE)
        }
        fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.token(FDT_PROP);
            self.structs
                .extend_from_slice(&(value.len() as u32).to_be_bytes());
            self.structs.extend_from_slice(&off.to_be_bytes());
            self.structs.extend_from_slice(value);
            self.structs.resize(align4(self.structs.len()), 0);
            self
        }
        fn finish(&mut self) -> Vec<u8> {
            self.token(FDT_END);
            let off_struct = 40 + 16;
            let off_strings = off_struct + self.structs.len();
            let total = off_strings + self.strings.len();
            let mut b = Vec::new();
            for v in [
                MAGIC,
                total as u32,
                off_struct as u32,
                off_strings as u32,
                40,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structs.len() as u32,
            ] {
                b.extend_from_slice(&v.to_be_bytes());
            }
            b.extend_from_slice(&[0; 16]);
            b.extend_from_slice(&self.structs);
            b.extend_from_slice(&self.strings);
            b
        }
    }

    #[test]
    fn one_cell_sizes_nops_and_nameless_memory() {
        let blob = Builder::new()
            .begin("")
            .prop("#address-cells", &2u32.to_be_bytes())
            .prop("#size-cells", &1u32.to_be_bytes())
            .token(FDT_NOP)
            .begin("memory")
            .prop("device_type", b"memory\0")
            .prop("reg", &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0x10, 0, 0])
            .end()
            .begin("cpus")
            .prop("device_type", b"cpu\0")
            .begin("memory@5")
            .prop("device_type", b"memory\0")
            .prop("reg", &[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1])
            .end()
            .end()
            .begin("memory@2")
            .prop("device_type", b"memory\0")
            .end()
            .end()
            .finish();
        let fdt = Fdt::new(&blob).unwrap();
        assert_eq!(fdt.root_cells(), Ok((2, 1)));
        // The nested memory node under /cpus is not a child of the root; the node
        // without reg is reported as (0, 0) so a comparison fails visibly.
        assert_eq!(memory(&fdt), [(0x1_0000_0000, 0x10_0000), (0, 0)]);
        assert_eq!(fdt.child_property(b"chosen", b"bootargs").unwrap(), None);
    }

    #[test]
    fn broken_blobs_are_named() {
        assert_eq!(
            Fdt::new(&HERMIT_DTB[..20]).unwrap_err(),
            FdtError::Truncated
        );
        assert_eq!(
            Fdt::new(&HERMIT_DTB[..HERMIT_DTB.len() - 1]).unwrap_err(),
            FdtError::Truncated
        );
        let mut bad = HERMIT_DTB.to_vec();
        bad[0] = 0;
        assert_eq!(Fdt::new(&bad).unwrap_err(), FdtError::BadMagic(0x000d_feed));
        let mut bad = HERMIT_DTB.to_vec();
        bad[8..12].copy_from_slice(&0x10_0000u32.to_be_bytes());
        assert_eq!(Fdt::new(&bad).unwrap_err(), FdtError::BadLayout);
        let mut bad = HERMIT_DTB.to_vec();
        bad[24..28].copy_from_slice(&18u32.to_be_bytes());
        assert_eq!(Fdt::new(&bad).unwrap_err(), FdtError::BadVersion(18));

        // An unknown token where the root node should begin.
        let mut bad = HERMIT_DTB.to_vec();
        let off = Header::parse(&bad).unwrap().off_dt_struct as usize;
        bad[off..off + 4].copy_from_slice(&7u32.to_be_bytes());
        let fdt = Fdt::new(&bad).unwrap();
        assert_eq!(fdt.tokens(&mut |_, _| {}), Err(FdtError::BadToken(0)));

        let unclosed = Builder::new().begin("").begin("a").end().finish();
        assert_eq!(
            Fdt::new(&unclosed).unwrap().tokens(&mut |_, _| {}),
            Err(FdtError::BadNesting)
        );
        let two_roots = Builder::new().begin("").end().begin("").end().finish();
        assert_eq!(
            Fdt::new(&two_roots).unwrap().tokens(&mut |_, _| {}),
            Err(FdtError::BadNesting)
        );
        let bad_cells = Builder::new()
            .begin("")
            .prop("#size-cells", &3u32.to_be_bytes())
            .end()
            .finish();
        assert_eq!(
            Fdt::new(&bad_cells).unwrap().root_cells(),
            Err(FdtError::BadCells)
        );
        assert!(!FdtError::BadCells.describe().is_empty());
    }

    #[test]
    fn string_values_lose_their_nul() {
        assert_eq!(string_value(b"abc\0"), b"abc");
        assert_eq!(string_value(b"abc"), b"abc");
        assert_eq!(string_value(b""), b"");
    }
}
