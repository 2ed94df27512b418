//! End to end: the demo kernel boots in QEMU with a freshly built loader, and QEMU's
//! serial output is piped straight into `rusty-trace`, as the README shows. The
//! artifacts come from `cargo xtask build` (run from here: the xtask crate is not a
//! dependency of the decoder), the QEMU command line is the README's standard one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the decoder lives one level below the workspace root")
}

/// Builds the debug loader and the test kernels once for this test binary.
fn build() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args(["xtask", "build"])
            .current_dir(workspace())
            // Flags an outer cargo exports for this test must not leak into the
            // bare-metal builds.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "`cargo xtask build` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// Boots the demo kernel and pipes its serial output into rusty-trace with `args`.
/// Returns QEMU's exit status and rusty-trace's output.
fn boot_through_rusty_trace(args: &[&str]) -> (Option<i32>, Output) {
    boot_kernel_through_rusty_trace("hello-dyn", &[], args)
}

/// Boots test kernel `name` (with extra QEMU arguments, e.g. the microvm machine)
/// and pipes its serial output into rusty-trace with `args`.
fn boot_kernel_through_rusty_trace(
    name: &str,
    qemu_args: &[&str],
    args: &[&str],
) -> (Option<i32>, Output) {
    build();
    let root = workspace();
    let loader = root.join("target/x86_64/debug/rusty-loader");
    let elf = root.join("target/x86_64/debug/rusty-loader.elf");
    let kernel = root.join("target/test-kernels/debug").join(name);
    let mut qemu = Command::new("qemu-system-x86_64")
        .args([
            "-cpu",
            "qemu64,apic,fsgsbase,fxsr,rdrand,rdtscp,xsave,xsaveopt",
            "-smp",
            "1",
            "-m",
            "64M",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
        ])
        .args(qemu_args)
        .arg("-kernel")
        .arg(&loader)
        .arg("-initrd")
        .arg(&kernel)
        .args(["-append", "-freq 2800 -- first second"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64 is installed (the QEMU tests need it too)");
    let serial = qemu.stdout.take().unwrap();
    let trace = Command::new(env!("CARGO_BIN_EXE_rusty-trace"))
        .arg("--elf")
        .arg(&elf)
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(serial)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait(&mut qemu, Duration::from_secs(120));
    // QEMU is gone, so rusty-trace sees the end of its input.
    (status, trace.wait_with_output().unwrap())
}

/// Waits for QEMU, stopping it after `timeout` so that a hang fails the test.
fn wait(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("QEMU did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn shown(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn live_boot_shows_text_events_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let chrome = dir.path().join("boot.json");
    let (qemu, output) = boot_through_rusty_trace(&["--chrome-trace", chrome.to_str().unwrap()]);
    assert_eq!(
        qemu,
        Some(3),
        "the demo kernel reports success\n{}",
        shown(&output)
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    // Nothing on stderr but the confirmation of the file written.
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("rusty-trace: wrote {}\n", chrome.display())
    );
    let out = String::from_utf8(output.stdout.clone()).unwrap();
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing\n{}", shown(&output)))
    };
    // In stream order: the loader's events, the hand-over, the kernel's text, the
    // report.
    let start = at("] LoaderStart format=3 build=0x");
    let frequency = at("] Frequency khz=2800000 source=cmdline");
    let segment = at("] SegmentLoaded addr=0x800000 ");
    let hand_over = at("] HandOver entry=0x");
    let hello = at("Hello from hello-dyn, a Hermit-ABI test kernel!\n");
    let ok = at("tk: ok\n");
    let report = at("rusty-trace boot report");
    // The frequency is measured after the loading, so it comes after the segments.
    assert!(start < segment && segment < frequency && frequency < hand_over);
    assert!(hand_over < hello && hello < ok && ok < report);
    // Every event line carries its time, none fell back to TSC ticks.
    assert!(out.starts_with("[ "), "{out}");
    assert!(!out.contains(" tk] "), "{out}");
    let chrome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&chrome).unwrap()).unwrap();
    assert!(!chrome.is_null());
}

#[test]
fn live_boot_as_json_has_host_times() {
    let (qemu, output) = boot_through_rusty_trace(&["--format", "json"]);
    assert_eq!(qemu, Some(3), "{}", shown(&output));
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{}", shown(&output)));
    let host = &json["host"];
    for key in [
        "first_byte_us",
        "loader_start_us",
        "hand_over_us",
        "first_kernel_output_us",
        "end_us",
    ] {
        assert!(host[key].is_number(), "{key} in {host}");
    }
    // The kernel's text and the event lines went to stderr.
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("Hello from hello-dyn"), "{err}");
    assert!(err.contains("] HandOver "), "{err}");
}

/// The ELF the tests decode with is the one `cargo xtask build` just wrote.
#[test]
fn artifacts_are_where_the_readme_says() {
    build();
    for path in [
        "target/x86_64/debug/rusty-loader",
        "target/x86_64/debug/rusty-loader.elf",
        "target/test-kernels/debug/hello-dyn",
    ] {
        let path: PathBuf = workspace().join(path);
        assert!(
            path.is_file(),
            "{} missing after cargo xtask build",
            path.display()
        );
    }
}

#[test]
fn every_test_kernel_boots_live_through_rusty_trace_on_both_machines() {
    let microvm = [
        "-M",
        "microvm,x-option-roms=off,pit=off,pic=off,rtc=on,auto-kernel-cmdline=off,ioapic2=off",
        "-nodefaults",
        "-no-user-config",
    ];
    for name in ["hello-dyn", "legacy-dyn", "hello-exec"] {
        for machine in [&[][..], &microvm[..]] {
            let dir = tempfile::tempdir().unwrap();
            let svg = dir.path().join("boot.svg");
            let (qemu, output) = boot_kernel_through_rusty_trace(
                name,
                machine,
                &["--color=never", "--svg", svg.to_str().unwrap()],
            );
            let shown = shown(&output);
            assert_eq!(qemu, Some(3), "{name} {machine:?}\n{shown}");
            assert_eq!(output.status.code(), Some(0), "{shown}");
            let out = String::from_utf8_lossy(&output.stdout);
            for needle in [
                "] HandOver entry=0x",
                &format!("tk: kernel={name}"),
                "tk: ok",
                "Timeline",
                "Memory map",
                "handed over to the kernel",
            ] {
                assert!(out.contains(needle), "{name}: {needle:?} missing\n{shown}");
            }
            assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
        }
    }
}
