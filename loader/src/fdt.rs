//! The flattened device tree (FDT) handed to the kernel.
//!
//! Kernels 0.7–0.10 read the memory map from the FDT (falling back to the MBI) and
//! kernels 0.11 and later require it. The tree has the shape upstream Multiboot
//! loaders build: a root compatible with `hermit,multiboot`, one `memory@<start>`
//! node per usable RAM region, and `/chosen/bootargs` with the full command line.
//! When the loader already knows the TSC frequency it adds `/hermit,tsc` with `khz`,
//! which kernels 0.11+ use instead of measuring the frequency themselves.

use alloc::vec::Vec;

use crate::error::LoadError;
use crate::layout::Region;

// This writer is small on purpose: the loader writes five kinds of node and parses
// nothing, and a general FDT crate brings a hash map, its hasher and `format!` into
// the bare-metal binary. The tests check the output byte for byte against vm-fdt.

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_VERSION: u32 = 17;
const FDT_LAST_COMPATIBLE_VERSION: u32 = 16;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_END: u32 = 9;
/// The header is ten big-endian u32s.
const HEADER_SIZE: usize = 40;
/// The memory reservation block holds only its terminating empty entry.
const RESERVATION_BLOCK_SIZE: usize = 16;

/// The structure and strings blocks under construction.
struct Writer {
    structure: Vec<u8>,
    strings: Vec<u8>,
}

impl Writer {
    fn u32(&mut self, value: u32) {
        self.structure.extend_from_slice(&value.to_be_bytes());
    }

    fn pad(&mut self) {
        let padded = self.structure.len().next_multiple_of(4);
        self.structure.resize(padded, 0);
    }

    fn begin_node(&mut self, name: &[u8]) {
        self.u32(FDT_BEGIN_NODE);
        self.structure.extend_from_slice(name);
        self.structure.push(0);
        self.pad();
    }

    fn end_node(&mut self) {
        self.u32(FDT_END_NODE);
    }

    /// The offset of `name` in the strings block, added on first use.
    fn string_offset(&mut self, name: &str) -> u32 {
        let mut at = 0;
        for existing in self.strings.split(|&b| b == 0) {
            if existing == name.as_bytes() {
                return at as u32;
            }
            at += existing.len() + 1;
        }
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        offset
    }

    fn property(&mut self, name: &str, value: &[&[u8]]) {
        let len: usize = value.iter().map(|part| part.len()).sum();
        let name_offset = self.string_offset(name);
        self.u32(FDT_PROP);
        self.u32(len as u32);
        self.u32(name_offset);
        for part in value {
            self.structure.extend_from_slice(part);
        }
        self.pad();
    }

    fn property_string(&mut self, name: &str, value: &str) {
        self.property(name, &[value.as_bytes(), &[0]]);
    }

