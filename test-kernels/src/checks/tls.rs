//! Group `tls`: the boot info's TLS fields (`PT_TLS` moved by the load bias, or
//! zeros without TLS), and for a kernel with TLS a variant II block built from them
//! and used through FS, as a Hermit kernel does.

use super::image::Own;
use super::verdict::{check, check_eq, fail, unmapped};
use super::Context;
use crate::arch::memory::mapped_bytes;
use crate::arch::tls::{fs_read, fs_write, install_tls, tls_area_read};
use crate::emit;
use crate::report::{self, Group, Hex};
use crate::tls::TDATA_WORDS;

/// Checks the boot info's TLS fields against `PT_TLS` and, for a kernel with TLS,
/// builds its TLS block from them and uses it through FS.
pub(super) fn run(ctx: &mut Context, own: &Own) {
    const G: Group = Group::Tls;
    let bi = ctx.boot_info;
    let want = own.segments.tls_fields(own.bias);
    let got = bi.tls;
    check(got == want, G, "tls-fields", &|s| {
        emit!(
            s,
            "boot info has ",
            Hex(got.start),
            ",",
            Hex(got.filesz),
            ","
        );
        emit!(
            s,
            Hex(got.memsz),
            ",",
            Hex(got.align),
            "; PT_TLS says ",
            Hex(want.start),
            ","
        );
        emit!(
            s,
            Hex(want.filesz),
            ",",
            Hex(want.memsz),
            ",",
            Hex(want.align)
        )
    });
    let Some(offsets) = ctx.spec.tls else {
        // A kernel without TLS: the fields must be zero, which the comparison with
        // the (absent) PT_TLS above has shown.
        check(own.segments.tls.is_none(), G, "tls-fields", &|s| {
            emit!(s, "a kernel without TLS has PT_TLS")
        });
        report::passed(&mut ctx.out, "tls");
        return;
    };
    // The kernel's own TLS is 16 bytes of .tdata and 64 of .tbss (see tls_image!).
    check(got.memsz >= 80 && got.filesz >= 16, G, "tls-fields", &|s| {
        emit!(s, "PT_TLS is smaller than the kernel's TLS")
    });
    let inside = got.start >= bi.image_start && got.start + got.filesz <= bi.image_end;
    check(inside, G, "tls-fields", &|s| {
        emit!(s, "TLS image at ", Hex(got.start), " is outside the image")
    });
    let image =
        mapped_bytes(got.start, got.filesz).unwrap_or_else(|va| unmapped("image-mapped", va));
    let Some(layout) = install_tls(image, got.memsz, got.align) else {
        fail(G, "tls-layout", &|s| {
            emit!(
                s,
                "memsz ",
                Hex(got.memsz),
                " align ",
                Hex(got.align),
                " do not fit"
            )
        })
    };
    report::fact_hex(&mut ctx.out, "fs-base", layout.thread_pointer);

    let offsets = offsets();
    let block_len = (layout.thread_pointer - layout.block) as i64;
    let in_block = |o: i64| o >= -block_len && o + 8 <= 0;
    check(
        in_block(offsets.data) && in_block(offsets.bss),
        G,
        "tls-offsets",
        &|s| {
            emit!(
                s,
                "offsets ",
                Hex(offsets.data as u64),
                ", ",
                Hex(offsets.bss as u64)
            );
            emit!(s, " are outside the block")
        },
    );
    check_eq(G, "tls-fs-self", "fs:0", fs_read(0), layout.thread_pointer);
    let first = fs_read(offsets.data);
    check_eq(
        G,
        "tls-fs-data",
        "first .tdata word via fs",
        first,
        TDATA_WORDS[0],
    );
    let second = fs_read(offsets.data + 8);
    check_eq(
        G,
        "tls-fs-data",
        "second .tdata word via fs",
        second,
        TDATA_WORDS[1],
    );
    check_eq(
        G,
        "tls-fs-bss",
        ".tbss word via fs",
        fs_read(offsets.bss),
        0,
    );
    let pattern = 0x7b55_0000_0000_7b55;
    fs_write(offsets.bss, pattern);
    let landed = tls_area_read(layout.thread_pointer.wrapping_add(offsets.bss as u64));
    check(landed == Some(pattern), G, "tls-fs-write", &|s| {
        emit!(s, "a write through fs did not land in the TLS block")
    });
    report::passed(&mut ctx.out, "tls");
}
