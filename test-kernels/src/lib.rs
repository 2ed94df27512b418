//! Hermit-ABI test kernels: small kernels that a loader boots like a Hermit app and
//! that check, from the inside, everything the loader handed over.
//!
//! The library holds the shared code. Its pure parts (boot-info, MBI, ELF and FDT
//! decoding, command-line splitting, page-table walking and the paging rules, the TLS
//! layout, the output protocol) are unit-tested on the host with
//! `cargo test -p test-kernels --lib`. The hardware parts live in [`arch`] (the only
//! modules with `unsafe`), and the run of checks in `checks` (one file per check
//! group), which exists only with the `bare-metal` feature that the kernel binaries
//! are built with. `checks` uses `arch`, never the other way round.
//!
//! # The kernels
//!
//! | binary | ELF | notes | TLS | paging rules checked |
//! | --- | --- | --- | --- | --- |
//! | `hello-dyn` | `ET_DYN` static PIE | HERMIT (entry version 4), GNU ABI tag {6, 0, 13, 0} | yes | newer kernels (0.11+) |
//! | `legacy-dyn` | `ET_DYN` static PIE; then checks every relocation of its own table (`checks::relocations::table`) | HERMIT (entry version 4) only | no | older kernels (0.6–0.10) |
//! | `legacy-v2` | `ET_DYN` static PIE | HERMIT (entry version 2, kernel 0.6.0) only | yes | older kernels (0.6–0.10); boot info without device tree, no FDT checks |
//! | `hello-exec` | `ET_EXEC` at 0x800000 | HERMIT (entry version 4) only | yes | older kernels (0.6–0.10) |
//! | `big-dyn` | `ET_DYN` static PIE, 576 KiB of data and 2304 more relocations ([`bulk`]) | as `hello-dyn` | yes | newer kernels (0.11+) |
//! | `calibrating` | `ET_DYN` static PIE; then finds its TSC frequency like Hermit 0.6–0.10 ([`frequency`]) | HERMIT (entry version 3, kernels 0.6.1–0.6.9) only | yes | older kernels (0.6–0.10) |
//!
//! | `crashing` | `ET_DYN` static PIE; fails on purpose after the hand-over as its argument says ([`crash`]) | HERMIT (entry version 4) only | no | none: it checks nothing |
//!
//! `hello-exec` carries no ABI tag: position-dependent kernels at 0x800000 are what
//! the older generation looks like, so the loader must treat it as one.
//!
//! # Output protocol
//!
//! Everything goes to COM1 (0x3f8), one line at a time, `\n`-terminated. After the
//! first fact, `tk: kernel=<name>`, every kernel but `crashing` prints a kernel log
//! shaped like a real Hermit kernel's of its generation ([`hermit_log`]: log
//! records, a record of several lines, blank records, banners, a C runtime line),
//! then `hello-dyn` its greeting, the application's first line, without prefix;
//! `calibrating` prints Hermit's warning "[0][WARN] Could not determine the
//! processor frequency! Guess a frequency of 2Ghz!" when it had to guess (`crashing`
//! prints the older log after its `tk: crashing=<mode>` line). Every other line
//! starts with `tk: `:
//!
//! - `tk: <key>=<value>`: a fact. Numbers are lowercase hexadecimal with `0x` and no
//!   padding; ranges are `<start>-<end>` with the end exclusive. Byte strings (the
//!   command line, arguments) are written as is, except that bytes outside
//!   0x20..=0x7e and the backslash become `\xNN`. Facts, in the order printed:
//!   `kernel=<name>`, `efer=`, `bootinfo=<address>`, `image=<start>-<end>`,
//!   `tls=<start>,<filesz>,<memsz>,<align>`, `fdt=<address>`, `mbi=<address>`,
//!   `serial=`, `platform=`, `phys=<start>-<end>`, `osabi=`, `bias=<load bias>`,
//!   `stack=<low>-<high>`, `mbi-flags=`, `cmdline-addr=`, `cmdline=<exact command
//!   line>`, `args=<application arguments after "--", space-separated>`,
//!   `mem=<start>-<end>` per usable (type 1) MBI memory-map region,
//!   `fdt-mem=<start>-<end>` per FDT memory node, `fdt-rsdp=` (when the device
//!   tree has `/hermit,rsdp`), `fs-base=` (kernels with TLS),
//!   `cr3=`, `page-tables=<n> pages-4k=<n> pages-2m=<n> pages-1g=<n>` (counts in
//!   decimal), `rsdp=`, `rsdp-source=ebda|bios-area`, `rsdp-revision=`, then the facts of the kernel's own extra group (`big-dyn`:
//!   `bulk=<start>-<end>` and `bulk-pointers=<n>` in decimal; `calibrating`:
//!   `freq_source=cmdline|pit|guess`, `freq_mhz=<MHz>` and `calibration_us=<µs the
//!   detection took, by the TSC and the frequency found>`, in decimal), and
//!   `stack-used=` (the kernel's own deepest stack use). Later facts are missing if
//!   an earlier check failed.
//! - `tk: check=<group>` after each group of checks passed.
//! - `tk: ok` last, then the kernel writes 1 to port 0xf4 (QEMU exits with 3).
//! - `tk: FAIL <check>: <detail>` on the first failed check, then the kernel writes its
//!   group's value to port 0xf4 (QEMU exits with `value * 2 + 1`).
//!
//! # Exit values
//!
//! | value | QEMU status | group | checks |
//! | --- | --- | --- | --- |
//! | 1 | 3 | success | — |
//! | 2 | 5 | bootinfo | `bootinfo-pointer` (rdi non-zero, 8-aligned), `serial-port` (0x3f8), `platform` (0 = Multiboot), `phys-range` (0, 0), `mbi-address`, `fdt-address` (non-zero; entry version 2 has no such field), `image-range` (non-empty), `bootinfo-below-image` |
//! | 3 | 7 | cpu-state | `rsi-zero`, `interrupts-off` (RFLAGS.IF), `long-mode` (CR0.PE/PG, CR4.PAE, EFER.LME/LMA) |
//! | 4 | 9 | stack | `stack-aligned` (rsp at entry 4 KiB aligned), `stack-zeroed` (the 32 KiB not yet used by the kernel), `stack-below-image`, `stack-headroom` (the kernel itself left 8 KiB of the stack unused) |
//! | 5 | 11 | image | `image-start` (= the kernel's own ELF header, `__ehdr_start`), `elf-header`, `elf-type`, `image-placement` (`ET_DYN`: non-zero 2 MiB boundary; `ET_EXEC`: 0x800000, no bias), `image-range` (= first `PT_LOAD` .. end of the last, moved by the bias; end may be rounded up to 4 KiB), `own-code-in-image`, `entry-point` (e_entry + bias = `_start`), `data-copied` (a `.data` static); big-dyn: `bulk-data-copied` (every word of its bulk data) |
//! | 6 | 13 | relocation | `relocated-early` (checked in `_start` before any call, reported with port I/O alone: Rust code calls through the GOT, so it cannot run without relocations), `relocated-pointer`, `relocated-slice`, `relocated-fn-table` (statics holding addresses equal the addresses taken PC-relative); legacy-dyn (its extra group `relocation-table`): `relocated-all` (every `R_X86_64_RELATIVE` slot of its own `DT_RELA` table holds bias + addend); big-dyn: `relocated-bulk-table` (each of its 2304 references points at its word) |
//! | 7 | 15 | bss | `bss-zeroed` (a 64 KiB static), `bss-writable` |
//! | 8 | 17 | tls | `tls-fields` (boot info = `PT_TLS` moved by the bias, or zeros without TLS), `tls-layout`, `tls-offsets`, `tls-fs-self`, `tls-fs-data`, `tls-fs-bss`, `tls-fs-write` (FS base on a variant II block built from the boot info's TLS image) |
//! | 9 | 19 | cmdline | `cmdline-pointer`, `mbi-cmdline-flag`, `cmdline-terminated`, `cmdline-matches-mbi` (boot info bytes = the MBI's NUL-terminated command line), `cmdline-below-image`; calibrating: `freq-arg` (a `-freq` without a `u16` value) |
//! | 10 | 21 | memory | `mbi-below-image`, `mbi-header`, `mmap-flag`, `mmap-entries`, `mmap-usable`, `image-in-usable-ram` |
//! | 11 | 23 | fdt (not for entry version 2) | `fdt-header` (magic, version, size), `fdt-below-image`, `fdt-structure`, `fdt-memory` (one memory node per usable MBI region, same range), `fdt-bootargs` (= the command line) |
//! | 12 | 25 | paging | `bootinfo-mapped`, `image-mapped` (writable), `stack-mapped` (writable), `mbi-mapped`, `mmap-mapped`, `cmdline-mapped`, `fdt-mapped` (each identity-mapped; also used when a read finds a page missing), `pml4-ps-bit`, `nx-without-nxe`, `page-0-unmapped`, `ebda-unmapped` (0x9f000 and the page at the end of low RAM), `bios-area-unmapped` (0xe0000–0xfffff, no large page either), `smp-trampoline-4k` (no large page covers 0x8000); newer: `tables-identity-mapped` (also, for every kernel, a page fault on the PML4's own page: these kernels read their tables through the identity map), `no-1gib-pages`; older: `recursive-pml4` (`PML4[511]` → PML4, present, writable), `recursive-read` (0xffff_ffff_ffff_f000 reads the PML4), `nothing-above-image` (nothing from the image end rounded up to 2 MiB to the end of the lower half) |
//! | 13 | 27 | panic | `panic` (a Rust panic in the kernel) |
//! | 14 | 29 | exception | `exception` (a CPU exception: vector, error code, rip, rsp, cr2) |
//! | 15 | 31 | acpi | `low-memory-mappable` (the first 2 MiB mapped through a table of 4 KiB pages, where the scan maps low memory for itself), `rsdp-found` (a valid RSDP in the EBDA the word at 0x40E names, or in 0xe0000–0xfffff, as kernels 0.6–0.10 find it) |
//!
//! Value 0 is unused; 0x10 and above belong to the loader.
//!
//! # Building
//!
//! `cargo xtask build` builds the kernels into `target/test-kernels/<profile>/`; the
//! flags, the target and the post-link `EI_OSABI` patch are defined once, in
//! `xtask/src/build.rs`. `xtask/tests/kernel_images.rs` checks the ELF shape of each
//! (type, notes, `PT_TLS`, relocation kinds).

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// A failure carries its message inline (there is no allocator to box it in), so the
// `Err` of a check is a few hundred bytes. It is built at most once per run, on the
// way out: the size costs nothing worth an indirection.
#![allow(clippy::result_large_err)]

pub mod acpi;
pub mod arch;
pub mod bootinfo;
pub mod bulk;
#[cfg(feature = "bare-metal")]
pub mod checks;
pub mod cmdline;
pub mod crash;
pub mod elf;
pub mod fdt;
pub mod frequency;
pub mod hermit_log;
pub mod mbi;
pub mod notes;
pub mod paging;
pub mod report;
pub mod tls;
