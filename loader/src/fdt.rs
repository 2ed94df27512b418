//! The flattened device tree (FDT) handed to the kernel.
//!
//! Kernels 0.7–0.10 read the memory map from the FDT (falling back to the MBI) and
//! kernels 0.11 and later require it. The tree has the shape upstream Multiboot
//! loaders build: a root compatible with `hermit,multiboot`, one `memory@<start>`
//! node per usable RAM region, and `/chosen/bootargs` with the full command line.
//! When the loader already knows the TSC frequency it adds `/hermit,tsc` with `khz`,
//! which kernels 0.11+ use instead of measuring the frequency themselves.

use alloc::format;
use alloc::vec::Vec;

use vm_fdt::FdtWriter;

use crate::error::LoadError;
use crate::layout::Region;

/// Maps a device-tree writer error to the loader's error.
fn fdt_error(error: vm_fdt::Error) -> LoadError {
    let what = match error {
        // The command line comes from a NUL-terminated Multiboot string, so a NUL
        // inside it means the caller passed something else.
        vm_fdt::Error::InvalidString => {
            return LoadError::BadMultiboot {
                what: "the command line contains a NUL byte",
            }
        }
        vm_fdt::Error::TotalSizeTooLarge | vm_fdt::Error::PropertyValueTooLarge => {
            "the tree exceeds the 4 GiB limit of the format"
        }
        vm_fdt::Error::InvalidNodeName => "a node name is invalid",
        vm_fdt::Error::InvalidPropertyName => "a property name is invalid",
        _ => "the tree writer was used out of order",
    };
    LoadError::FdtBuild { what }
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
    let mut fdt = FdtWriter::new().map_err(fdt_error)?;
    let root = fdt.begin_node("").map_err(fdt_error)?;
    fdt.property_string("compatible", "hermit,multiboot")
        .map_err(fdt_error)?;
    fdt.property_u32("#address-cells", 2).map_err(fdt_error)?;
    fdt.property_u32("#size-cells", 2).map_err(fdt_error)?;

    for region in ram.iter().filter(|r| !r.is_empty()) {
        let node = fdt
            .begin_node(&format!("memory@{:x}", region.start))
            .map_err(fdt_error)?;
        fdt.property_string("device_type", "memory")
            .map_err(fdt_error)?;
        fdt.property_array_u64("reg", &[region.start, region.len()])
            .map_err(fdt_error)?;
        fdt.end_node(node).map_err(fdt_error)?;
    }

    let chosen = fdt.begin_node("chosen").map_err(fdt_error)?;
    fdt.property_string("bootargs", bootargs)
        .map_err(fdt_error)?;
    fdt.end_node(chosen).map_err(fdt_error)?;

    if let Some(khz) = tsc_khz {
        let tsc = fdt.begin_node("hermit,tsc").map_err(fdt_error)?;
        fdt.property_u32("khz", khz).map_err(fdt_error)?;
        fdt.end_node(tsc).map_err(fdt_error)?;
    }

    fdt.end_node(root).map_err(fdt_error)?;
    fdt.finish().map_err(fdt_error)
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
}
