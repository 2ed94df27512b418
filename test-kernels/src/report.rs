//! The line protocol the test kernels speak on the serial port, the check groups with
//! their exit values, and a small fixed-size message buffer.
//!
//! Everything here formats without `core::fmt` and without an allocator: a kernel whose
//! relocations were not applied would crash inside `core::fmt` (its vtables are
//! relocated pointers), and it must still be able to say what went wrong.

#![forbid(unsafe_code)]

/// A byte sink: the serial port on the target, a `Vec<u8>` in host tests, a [`Msg`]
/// when building a failure description.
pub trait Sink {
    /// Appends raw bytes.
    fn bytes(&mut self, bytes: &[u8]);
}

#[cfg(test)]
impl Sink for std::vec::Vec<u8> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Something that can be written to a [`Sink`]: string pieces, numbers, escaped bytes.
pub trait Part {
    /// Writes this part.
    fn put(&self, sink: &mut dyn Sink);
}

impl Part for &str {
    fn put(&self, sink: &mut dyn Sink) {
        sink.bytes(self.as_bytes());
    }
}

/// A number written as lowercase hexadecimal with a `0x` prefix and no padding.
#[derive(Clone, Copy, Debug)]
pub struct Hex(pub u64);

impl Part for Hex {
    fn put(&self, sink: &mut dyn Sink) {
        let mut digits = [0u8; 18];
        digits[0] = b'0';
        digits[1] = b'x';
        // Count the significant nibbles; zero still needs one digit.
        let nibbles = (64 - self.0.leading_zeros()).div_ceil(4).max(1) as usize;
        for i in 0..nibbles {
            let nibble = (self.0 >> (4 * (nibbles - 1 - i))) & 0xf;
            digits[2 + i] = HEX_DIGITS[nibble as usize];
        }
        sink.bytes(&digits[..2 + nibbles]);
    }
}

/// A number written in decimal.
#[derive(Clone, Copy, Debug)]
pub struct Dec(pub u64);

impl Part for Dec {
    fn put(&self, sink: &mut dyn Sink) {
        let mut digits = [0u8; 20];
        let mut value = self.0;
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        sink.bytes(&digits[start..]);
    }
}

/// Bytes written with the protocol's escaping: printable ASCII other than the
/// backslash goes out as is, every other byte as `\xNN`. This keeps one fact on one
/// line whatever the command line contains, and the host can undo it exactly.
#[derive(Clone, Copy, Debug)]
pub struct Esc<'a>(pub &'a [u8]);

impl Part for Esc<'_> {
    fn put(&self, sink: &mut dyn Sink) {
        let mut rest = self.0;
        while !rest.is_empty() {
            // Pass each run of plain bytes on in one call rather than byte by byte.
            let plain = rest.iter().take_while(|&&b| is_plain(b)).count();
            if plain > 0 {
                sink.bytes(&rest[..plain]);
                rest = &rest[plain..];
                continue;
            }
            let b = rest[0];
            sink.bytes(&[
                b'\\',
                b'x',
                HEX_DIGITS[usize::from(b >> 4)],
                HEX_DIGITS[usize::from(b & 0xf)],
            ]);
            rest = &rest[1..];
        }
    }
}

/// Whether a byte is written unescaped by [`Esc`].
pub const fn is_plain(b: u8) -> bool {
    matches!(b, 0x20..=0x7e) && b != b'\\'
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes parts to a sink in order: `emit!(sink, "tk: ", key, "=", Hex(v), "\n")`.
#[macro_export]
macro_rules! emit {
    ($sink:expr, $($part:expr),+ $(,)?) => {{
        let sink: &mut dyn $crate::report::Sink = $sink;
        $( $crate::report::Part::put(&$part, sink); )+
    }};
}

/// Builds a [`Msg`] from parts: `msg!("got ", Hex(a), ", want ", Hex(b))`.
#[macro_export]
macro_rules! msg {
    ($($part:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m = $crate::report::Msg::new();
        $( $crate::report::Part::put(&$part, &mut m); )*
        m
    }};
}

/// A bounded message: the detail of a failure. Text past the capacity is dropped
/// and the message ends in `...` so the truncation shows.
#[derive(Clone)]
pub struct Msg {
    buf: [u8; Msg::CAPACITY],
    len: usize,
    truncated: bool,
}

impl Msg {
    /// The most bytes a message keeps.
    pub const CAPACITY: usize = 240;

    /// An empty message.
    pub const fn new() -> Self {
        Msg {
            buf: [0; Msg::CAPACITY],
            len: 0,
            truncated: false,
        }
    }

    /// The message text (with `...` appended if it was cut).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Whether text was dropped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl Default for Msg {
    fn default() -> Self {
        Msg::new()
    }
}

impl core::fmt::Debug for Msg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(core::str::from_utf8(self.as_bytes()).unwrap_or("<non-UTF-8 message>"))
    }
}

