//! xtask's one QEMU runner (`xtask::qemu::run`) with a stand-in for QEMU
//! (`tests/fake-qemu/qemu-system-x86_64`, whose `-append` text says what to do):
//! serial output handed on in order, QEMU's stderr kept or passed on, its exit
//! status, and every way a run is cut short (timeout, KVM failure, the caller).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use trace_decoder::pump::Arrival;
use xtask::qemu::{self, QemuConfig, QemuStderr};

/// Longer than any test needs: reaching it means the runner failed to stop QEMU.
const NEVER: Duration = Duration::from_secs(300);

fn fake_qemu(mode: &str) -> QemuConfig {
    QemuConfig {
        qemu: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake-qemu/qemu-system-x86_64"),
        append: Some(mode.to_string()),
        ..QemuConfig::new("rusty-loader", "app")
    }
}

#[test]
fn serial_output_stderr_and_status_are_handed_on() {
    let run = qemu::run_captured(&fake_qemu("exit-7"), NEVER).unwrap();
    assert_eq!(run.serial, b"one\ntwo\n");
    assert_eq!(run.stderr, "qemu: a message on stderr\n");
    assert_eq!(run.status, Some(7));
    assert!(!run.timed_out);
}

#[test]
fn qemus_own_error_is_kept_and_warnings_are_not() {
    let finished = qemu::run(&fake_qemu("qemu-error"), NEVER, QemuStderr::PassOn, |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(finished.status, Some(1));
    // Passed on, and its error line kept all the same.
    assert_eq!(finished.stderr, "");
    assert_eq!(
        finished.error_line.as_deref(),
        Some("qemu-system-x86_64: could not load kernel 'rusty-loader': No such file or directory")
    );
    let quiet = qemu::run_captured(&fake_qemu("reset"), NEVER).unwrap();
    assert_eq!(quiet.status, Some(0));
    assert_eq!(quiet.serial, b"started\n");
}

#[test]
fn chunks_are_handed_on_as_they_arrive_and_stderr_passed_on() {
    let mut serial = Vec::new();
    let finished = qemu::run(&fake_qemu("exit-7"), NEVER, QemuStderr::PassOn, |arrival| {
        if let Arrival::Bytes(bytes) = arrival {
            serial.extend_from_slice(bytes);
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(serial, b"one\ntwo\n");
    assert_eq!(finished.status, Some(7));
    // Passed on to our stderr, so not kept.
    assert_eq!(finished.stderr, "");
}

#[test]
fn a_hanging_qemu_is_stopped_at_the_timeout() {
    // Long enough for the stand-in (a shell) to print its line on a busy host:
    // that the line is kept is what counts here, not how soon it came.
    let run = qemu::run_captured(&fake_qemu("hang"), Duration::from_secs(5)).unwrap();
    assert!(run.timed_out);
    assert_eq!(run.status, None);
    assert_eq!(
        run.serial, b"started\n",
        "what arrived before the timeout is kept"
    );
}

#[test]
fn a_kvm_internal_error_stops_qemu_at_once() {
    let finished = qemu::run(&fake_qemu("kvm-error"), NEVER, QemuStderr::Capture, |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(finished.kvm_failed);
    assert!(
        !finished.timed_out,
        "stopped for the KVM error, not the timeout"
    );
    assert_eq!(finished.status, None);
    assert!(
        finished.stderr.contains("KVM internal error"),
        "{}",
        finished.stderr
    );
}

#[test]
fn the_caller_can_stop_qemu() {
    let mut serial = Vec::new();
    let finished = qemu::run(
        &fake_qemu("hang"),
        NEVER,
        QemuStderr::PassOn,
        |arrival| match arrival {
            Arrival::Bytes(bytes) => {
                serial.extend_from_slice(bytes);
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        },
    )
    .unwrap();
    assert_eq!(serial, b"started\n");
    assert!(!finished.timed_out && !finished.kvm_failed && !finished.interrupted);
    assert_eq!(finished.status, None, "killed");
}

#[test]
fn a_missing_qemu_is_named() {
    let config = QemuConfig {
        qemu: PathBuf::from("/nonexistent/qemu-system-x86_64"),
        ..QemuConfig::new("rusty-loader", "app")
    };
    let error = format!("{:#}", qemu::run_captured(&config, NEVER).unwrap_err());
    assert!(
        error.starts_with("could not start /nonexistent/qemu-system-x86_64 "),
        "{error}"
    );
}
