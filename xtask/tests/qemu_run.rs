//! xtask's one QEMU runner (`xtask::qemu::run`) with a stand-in for QEMU
//! (`tests/fake-qemu/qemu-system-x86_64`, whose `-append` text says what to do):
//! serial output handed on in order, QEMU's stderr kept or passed on, its exit
//! status, and every way a run is cut short (timeout, KVM failure, the caller).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use trace_decoder::host::pump::Arrival;
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
        finished.error_message.as_deref(),
        Some("qemu-system-x86_64: could not load kernel 'rusty-loader': No such file or directory")
    );
    // A message of several lines is kept whole; a warning's lines are not.
    let finished = qemu::run(
        &fake_qemu("qemu-error-lines"),
        NEVER,
        QemuStderr::Capture,
        |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(
        finished.error_message.as_deref(),
        Some(
            "qemu-system-x86_64: -m 64Q: Parameter 'size' expects a non-negative number below \
             2^64 Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta- \
             and exabytes, respectively."
        )
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
fn another_thread_can_stop_qemu() {
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
        })
    };
    // The serial output says nothing more after its first line: only the flag ends
    // the run.
    let finished = qemu::run_until(&fake_qemu("hang"), NEVER, QemuStderr::PassOn, stop, |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    stopper.join().unwrap();
    assert!(!finished.timed_out && !finished.kvm_failed && !finished.interrupted);
    assert_eq!(finished.status, None, "killed");
}

#[test]
fn a_gdb_stub_holds_the_cpu_on_a_socket_of_its_own() {
    let config = QemuConfig {
        gdb_socket: Some(PathBuf::from("/tmp/session/gdb.sock")),
        ..QemuConfig::new("rusty-loader", "app")
    };
    let line = config.display();
    assert!(
        line.contains(" -S -gdb unix:/tmp/session/gdb.sock,server=on,wait=off -kernel "),
        "{line}"
    );
    let plain = QemuConfig::new("rusty-loader", "app").display();
    assert!(
        !plain.contains("-gdb") && !plain.contains(" -S "),
        "{plain}"
    );
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

/// A file name QEMU's options or the kernel's command line would split (a space, a
/// comma, a quote, a non-ASCII letter) reaches QEMU as a link under a plain name,
/// which names the same file while QEMU runs; plain names go as they are.
#[test]
fn odd_file_names_reach_qemu_as_plain_links_to_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let odd_dir = dir.path().join("a dir, with 'quotes'");
    std::fs::create_dir(&odd_dir).unwrap();
    let loader = odd_dir.join("rusty loader");
    let app = odd_dir.join("my app,1 \"ü\".elf");
    std::fs::write(&loader, b"loader").unwrap();
    std::fs::write(&app, b"app").unwrap();
    let config = QemuConfig {
        qemu: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake-qemu/qemu-system-x86_64"),
        append: Some("files".to_string()),
        ..QemuConfig::new(&loader, &app)
    };
    let staged = config.staged_files();
    assert_eq!(
        staged.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["rusty_loader", "my_app_1____.elf"]
    );
    let run = qemu::run_captured(&config, NEVER).unwrap();
    let serial = String::from_utf8(run.serial).unwrap();
    let files: Vec<&str> = serial.lines().collect();
    assert_eq!(files.len(), 2, "{serial}");
    for (line, original) in files.iter().zip([&loader, &app]) {
        let given = line
            .strip_prefix("file ")
            .unwrap_or_else(|| panic!("{serial}"));
        assert!(
            given
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./+@".contains(&b)),
            "{given}"
        );
        assert!(given.ends_with(&format!("/{}", staged_name(&staged, original))));
    }
    // Plain names are given as they are.
    let plain = QemuConfig {
        append: Some("files".to_string()),
        ..QemuConfig::new("rusty-loader", "dir/app-1.elf")
    };
    assert!(plain.staged_files().is_empty());
    assert!(plain
        .args()
        .iter()
        .any(|arg| arg == std::ffi::OsStr::new("dir/app-1.elf")));
}

fn staged_name<'a>(staged: &'a [qemu::Staged], original: &std::path::Path) -> &'a str {
    &staged.iter().find(|s| s.original == original).unwrap().name
}