impl Sink for Msg {
    fn bytes(&mut self, bytes: &[u8]) {
        if self.truncated {
            return;
        }
        // Keep room for the "..." marker so a cut message still says it was cut.
        let room = Msg::CAPACITY - 3 - self.len;
        if bytes.len() <= room {
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        } else {
            self.buf[self.len..self.len + room].copy_from_slice(&bytes[..room]);
            self.len += room;
            self.buf[self.len..self.len + 3].copy_from_slice(b"...");
            self.len += 3;
            self.truncated = true;
        }
    }
}

impl core::fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // Panic messages may hold any text: escape it like every other value.
        Esc(s.as_bytes()).put(self);
        Ok(())
    }
}

/// The value a kernel writes to the isa-debug-exit port when every check passed
/// (QEMU then exits with status 3).
pub const EXIT_SUCCESS: u32 = 1;

/// What QEMU's isa-debug-exit device makes of a value: `(value << 1) | 1`.
pub const fn qemu_status(value: u32) -> u32 {
    (value << 1) | 1
}

/// A group of checks; its exit value tells the host which kind of check failed even
/// if the serial output is lost. Values 0x10 and above belong to the loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// The boot info pointer and its fields.
    BootInfo,
    /// CPU state at entry: rsi, RFLAGS.IF, long mode and paging.
    CpuState,
    /// The 32 KiB boot stack: alignment, zeroed, mapped, below the image.
    Stack,
    /// The loaded image: ELF header in memory, placement, range, entry, `.data`.
    Image,
    /// Relocations applied (statics holding pointers).
    Relocation,
    /// `.bss` zeroed.
    Bss,
    /// The TLS fields of the boot info, and TLS working through FS.
    Tls,
    /// The command line (boot info versus MBI).
    Cmdline,
    /// The MBI and its memory map.
    Memory,
    /// The device tree.
    Fdt,
    /// The page tables.
    Paging,
    /// A Rust panic inside the kernel (a bug or an unexpected state).
    Panic,
    /// A CPU exception (page fault, general protection, ...).
    Exception,
    /// The ACPI RSDP where kernels 0.6–0.10 look for it.
    Acpi,
}

impl Group {
    /// Every group, in exit-value order.
    pub const ALL: [Group; 14] = [
        Group::BootInfo,
        Group::CpuState,
        Group::Stack,
        Group::Image,
        Group::Relocation,
        Group::Bss,
        Group::Tls,
        Group::Cmdline,
        Group::Memory,
        Group::Fdt,
        Group::Paging,
        Group::Panic,
        Group::Exception,
        Group::Acpi,
    ];

    /// The value written to port 0xf4 when a check of this group fails.
    pub const fn exit_value(self) -> u32 {
        match self {
            Group::BootInfo => 2,
            Group::CpuState => 3,
            Group::Stack => 4,
            Group::Image => 5,
            Group::Relocation => 6,
            Group::Bss => 7,
            Group::Tls => 8,
            Group::Cmdline => 9,
            Group::Memory => 10,
            Group::Fdt => 11,
            Group::Paging => 12,
            Group::Panic => 13,
            Group::Exception => 14,
            Group::Acpi => 15,
        }
    }

    /// The group's name as the documentation spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Group::BootInfo => "bootinfo",
            Group::CpuState => "cpu-state",
            Group::Stack => "stack",
            Group::Image => "image",
            Group::Relocation => "relocation",
            Group::Bss => "bss",
            Group::Tls => "tls",
            Group::Cmdline => "cmdline",
            Group::Memory => "memory",
            Group::Fdt => "fdt",
            Group::Paging => "paging",
            Group::Panic => "panic",
            Group::Exception => "exception",
            Group::Acpi => "acpi",
        }
    }
}

/// A failed check: its group (the exit value), its name and what was seen.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The group, which selects the exit value.
    pub group: Group,
    /// The check's name, e.g. `serial-port`.
    pub check: &'static str,
    /// What was found, e.g. `got 0x2f8, want 0x3f8`.
    pub detail: Msg,
}

/// The result of a check.
pub type Check = Result<(), Failure>;

/// Makes a failure.
pub fn failure(group: Group, check: &'static str, detail: Msg) -> Failure {
    Failure {
        group,
        check,
        detail,
    }
}

/// Fails with the detail built by `detail` unless `condition` holds. The closure keeps
/// the message from being built on the (usual) passing path.
pub fn ensure(
    condition: bool,
    group: Group,
    check: &'static str,
    detail: impl FnOnce() -> Msg,
) -> Check {
    if condition {
        Ok(())
    } else {
        Err(failure(group, check, detail()))
    }
}

/// Fails unless `got == want`, saying both in hex.
pub fn ensure_eq(group: Group, check: &'static str, what: &str, got: u64, want: u64) -> Check {
    ensure(got == want, group, check, || {
        msg!(what, " is ", Hex(got), ", want ", Hex(want))
    })
}

/// Writes `tk: <key>=<hex>`.
pub fn fact_hex(sink: &mut dyn Sink, key: &str, value: u64) {
    emit!(sink, "tk: ", key, "=", Hex(value), "\n");
}

/// Writes `tk: <key>=<decimal>`.
pub fn fact_dec(sink: &mut dyn Sink, key: &str, value: u64) {
    emit!(sink, "tk: ", key, "=", Dec(value), "\n");
}