    fn property_u32(&mut self, name: &str, value: u32) {
        self.property(name, &[&value.to_be_bytes()]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.u32(FDT_END);
        let structure_offset = HEADER_SIZE + RESERVATION_BLOCK_SIZE;
        let strings_offset = structure_offset + self.structure.len();
        let total = strings_offset + self.strings.len();
        let mut blob = Vec::with_capacity(total);
        for field in [
            FDT_MAGIC,
            total as u32,
            structure_offset as u32,
            strings_offset as u32,
            HEADER_SIZE as u32,
            FDT_VERSION,
            FDT_LAST_COMPATIBLE_VERSION,
            0, // boot_cpuid_phys
            self.strings.len() as u32,
            self.structure.len() as u32,
        ] {
            blob.extend_from_slice(&field.to_be_bytes());
        }
        blob.resize(structure_offset, 0);
        blob.extend_from_slice(&self.structure);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

/// `memory@<lowercase hex start>`, without `format!` (see the comment at the top).
fn memory_node_name(start: u64, buffer: &mut [u8; 23]) -> &[u8] {
    const PREFIX: &[u8] = b"memory@";
    buffer[..PREFIX.len()].copy_from_slice(PREFIX);
    let digits = (64 - start.leading_zeros()).div_ceil(4).max(1) as usize;
    for i in 0..digits {
        let nibble = (start >> (4 * (digits - 1 - i))) & 0xf;
        buffer[PREFIX.len() + i] = b"0123456789abcdef"[nibble as usize];
    }
    &buffer[..PREFIX.len() + digits]
}

/// Builds the FDT the kernel (0.7+) reads.
///
/// The root has `compatible = "hermit,multiboot"`, `#address-cells = <2>` and
/// `#size-cells = <2>`; each non-empty region of `ram` becomes a
/// `memory@<lowercase hex start>` node with `device_type = "memory"` and
/// `reg = <start size>` (two cells each); `/chosen` has `bootargs` = `bootargs`.
/// With `tsc_khz`, a `/hermit,tsc` node carries `khz = <u32>`.
pub fn build_fdt(
    ram: &[Region],
    bootargs: &str,
    tsc_khz: Option<u32>,
) -> Result<Vec<u8>, LoadError> {
    // The command line comes from a NUL-terminated Multiboot string, so a NUL inside
    // it means the caller passed something else.
    if bootargs.as_bytes().contains(&0) {
        return Err(LoadError::BadMultiboot {
            what: "the command line contains a NUL byte",
        });
    }
    // The format's offsets and sizes are u32: refuse what cannot be described.
    if bootargs.len() > (u32::MAX / 2) as usize {
        return Err(LoadError::FdtBuild {
            what: "the tree exceeds the 4 GiB limit of the format",
        });
    }
    let mut fdt = Writer {
        structure: Vec::with_capacity(512),
        strings: Vec::with_capacity(96),
    };
    fdt.begin_node(b"");
    fdt.property_string("compatible", "hermit,multiboot");
    fdt.property_u32("#address-cells", 2);
    fdt.property_u32("#size-cells", 2);
    let mut name = [0u8; 23];
    for region in ram.iter().filter(|r| !r.is_empty()) {
        fdt.begin_node(memory_node_name(region.start, &mut name));
        fdt.property_string("device_type", "memory");
        fdt.property(
            "reg",
            &[&region.start.to_be_bytes(), &region.len().to_be_bytes()],
        );
        fdt.end_node();
    }
    fdt.begin_node(b"chosen");
    fdt.property_string("bootargs", bootargs);
    fdt.end_node();
    if let Some(khz) = tsc_khz {
        fdt.begin_node(b"hermit,tsc");
        fdt.property_u32("khz", khz);
        fdt.end_node();
    }
    fdt.end_node();
    Ok(fdt.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One node read back from a blob: its path and its properties in order.
    #[derive(Debug)]
    struct Node {
        path: String,
        props: Vec<(String, Vec<u8>)>,
    }

    impl Node {
        fn prop(&self, name: &str) -> Option<&[u8]> {
            self.props
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
        }
    }

    fn be32(blob: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(blob[at..at + 4].try_into().unwrap())
    }

    fn c_string(bytes: &[u8]) -> &str {
        let len = bytes
            .iter()
            .position(|&b| b == 0)
            .expect("unterminated string");
        core::str::from_utf8(&bytes[..len]).unwrap()
    }

    /// A small reader of the FDT format (devicetree specification 0.4, chapter 5),
    /// independent of the writer, so the test sees the blob as a kernel would.
    fn parse(blob: &[u8]) -> Vec<Node> {
        assert_eq!(be32(blob, 0), 0xd00d_feed, "magic");
        assert_eq!(be32(blob, 4) as usize, blob.len(), "totalsize");
        let structs = be32(blob, 8) as usize;
        let strings = be32(blob, 12) as usize;
        assert_eq!(be32(blob, 20), 17, "version");
        // The memory reservation block must be empty (a single terminating entry).
        let reservations = be32(blob, 16) as usize;
        assert_eq!(&blob[reservations..reservations + 16], &[0; 16]);

        let mut nodes: Vec<Node> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        let mut at = structs;
        loop {
            let token = be32(blob, at);
            at += 4;
            match token {
                1 => {
                    let name = c_string(&blob[at..]);
                    at = (at + name.len() + 1).next_multiple_of(4);
                    let path = match open.last() {
                        None => "/".to_string(),
                        Some(&parent) if nodes[parent].path == "/" => format!("/{name}"),
                        Some(&parent) => format!("{}/{name}", nodes[parent].path),
                    };
                    open.push(nodes.len());
                    nodes.push(Node {
                        path,
                        props: Vec::new(),
                    });
                }
                2 => {
                    open.pop().expect("unbalanced end node");
                }
                3 => {
                    let len = be32(blob, at) as usize;
                    let name = c_string(&blob[strings + be32(blob, at + 4) as usize..]).to_string();
                    let value = blob[at + 8..at + 8 + len].to_vec();
                    at = (at + 8 + len).next_multiple_of(4);
                    let node = *open.last().expect("property outside a node");
                    nodes[node].props.push((name, value));
                }
                4 => {}
                9 => break,
                other => panic!("unknown token {other}"),
            }
        }
        assert!(open.is_empty(), "unclosed nodes");
        nodes
    }

    fn node<'a>(nodes: &'a [Node], path: &str) -> &'a Node {
        nodes
            .iter()
            .find(|n| n.path == path)
            .unwrap_or_else(|| panic!("no {path} in {nodes:?}"))
    }

    fn reg(start: u64, size: u64) -> Vec<u8> {
        [start.to_be_bytes(), size.to_be_bytes()].concat()
    }

    const ARGS: &str = "/kernels/hello -freq 2000 -- app args";

    #[test]
    fn tree_has_upstream_shape() {
        let ram = [
            Region::new(0, 0x9_fc00),
            Region::new(0x10_0000, 0x7fe_0000),
            Region::new(0x7fe_0000, 0x7fe_0000),
            Region::new(0x1_0000_0000, 0x1_8000_0000),
        ];
        let nodes = parse(&build_fdt(&ram, ARGS, None).unwrap());
        let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/",
                "/memory@0",
                "/memory@100000",
                "/memory@100000000",
                "/chosen"
            ]
        );

        let root = node(&nodes, "/");
        assert_eq!(root.prop("compatible"), Some(&b"hermit,multiboot\0"[..]));
        assert_eq!(root.prop("#address-cells"), Some(&2u32.to_be_bytes()[..]));
        assert_eq!(root.prop("#size-cells"), Some(&2u32.to_be_bytes()[..]));

        for (path, start, size) in [
            ("/memory@0", 0, 0x9_fc00),
            ("/memory@100000", 0x10_0000, 0x7ee_0000),
            ("/memory@100000000", 0x1_0000_0000, 0x8000_0000),
        ] {
            let memory = node(&nodes, path);
            assert_eq!(memory.prop("device_type"), Some(&b"memory\0"[..]), "{path}");
            assert_eq!(
                memory.prop("reg"),
                Some(reg(start, size).as_slice()),
                "{path}"
            );
        }

        let chosen = node(&nodes, "/chosen");
        let bootargs = format!("{ARGS}\0");
        assert_eq!(chosen.prop("bootargs"), Some(bootargs.as_bytes()));
        assert!(nodes.iter().all(|n| n.path != "/hermit,tsc"));
    }

