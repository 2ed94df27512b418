//! How a run ends when something is wrong: a failed check prints
//! `tk: FAIL <check>: <detail>` and exits with its group's value, and so do a CPU
//! exception (through the IDT, which calls [`report_exception`]) and a Rust panic.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::cpu::cr3;
use crate::arch::exceptions::ExceptionInfo;
use crate::arch::port;
use crate::arch::serial::Serial;
use crate::report::{Check, Dec, Failure, Group, Hex, Sink};
use crate::{emit, paging};

/// Prints `tk: FAIL <check>: <detail>` and exits with the group's value.
pub fn fail(group: Group, check: &str, detail: &dyn Fn(&mut dyn Sink)) -> ! {
    let out = &mut Serial;
    emit!(out, "tk: FAIL ", check, ": ");
    detail(out);
    emit!(out, "\n");
    port::exit(group.exit_value())
}

/// Fails unless `condition` holds.
pub fn check(condition: bool, group: Group, check: &str, detail: &dyn Fn(&mut dyn Sink)) {
    if !condition {
        fail(group, check, detail);
    }
}

/// Fails unless `got == want`, saying both in hex.
pub fn check_eq(group: Group, check: &str, what: &str, got: u64, want: u64) {
    if got != want {
        fail(group, check, &|s| {
            emit!(s, what, " is ", Hex(got), ", want ", Hex(want))
        });
    }
}

/// Fails with the failure a library check returned.
pub fn require(result: Check) {
    if let Err(f) = result {
        fail_with(&f);
    }
}

fn fail_with(f: &Failure) -> ! {
    fail(f.group, f.check, &|s| s.bytes(f.detail.as_bytes()))
}

/// Fails a `*-mapped` check: `va` is not mapped.
pub fn unmapped(check: &str, va: u64) -> ! {
    fail(Group::Paging, check, &|s| {
        emit!(s, Hex(va), " is not mapped")
    })
}

/// The page-fault vector.
const PAGE_FAULT: u64 = 14;

/// Reports a CPU exception and exits: the kernel registers it with
/// [`crate::arch::exceptions::install_idt`].
pub fn report_exception(info: &ExceptionInfo) -> ! {
    // A fault while reporting a fault must not loop: the second one exits silently.
    static REPORTING: AtomicBool = AtomicBool::new(false);
    if REPORTING.swap(true, Ordering::Relaxed) {
        port::exit(Group::Exception.exit_value());
    }
    // A page fault on the PML4's own page: the kernel read its tables through the
    // identity mapping, as kernels 0.11+ do, and they do not map themselves. (The
    // survey's check cannot see this: it reads the tables too.)
    if info.vector == PAGE_FAULT && info.cr2 & !0xfff == cr3() & paging::ADDR_MASK {
        fail(Group::Paging, "tables-identity-mapped", &|s| {
            emit!(s, "the PML4 ", Hex(info.cr2 & !0xfff), " is not mapped")
        });
    }
    fail(Group::Exception, "exception", &|s| {
        emit!(
            s,
            "vector ",
            Dec(info.vector),
            " error ",
            Hex(info.error),
            " rip ",
            Hex(info.rip)
        );
        emit!(s, " rsp ", Hex(info.rsp), " cr2 ", Hex(info.cr2))
    })
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let mut detail = crate::report::Msg::new();
    let _ = write!(detail, "{}", info.message());
    if let Some(location) = info.location() {
        let _ = write!(detail, " at {}:{}", location.file(), location.line());
    }
    fail(Group::Panic, "panic", &|s| s.bytes(detail.as_bytes()))
}