/// Writes `tk: <key>=<hex start>-<hex end>` (end exclusive).
pub fn fact_range(sink: &mut dyn Sink, key: &str, start: u64, end: u64) {
    emit!(sink, "tk: ", key, "=", Hex(start), "-", Hex(end), "\n");
}

/// Writes `tk: <key>=<escaped bytes>`.
pub fn fact_bytes(sink: &mut dyn Sink, key: &str, value: &[u8]) {
    emit!(sink, "tk: ", key, "=", Esc(value), "\n");
}

/// Writes `tk: check=<name>` after a check passed, so a log shows how far a kernel got.
pub fn passed(sink: &mut dyn Sink, check: &str) {
    emit!(sink, "tk: check=", check, "\n");
}

/// Writes the closing `tk: ok`.
pub fn ok(sink: &mut dyn Sink) {
    emit!(sink, "tk: ok\n");
}

/// Writes `tk: FAIL <check>: <detail>`.
pub fn fail_line(sink: &mut dyn Sink, failure: &Failure) {
    emit!(sink, "tk: FAIL ", failure.check, ": ");
    sink.bytes(failure.detail.as_bytes());
    emit!(sink, "\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> std::string::String {
        let mut out = Vec::new();
        f(&mut out);
        std::string::String::from_utf8(out).unwrap()
    }

    #[test]
    fn hex_has_prefix_and_no_padding() {
        assert_eq!(text(|s| emit!(s, Hex(0))), "0x0");
        assert_eq!(text(|s| emit!(s, Hex(0x3f8))), "0x3f8");
        assert_eq!(text(|s| emit!(s, Hex(0x10))), "0x10");
        assert_eq!(text(|s| emit!(s, Hex(u64::MAX))), "0xffffffffffffffff");
        assert_eq!(
            text(|s| emit!(s, Hex(0x800000))),
            format!("{:#x}", 0x800000)
        );
    }

    #[test]
    fn dec_matches_std() {
        for v in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            assert_eq!(text(|s| emit!(s, Dec(v))), v.to_string());
        }
    }

    #[test]
    fn escaping_keeps_plain_ascii_and_escapes_the_rest() {
        assert_eq!(
            text(|s| emit!(s, Esc(b"loader -freq 2800 -- a b"))),
            "loader -freq 2800 -- a b"
        );
        assert_eq!(
            text(|s| emit!(s, Esc(b"a\\b\n\x7f\xff"))),
            "a\\x5cb\\x0a\\x7f\\xff"
        );
        assert_eq!(text(|s| emit!(s, Esc(b""))), "");
    }

    #[test]
    fn fact_lines() {
        assert_eq!(text(|s| fact_hex(s, "fdt", 0x1000)), "tk: fdt=0x1000\n");
        assert_eq!(
            text(|s| fact_range(s, "mem", 0, 0x9fc00)),
            "tk: mem=0x0-0x9fc00\n"
        );
        assert_eq!(
            text(|s| fact_bytes(s, "cmdline", b"x \"y\"")),
            "tk: cmdline=x \"y\"\n"
        );
        assert_eq!(text(|s| passed(s, "stack")), "tk: check=stack\n");
        assert_eq!(text(|s| ok(s)), "tk: ok\n");
    }

    #[test]
    fn fail_line_carries_check_and_detail() {
        let f = ensure_eq(Group::BootInfo, "serial-port", "serial", 0x2f8, 0x3f8).unwrap_err();
        assert_eq!(f.group, Group::BootInfo);
        assert_eq!(
            text(|s| fail_line(s, &f)),
            "tk: FAIL serial-port: serial is 0x2f8, want 0x3f8\n"
        );
        assert!(ensure_eq(Group::BootInfo, "serial-port", "serial", 0x3f8, 0x3f8).is_ok());
    }

    #[test]
    fn msg_truncates_visibly() {
        let mut m = Msg::new();
        for _ in 0..100 {
            emit!(&mut m, "0123456789");
        }
        assert!(m.truncated());
        assert_eq!(m.as_bytes().len(), Msg::CAPACITY);
        assert!(m.as_bytes().ends_with(b"..."));
        let short = msg!("a", Dec(1));
        assert_eq!(short.as_bytes(), b"a1");
        assert!(!short.truncated());
    }

    #[test]
    fn msg_formats_panic_text_escaped() {
        use core::fmt::Write;
        let mut m = Msg::new();
        writeln!(m, "bad {}", 5).unwrap();
        assert_eq!(m.as_bytes(), b"bad 5\\x0a");
    }

    #[test]
    fn exit_values_are_distinct_and_below_the_loader_range() {
        let values: Vec<u32> = Group::ALL.iter().map(|g| g.exit_value()).collect();
        for (i, v) in values.iter().enumerate() {
            assert!((2..=15).contains(v), "{v}");
            assert!(!values[..i].contains(v), "duplicate {v}");
        }
        assert_eq!(Group::ALL.len(), values.len());
        assert_eq!(qemu_status(EXIT_SUCCESS), 3);
        assert_eq!(qemu_status(Group::Panic.exit_value()), 27);
    }
}