    #[test]
    fn tsc_frequency_goes_to_hermit_tsc() {
        let nodes =
            parse(&build_fdt(&[Region::new(0x10_0000, 0x800_0000)], "", Some(2_999_999)).unwrap());
        let tsc = node(&nodes, "/hermit,tsc");
        assert_eq!(tsc.props.len(), 1);
        assert_eq!(tsc.prop("khz"), Some(&2_999_999u32.to_be_bytes()[..]));
        assert_eq!(node(&nodes, "/chosen").prop("bootargs"), Some(&b"\0"[..]));
    }

    #[test]
    fn refuses_a_command_line_with_nul() {
        assert_eq!(
            build_fdt(&[], "a\0b", None),
            Err(LoadError::BadMultiboot {
                what: "the command line contains a NUL byte"
            })
        );
    }

    /// The same tree built with vm-fdt, the general-purpose writer this one replaces.
    fn reference(ram: &[Region], bootargs: &str, tsc_khz: Option<u32>) -> Vec<u8> {
        let mut fdt = vm_fdt::FdtWriter::new().unwrap();
        let root = fdt.begin_node("").unwrap();
        fdt.property_string("compatible", "hermit,multiboot")
            .unwrap();
        fdt.property_u32("#address-cells", 2).unwrap();
        fdt.property_u32("#size-cells", 2).unwrap();
        for region in ram.iter().filter(|r| !r.is_empty()) {
            let node = fdt
                .begin_node(&format!("memory@{:x}", region.start))
                .unwrap();
            fdt.property_string("device_type", "memory").unwrap();
            fdt.property_array_u64("reg", &[region.start, region.len()])
                .unwrap();
            fdt.end_node(node).unwrap();
        }
        let chosen = fdt.begin_node("chosen").unwrap();
        fdt.property_string("bootargs", bootargs).unwrap();
        fdt.end_node(chosen).unwrap();
        if let Some(khz) = tsc_khz {
            let tsc = fdt.begin_node("hermit,tsc").unwrap();
            fdt.property_u32("khz", khz).unwrap();
            fdt.end_node(tsc).unwrap();
        }
        fdt.end_node(root).unwrap();
        fdt.finish().unwrap()
    }

    proptest::proptest! {
        #[test]
        fn identical_to_vm_fdt(
            regions in proptest::collection::vec((0u64..1 << 40, 0u64..1 << 36), 0..8),
            bootargs in "[ -~]{0,120}",
            khz in proptest::option::of(1u32..u32::MAX),
        ) {
            let ram: Vec<Region> = regions.iter().map(|&(s, l)| Region::new(s, s + l)).collect();
            proptest::prop_assert_eq!(build_fdt(&ram, &bootargs, khz).unwrap(), reference(&ram, &bootargs, khz));
        }
    }
}
