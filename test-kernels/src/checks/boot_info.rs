//! Group `bootinfo`: the boot-info pointer in rdi and the fields every kernel
//! relies on. It runs before there is a [`super::Context`], whose boot info it
//! provides.

use super::verdict::{check, check_eq};
use super::{read_mapped, Spec};
use crate::arch::cpu::cr3;
use crate::arch::entry::EntryState;
use crate::arch::memory::IdentityTables;
use crate::arch::serial::Serial;
use crate::bootinfo::{self, BootInfo};
use crate::emit;
use crate::report::{self, Group, Hex};

/// Reads the boot info at rdi in the layout of the kernel's entry version, prints
/// its fields and checks them.
pub(super) fn run(spec: &Spec, entry: &EntryState, out: &mut Serial) -> BootInfo {
    const G: Group = Group::BootInfo;
    let addr = entry.boot_info;
    report::fact_hex(out, "bootinfo", addr);
    check(addr != 0, G, "bootinfo-pointer", &|s| emit!(s, "rdi is 0"));
    check(addr.is_multiple_of(8), G, "bootinfo-pointer", &|s| {
        emit!(s, Hex(addr), " is not 8-byte aligned")
    });
    // Only the bytes of this version's layout: a shorter one may end at a page end.
    let len = bootinfo::raw_size(spec.entry_version);
    let size = len as u64;
    let mut raw = [0u8; bootinfo::RAW_SIZE];
    let bytes = read_mapped(&IdentityTables, cr3(), "bootinfo-mapped", addr, size);
    raw[..len].copy_from_slice(bytes);
    let bi = BootInfo::parse(&raw, spec.entry_version);

    report::fact_range(out, "image", bi.image_start, bi.image_end);
    let tls = &bi.tls;
    emit!(out, "tk: tls=", Hex(tls.start), ",", Hex(tls.filesz), ",");
    emit!(out, Hex(tls.memsz), ",", Hex(tls.align), "\n");
    report::fact_hex(out, "fdt", bi.device_tree);
    report::fact_hex(out, "mbi", bi.mbi);
    report::fact_hex(out, "serial", u64::from(bi.serial_port));
    report::fact_hex(out, "platform", u64::from(bi.platform));
    report::fact_range(out, "phys", bi.phys_start, bi.phys_end);

    let serial = u64::from(bi.serial_port);
    check_eq(
        G,
        "serial-port",
        "serial port",
        serial,
        bootinfo::SERIAL_PORT.into(),
    );
    let platform = u64::from(bi.platform);
    check_eq(
        G,
        "platform",
        "platform tag",
        platform,
        bootinfo::PLATFORM_MULTIBOOT.into(),
    );
    check(
        bi.phys_start == 0 && bi.phys_end == 0,
        G,
        "phys-range",
        &|s| {
            emit!(
                s,
                "physical range ",
                Hex(bi.phys_start),
                "-",
                Hex(bi.phys_end)
            );
            emit!(s, ", want 0-0 (Multiboot)")
        },
    );
    check(bi.mbi != 0, G, "mbi-address", &|s| {
        emit!(s, "MBI address is 0")
    });
    check(
        bi.device_tree != 0 || spec.entry_version == 2,
        G,
        "fdt-address",
        &|s| emit!(s, "device tree address is 0"),
    );
    check(bi.image_start < bi.image_end, G, "image-range", &|s| {
        emit!(
            s,
            "image ",
            Hex(bi.image_start),
            "-",
            Hex(bi.image_end),
            " is empty"
        )
    });
    check(
        addr + size <= bi.image_start,
        G,
        "bootinfo-below-image",
        &|s| {
            emit!(
                s,
                "boot info ",
                Hex(addr),
                " is not below the image at ",
                Hex(bi.image_start)
            )
        },
    );
    report::passed(out, "bootinfo");
    bi
}
