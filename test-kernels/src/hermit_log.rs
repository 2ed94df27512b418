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

/// The log of a kernel 0.6–0.10, its lines each ended by a line break: one string,
/// not a table of them (a table of string slices costs the demo app relocations,
/// which the loader's instruction budget counts).
pub const OLDER: &str = concat!(
    "[0][INFO] Welcome to Hermit 0.6.9 (a test kernel's log, shaped like that kernel's)\n",
    "[0][INFO] Kernel starts at 800000\n",
    "[0][INFO] BSS starts at 0x89b680\n",
    "[0][INFO] tls_info = Some(\n",
    "    TlsInfo {\n",
    "        start: 0x8906f8,\n",
    "        filesz: 0x20,\n",
    "        memsz: 0x81,\n",
    "        align: 0x8,\n",
    "    },\n",
    ")\n",
    "[0][INFO] Total memory size: 53 MB\n",
    "[0][INFO] \n",
    "[0][INFO] ===================== PHYSICAL MEMORY FREE LIST ======================\n",
    "[0][INFO] 0x0000000000A00000 - 0x0000000003FE0000\n",
    "[0][INFO] ======================================================================\n",
    "[0][INFO] \n",
    "[0][INFO] Hermit is running on common system!\n",
    "[0][WARN] Unable to read entropy! Fallback to a naive implementation!\n",
    "LwIP intialized\n",
);

/// The log of a kernel 0.11 or later, as [`OLDER`] (`\x1b[...m`: the level's
/// colour and its end).
pub const NEWER: &str = concat!(
    "[            ][0][\x1b[32mINFO \x1b[0m hermit    ] Welcome to Hermit 0.13.0 (a test kernel's log, shaped like that kernel's)\n",
    "[            ][0][\x1b[32mINFO \x1b[0m hermit    ] Kernel starts at 0x800000\n",
    "[            ][0][\x1b[32mINFO \x1b[0m hermit    ] tls_info = Some(\n",
    "    TlsInfo {\n",
    "        start: 0x81f000,\n",
    "        filesz: 0x20,\n",
    "        memsz: 0x50,\n",
    "        align: 0x10,\n",
    "    },\n",
    ")\n",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] \n",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] ===================== PHYSICAL MEMORY FREE LIST ======================\n",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] 0x0000000000A00000 - 0x0000000003FE0000\n",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] ======================================================================\n",
    "[            ][0][\x1b[32mINFO \x1b[0m physicalmem] \n",
    "[    0.001234][0][\x1b[32mINFO \x1b[0m processor ] Timer runs: 2800 MHz\n",
    "[    0.001512][0][\x1b[33mWARN \x1b[0m entropy   ] Unable to read entropy! Fallback to a naive implementation!\n",
);

/// Writes `log`.
pub fn write(sink: &mut dyn Sink, log: &str) {
    sink.bytes(log.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_a_record_a_continuation_or_the_c_runtimes() {
        for log in [OLDER, NEWER] {
            let lines: Vec<&str> = log.lines().collect();
            assert!(log.ends_with('\n') && lines[0].starts_with('['));
            let continuations = lines.iter().filter(|l| !l.starts_with('[')).count();
            assert!(continuations >= 7, "a {{:#?}} record spans lines");
            assert!(
                lines.contains(&"    TlsInfo {"),
                "indented as {{:#?}} writes it"
            );
            assert!(lines.iter().any(|l| l.ends_with("] ")), "an empty record");
            assert!(lines.iter().any(|l| l.ends_with("=====")), "a banner");
        }
        assert_eq!(OLDER.lines().last(), Some("LwIP intialized"));
        let mut out = Vec::new();
        write(&mut out, OLDER);
        assert!(out.starts_with(
            b"[0][INFO] Welcome to Hermit 0.6.9 (a test kernel's log, shaped like that kernel's)\n[0][INFO] Kernel starts at 800000\n"
        ));
    }
}
