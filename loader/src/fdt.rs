//! The flattened device tree (FDT) handed to the kernel.
//!
//! Kernels 0.7–0.10 read the memory map from the FDT (falling back to the MBI) and
//! kernels 0.11 and later require it. The tree has the shape upstream Multiboot
//! loaders build: a root compatible with `hermit,multiboot`, one `memory@<start>`
//! node per usable RAM region, and `/chosen/bootargs` with the full command line.
//! When the loader already knows the TSC frequency it adds `/hermit,tsc` with `khz`,
//! which kernels 0.11+ use instead of measuring the frequency themselves; under UEFI,
//! where no BIOS area holds the ACPI RSDP, `/hermit,rsdp@<address>` with `reg =
//! <address length>` names a copy of it (kernels 0.11+ read the first `reg` address).

use alloc::vec::Vec;

use crate::error::LoadError;
use crate::memory::Region;

// This writer is small on purpose: the loader writes five kinds of node and parses
// nothing, and a general FDT crate brings a hash map, its hasher and `format!` into
// the bare-metal binary. It is also written to be cheap under emulation, where
// translating code costs far more than running it: one `put` does every write, the
// property names are a fixed strings block, and the per-region work is one loop.
// The tests check the output byte for byte against vm-fdt.

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

/// The strings block: every property name, in the order of first use (the order a
/// general writer such as vm-fdt produces). The memory nodes' names are left out
/// when there is no memory node, `khz` when there is no `/hermit,tsc`.
const STRINGS_ROOT: &[u8] = b"compatible\0#address-cells\0#size-cells\0";
const STRINGS_MEMORY: &[u8] = b"device_type\0reg\0";
const STRINGS_BOOTARGS: &[u8] = b"bootargs\0";
const STRINGS_TSC: &[u8] = b"khz\0";
/// `reg` for `/hermit,rsdp` when no memory node put it in the block first.
const STRINGS_REG: &[u8] = b"reg\0";
const NAME_COMPATIBLE: u32 = 0;
const NAME_ADDRESS_CELLS: u32 = 11;
const NAME_SIZE_CELLS: u32 = 26;
const NAME_DEVICE_TYPE: u32 = 38;
const NAME_REG: u32 = 50;

/// The structure block under construction.
struct Structure(Vec<u8>);

impl Structure {
    /// Appends `bytes`; every write goes through here.
    #[inline(never)]
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn u32(&mut self, value: u32) {
        self.put(&value.to_be_bytes());
    }

    /// A token, a name or a value, and the padding to the next 4 bytes.
    #[inline(never)]
    fn padded(&mut self, bytes: &[u8]) {
        self.put(bytes);
        let padding = self.0.len().next_multiple_of(4) - self.0.len();
        self.put(&[0; 3][..padding]);
    }

    #[inline(never)]
    fn begin_node(&mut self, name: &[u8]) {
        self.u32(FDT_BEGIN_NODE);
        self.put(name);
        self.padded(&[0]);
    }

    /// A property whose name is at `name` in the strings block and whose value is
    /// `value`, then a NUL when `nul` (a string property).
    #[inline(never)]
    fn property(&mut self, name: u32, value: &[u8], nul: bool) {
        let len = value.len() + usize::from(nul);
        for word in [FDT_PROP, len as u32, name] {
            self.u32(word);
        }
        self.put(value);
        self.padded(&[0][..usize::from(nul)]);
    }
}

/// `<prefix>@<lowercase hex start>` (`memory@100000`), without `format!` (see the
/// comment at the top); `prefix` is at most 12 bytes.
fn node_name<'b>(prefix: &[u8], start: u64, buffer: &'b mut [u8; 29]) -> &'b [u8] {
    buffer[..prefix.len()].copy_from_slice(prefix);
    buffer[prefix.len()] = b'@';
    let at = prefix.len() + 1;
    let digits = (64 - start.leading_zeros()).div_ceil(4).max(1) as usize;
    for i in 0..digits {
        let nibble = (start >> (4 * (digits - 1 - i))) & 0xf;
        buffer[at + i] = b"0123456789abcdef"[nibble as usize];
    }
    &buffer[..at + digits]
}

