//! A kernel log shaped like a real Hermit kernel's, which the test kernels print
//! after their first line and before the application's first line, so that the
//! reports' "first application line" is tested on the shapes real kernels write
//! (`trace_decoder::decode::text_lines` says the rule): records of Hermit's kernel
//! logger in each generation's format, a record spanning several lines (Rust's
//! `{:#?}`), records with an empty message, banners, and a line of the C runtime
//! without prefix.
//!
//! - [`OLDER`], kernels 0.6–0.10: `[{core_id}][{level}] {message}` (Hermit 0.6.x
//!   wrote the level plain; the sample is a 0.6.9 kernel's start).
//! - [`NEWER`], kernels 0.11 and later: a time field first, blank until the
//!   kernel's timer runs, the level coloured with ANSI escapes (anstyle, unless the
//!   kernel was built with `NO_COLOR`), padded to five characters, and the logging
//!   module after it: `[{time:>12}][{core_id}][{level:<5} {module:<10}] {message}`.
//!
//! Only the shape matters: the numbers are a real boot's, not this one's.

#![forbid(unsafe_code)]

use crate::report::Sink;

/// The log of a kernel 0.6–0.10, line by line.
pub const OLDER: &[&str] = &[
    "[0][INFO] Welcome to Hermit 0.6.9 (a test kernel's log, shaped like that kernel's)",
    "[0][INFO] Kernel starts at 800000",
    "[0][INFO] BSS starts at 0x89b680",
    "[0][INFO] tls_info = Some(",
    "    TlsInfo {",
    "        start: 0x8906f8,",
    "        filesz: 0x20,",
    "        memsz: 0x81,",
    "        align: 0x8,",
    "    },",
    ")",
    "[0][INFO] Total memory size: 53 MB",
    "[0][INFO] ",
    "[0][INFO] ===================== PHYSICAL MEMORY FREE LIST ======================",
    "[0][INFO] 0x0000000000A00000 - 0x0000000003FE0000",
    "[0][INFO] ======================================================================",
    "[0][INFO] ",
    "[0][INFO] Hermit is running on common system!",
    "[0][WARN] Unable to read entropy! Fallback to a naive implementation!",
    "LwIP intialized",
];

/// The log of a kernel 0.11 or later, line by line (`\x1b[...m`: the level's
/// colour and its end).
pub const NEWER: &[&str] = &[
    "[            ][0][\x1b[32mINFO \x1b[0m hermit    ] Welcome to Hermit 0.13.0 (a test kernel's log, shaped like that kernel's)",
    "[            ][0][\x1b[32mINFO \x1b[0m hermit    ] Kernel starts at 0x800000",
    "[            ][0][\x1b[32mINFO \x1b[0m hermit    ] tls_info = Some(",
    "    TlsInfo {",
    "        start: 0x81f000,",
    "        filesz: 0x20,",
    "        memsz: 0x50,",
    "        align: 0x10,",
    "    },",
    ")",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] ",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] ===================== PHYSICAL MEMORY FREE LIST ======================",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] 0x0000000000A00000 - 0x0000000003FE0000",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] ======================================================================",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] ",
    "[    0.001234][0][\x1b[32mINFO \x1b[0m processor ] Timer runs: 2800 MHz",
    "[    0.001512][0][\x1b[33mWARN \x1b[0m entropy   ] Unable to read entropy! Fallback to a naive implementation!",
];

/// Writes `lines`, each ended by a line break.
pub fn write(sink: &mut dyn Sink, lines: &[&str]) {
    for line in lines {
        sink.bytes(line.as_bytes());
        sink.bytes(b"\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_record_a_continuation_or_the_c_runtimes() {
        for log in [OLDER, NEWER] {
            assert!(log[0].starts_with('['));
            let continuations = log.iter().filter(|l| !l.starts_with('[')).count();
            assert!(continuations >= 7, "a {{:#?}} record spans lines");
            assert!(log.iter().any(|l| l.ends_with("] ")), "an empty record");
            assert!(log.iter().any(|l| l.ends_with("=====")), "a banner");
        }
        assert_eq!(OLDER.last(), Some(&"LwIP intialized"));
        let mut out = Vec::new();
        write(&mut out, &OLDER[..2]);
        assert_eq!(
            out,
            b"[0][INFO] Welcome to Hermit 0.6.9 (a test kernel's log, shaped like that kernel's)\n[0][INFO] Kernel starts at 800000\n"
        );
    }
}
