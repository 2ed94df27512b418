//! Group `fdt` (not for entry version 2, which has no device tree): the FDT's
//! header, structure, one memory node per usable MBI region, `/chosen/bootargs`,
//! and the TSC frequency in `/hermit,tsc` when the loader put it there.

use super::memory::{Regions, MAX_REGIONS};
use super::verdict::{check, fail};
use super::Context;
use crate::emit;
use crate::fdt;
use crate::report::{self, Dec, Esc, Group, Hex};

/// Largest FDT the kernels accept.
const FDT_MAX: u64 = 1 << 20;

/// Reads the device tree the boot info points at and checks it against the MBI's
/// usable regions and the command line.
pub(super) fn run(ctx: &mut Context, cmdline: &[u8], regions: &Regions) {
    const G: Group = Group::Fdt;
    let bi = ctx.boot_info;
    let addr = bi.device_tree;
    let head = ctx.read("fdt-mapped", addr, fdt::HEADER_LEN as u64);
    let header = fdt::Header::parse(head)
        .unwrap_or_else(|e| fail(G, "fdt-header", &|s| emit!(s, e.describe())));
    let size = u64::from(header.totalsize);
    check(
        size >= fdt::HEADER_LEN as u64 && size <= FDT_MAX,
        G,
        "fdt-header",
        &|s| emit!(s, "totalsize ", Hex(size)),
    );
    check(addr + size <= bi.image_start, G, "fdt-below-image", &|s| {
        emit!(
            s,
            "FDT ",
            Hex(addr),
            "+",
            Hex(size),
            " is not below the image"
        )
    });
    let blob = ctx.read("fdt-mapped", addr, size);
    let structure =
        |e: fdt::FdtError| -> ! { fail(G, "fdt-structure", &|s| emit!(s, e.describe())) };
    let tree = fdt::Fdt::new(blob).unwrap_or_else(|e| structure(e));

    let usable = regions.as_slice();
    let mut found = [(0u64, 0u64); MAX_REGIONS];
    let mut n = 0;
    let out = &mut ctx.out;
    let count = tree
        .memory(&mut |start, size| {
            let end = start.saturating_add(size);
            report::fact_range(out, "fdt-mem", start, end);
            if n < MAX_REGIONS {
                found[n] = (start, end);
                n += 1;
            }
        })
        .unwrap_or_else(|e| structure(e));
    check(count == usable.len(), G, "fdt-memory", &|s| {
        emit!(
            s,
            Dec(count as u64),
            " memory nodes for ",
            Dec(usable.len() as u64)
        );
        emit!(s, " usable MBI regions")
    });
    // Every usable MBI region must have its own memory node; the order is free.
    let mut used = [false; MAX_REGIONS];
    for &(start, end) in usable {
        let slot = (0..n).find(|&i| !used[i] && found[i] == (start, end));
        let Some(i) = slot else {
            fail(G, "fdt-memory", &|s| {
                emit!(s, "no memory node for ", Hex(start), "-", Hex(end))
            })
        };
        used[i] = true;
    }

    let bootargs = tree
        .child_property(b"chosen", b"bootargs")
        .unwrap_or_else(|e| structure(e))
        .map(fdt::string_value);
    check(
        bootargs == Some(cmdline),
        G,
        "fdt-bootargs",
        &|s| match bootargs {
            Some(b) => emit!(s, "/chosen/bootargs is \"", Esc(b), "\""),
            None => emit!(s, "/chosen/bootargs is missing"),
        },
    );
    // The TSC frequency the loader hands kernels 0.11+ (optional).
    let tsc = tree
        .child_property(b"hermit,tsc", b"khz")
        .unwrap_or_else(|e| structure(e));
    if let Some(khz) = tsc {
        let khz: [u8; 4] = khz
            .try_into()
            .unwrap_or_else(|_| fail(G, "fdt-tsc", &|s| emit!(s, "khz is not one cell")));
        report::fact_dec(
            &mut ctx.out,
            "fdt-tsc-khz",
            u64::from(u32::from_be_bytes(khz)),
        );
    }
    // The ACPI RSDP the loader names for kernels 0.11+ (under UEFI): a valid one.
    if let Some(reg) = rsdp_node(&tree).unwrap_or_else(|e| structure(e)) {
        let reg = reg.unwrap_or_else(|| {
            fail(G, "fdt-rsdp", &|s| {
                emit!(s, "/hermit,rsdp has no reg address")
            })
        });
        let bytes = ctx.read("fdt-mapped", reg, 36);
        check(
            crate::acpi::valid_rsdp(bytes).is_some(),
            G,
            "fdt-rsdp",
            &|s| {
                emit!(
                    s,
                    "/hermit,rsdp points at ",
                    Hex(reg),
                    ", which holds no valid RSDP"
                )
            },
        );
        report::fact_hex(&mut ctx.out, "fdt-rsdp", reg);
    }
    report::passed(&mut ctx.out, "fdt");
}

/// `/hermit,rsdp@...` (or `/hermit,rsdp`), if the tree has it: its first `reg`
/// address (two cells), `None` inside when it has none.
fn rsdp_node(tree: &fdt::Fdt) -> Result<Option<Option<u64>>, fdt::FdtError> {
    let mut node = None;
    let mut inside = false;
    tree.tokens(&mut |depth, token| match (depth, token) {
        (1, fdt::Token::Begin(name)) => {
            inside = name == b"hermit,rsdp" || name.starts_with(b"hermit,rsdp@");
            if inside && node.is_none() {
                node = Some(None);
            }
        }
        (1, fdt::Token::End) => inside = false,
        (1, fdt::Token::Prop { name, value }) if inside && name == b"reg" => {
            if let (Some(None), Some(address)) = (node, value.get(..8)) {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(address);
                node = Some(Some(u64::from_be_bytes(bytes)));
            }
        }
        _ => {}
    })?;
    Ok(node)
}