/// A `reg` value: one address and one size, two cells each.
fn reg(region: Region) -> [u8; 16] {
    let mut reg = [0u8; 16];
    reg[..8].copy_from_slice(&region.start.to_be_bytes());
    reg[8..].copy_from_slice(&region.len().to_be_bytes());
    reg
}

/// Builds the FDT the kernel (0.7+) reads.
///
/// The root has `compatible = "hermit,multiboot"`, `#address-cells = <2>` and
/// `#size-cells = <2>`; each non-empty region of `ram` becomes a
/// `memory@<lowercase hex start>` node with `device_type = "memory"` and
/// `reg = <start size>` (two cells each); `/chosen` has `bootargs` = `bootargs`.
/// With `tsc_khz`, a `/hermit,tsc` node carries `khz = <u32>`; with `rsdp`, a
/// `/hermit,rsdp@<start>` node has `reg = <start size>`.
pub fn build_fdt(
    ram: &[Region],
    bootargs: &str,
    tsc_khz: Option<u32>,
    rsdp: Option<Region>,
) -> Result<Vec<u8>, LoadError> {
    // The command line comes from a NUL-terminated Multiboot string, so a NUL inside
    // it means the caller passed something else.
    if bootargs.bytes().any(|b| b == 0) {
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
    let memory_nodes = ram.iter().any(|r| !r.is_empty());
    let name_bootargs = (STRINGS_ROOT.len()
        + if memory_nodes {
            STRINGS_MEMORY.len()
        } else {
            0
        }) as u32;
    let name_khz = name_bootargs + STRINGS_BOOTARGS.len() as u32;

    let mut fdt = Structure(Vec::with_capacity(256 + 64 * ram.len() + bootargs.len()));
    fdt.begin_node(b"");
    fdt.property(NAME_COMPATIBLE, b"hermit,multiboot", true);
    fdt.property(NAME_ADDRESS_CELLS, &2u32.to_be_bytes(), false);
    fdt.property(NAME_SIZE_CELLS, &2u32.to_be_bytes(), false);
    let mut name = [0u8; 29];
    for region in ram.iter().filter(|r| !r.is_empty()) {
        fdt.begin_node(node_name(b"memory", region.start, &mut name));
        fdt.property(NAME_DEVICE_TYPE, b"memory", true);
        fdt.property(NAME_REG, &reg(*region), false);
        fdt.u32(FDT_END_NODE);
    }
    fdt.begin_node(b"chosen");
    fdt.property(name_bootargs, bootargs.as_bytes(), true);
    fdt.u32(FDT_END_NODE);
    if let Some(khz) = tsc_khz {
        fdt.begin_node(b"hermit,tsc");
        fdt.property(name_khz, &khz.to_be_bytes(), false);
        fdt.u32(FDT_END_NODE);
    }
    let strings_before_rsdp = name_khz as usize
        + if tsc_khz.is_some() {
            STRINGS_TSC.len()
        } else {
            0
        };
    // `reg` is in the strings block already when a memory node used it.
    let rsdp_adds_reg = rsdp.is_some() && !memory_nodes;
    if let Some(rsdp) = rsdp {
        fdt.begin_node(node_name(b"hermit,rsdp", rsdp.start, &mut name));
        let name_reg = if memory_nodes {
            NAME_REG
        } else {
            strings_before_rsdp as u32
        };
        fdt.property(name_reg, &reg(rsdp), false);
        fdt.u32(FDT_END_NODE);
    }
    fdt.u32(FDT_END_NODE);
    fdt.u32(FDT_END);
    let structure = fdt.0;

    let strings_len = strings_before_rsdp + if rsdp_adds_reg { STRINGS_REG.len() } else { 0 };
    let structure_offset = HEADER_SIZE + RESERVATION_BLOCK_SIZE;
    let strings_offset = structure_offset + structure.len();
    let total = strings_offset + strings_len;
    let mut blob = Structure(Vec::with_capacity(total));
    for field in [
        FDT_MAGIC,
        total as u32,
        structure_offset as u32,
        strings_offset as u32,
        HEADER_SIZE as u32,
        FDT_VERSION,
        FDT_LAST_COMPATIBLE_VERSION,
        0, // boot_cpuid_phys
        strings_len as u32,
        structure.len() as u32,
    ] {
        blob.u32(field);
    }
    blob.put(&[0; RESERVATION_BLOCK_SIZE]);
    blob.put(&structure);
    // The strings block, each part only when a node uses it.
    for (part, used) in [
        (STRINGS_ROOT, true),
        (STRINGS_MEMORY, memory_nodes),
        (STRINGS_BOOTARGS, true),
        (STRINGS_TSC, tsc_khz.is_some()),
        (STRINGS_REG, rsdp_adds_reg),
    ] {
        if used {
            blob.put(part);
        }
    }
    Ok(blob.0)
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
        let nodes = parse(&build_fdt(&ram, ARGS, None, None).unwrap());
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
        let nodes = parse(
            &build_fdt(
                &[Region::new(0x10_0000, 0x800_0000)],
                "",
                Some(2_999_999),
                None,
            )
            .unwrap(),
        );
        let tsc = node(&nodes, "/hermit,tsc");
        assert_eq!(tsc.props.len(), 1);
        assert_eq!(tsc.prop("khz"), Some(&2_999_999u32.to_be_bytes()[..]));
        assert_eq!(node(&nodes, "/chosen").prop("bootargs"), Some(&b"\0"[..]));
    }

    #[test]
    fn the_rsdp_copy_goes_to_hermit_rsdp() {
        let rsdp = Region::new(0x12_3450, 0x12_3474);
        let blob = build_fdt(&[Region::new(0x10_0000, 0x800_0000)], "", None, Some(rsdp)).unwrap();
        let nodes = parse(&blob);
        let found = node(&nodes, "/hermit,rsdp@123450");
        assert_eq!(found.prop("reg"), Some(reg(0x12_3450, 0x24).as_slice()));
        // Without memory nodes `reg` is added to the strings block for it.
        let bare = parse(&build_fdt(&[], "", Some(1), Some(rsdp)).unwrap());
        let found = node(&bare, "/hermit,rsdp@123450");
        assert_eq!(found.prop("reg"), Some(reg(0x12_3450, 0x24).as_slice()));
    }

    #[test]
    fn refuses_a_command_line_with_nul() {
        assert_eq!(
            build_fdt(&[], "a\0b", None, None),
            Err(LoadError::BadMultiboot {
                what: "the command line contains a NUL byte"
            })
        );
    }

    /// The same tree built with vm-fdt, the general-purpose writer this one replaces.
    fn reference(
        ram: &[Region],
        bootargs: &str,
        tsc_khz: Option<u32>,
        rsdp: Option<Region>,
    ) -> Vec<u8> {
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
        if let Some(rsdp) = rsdp {
            let node = fdt
                .begin_node(&format!("hermit,rsdp@{:x}", rsdp.start))
                .unwrap();
            fdt.property_array_u64("reg", &[rsdp.start, rsdp.len()])
                .unwrap();
            fdt.end_node(node).unwrap();
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
            rsdp in proptest::option::of((1u64..1 << 40, 20u64..37)),
        ) {
            let ram: Vec<Region> = regions.iter().map(|&(s, l)| Region::new(s, s + l)).collect();
            let rsdp = rsdp.map(|(s, l)| Region::new(s, s + l));
            proptest::prop_assert_eq!(
                build_fdt(&ram, &bootargs, khz, rsdp).unwrap(),
                reference(&ram, &bootargs, khz, rsdp)
            );
        }
    }
}
