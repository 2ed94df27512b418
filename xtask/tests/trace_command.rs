//! `cargo xtask trace` end to end, through the real xtask binary: a traced boot of the
//! demo app with its reports, `--runs` statistics, and `--baseline` catching a
//! slowdown. The slowdown is injected for real: QEMU's `-icount shift=N` makes every
//! guest instruction take 2^N ns of virtual time, so a larger shift makes every loader
//! stage slower in TSC ticks, deterministically.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{shown as text, xtask};

#[test]
fn trace_boots_the_demo_app_and_writes_every_report() {
    let dir = xtask::project_root().join("target/test-inputs/trace-command");
    std::fs::create_dir_all(&dir).unwrap();
    let (json, chrome, svg, raw) = (
        dir.join("report.json"),
        dir.join("chrome.json"),
        dir.join("boot.svg"),
        dir.join("boot.bin"),
    );
    let output = xtask(&[
        "trace",
        "--color=never",
        "--json",
        json.to_str().unwrap(),
        "--chrome-trace",
        chrome.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--save",
        raw.to_str().unwrap(),
        "--",
        "hello",
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Live: the app's own text and the loader's events; then the reports.
    assert!(stdout.contains("Hello from hello-dyn"), "{shown}");
    assert!(stdout.contains("tk: args=hello"), "{shown}");
    assert!(stdout.contains("SegmentLoaded"), "{shown}");
    assert!(stdout.contains("Timeline"), "{shown}");
    assert!(stdout.contains("Memory map"), "{shown}");
    assert!(stdout.contains("boot: "), "{shown}");
    for file in [&json, &chrome] {
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        assert!(value.is_object(), "{}", file.display());
    }
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    assert!(
        std::fs::read(&raw)
            .unwrap()
            .windows(2)
            .any(|w| w == [0xFF, 0x00]),
        "raw stream kept"
    );
    // QEMU's status beside it, for a replay with rusty-trace, then how the boot ran,
    // for a profile of recordings.
    let beside = std::fs::read_to_string(dir.join("boot.status")).unwrap();
    assert!(
        beside.starts_with(
            "3\ntime-base: wall\nloader-profile: debug\napp: hello-dyn\nmachine: pc\n"
        ),
        "{beside}"
    );
    // Each file written is confirmed on stderr.
    let stderr = String::from_utf8_lossy(&output.stderr);
    for file in [&json, &chrome, &svg, &raw, &dir.join("boot.status")] {
        assert!(
            stderr.contains(&format!("wrote {}\n", file.display())),
            "{shown}"
        );
    }
}

fn profile(runs: &str, shift: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "trace",
        "--release",
        "--runs",
        runs,
        "--append=-freq 2800",
        "--qemu-arg=-icount",
        shift,
    ];
    args.extend_from_slice(extra);
    xtask(&args)
}

#[test]
fn runs_print_statistics_and_a_baseline_catches_a_slowdown() {
    let dir = xtask::project_root().join("target/test-inputs/trace-profile");
    std::fs::create_dir_all(&dir).unwrap();
    let baseline = dir.join("baseline.json");
    let baseline_arg = baseline.to_str().unwrap();

    let output = profile("3", "--qemu-arg=shift=1", &["--save-profile", baseline_arg]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    for column in [
        "stage",
        "min",
        "median",
        "max",
        "spread",
        "loader total",
        "page tables",
    ] {
        assert!(stdout.contains(column), "{column} missing:\n{shown}");
    }
    assert!(Path::new(&baseline).exists());

    // The same machine: within the threshold.
    let output = profile("2", "--qemu-arg=shift=1", &["--baseline", baseline_arg]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // Every instruction 8 times slower: every stage regresses.
    let output = profile(
        "2",
        "--qemu-arg=shift=4",
        &["--baseline", baseline_arg, "--max-regression", "10%"],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(3), "{shown}");
    assert!(shown.contains("REGRESSION"), "{shown}");
    assert!(shown.contains("slower than the baseline"), "{shown}");
}

/// A profile keeps how its boots ran: a `--deterministic` run (instructions) is not
/// compared with a wall-time baseline, in one line and status 2.
#[test]
fn a_baseline_of_another_time_base_is_refused() {
    let dir = xtask::project_root().join("target/test-inputs/trace-time-base");
    std::fs::create_dir_all(&dir).unwrap();
    let baseline = dir.join("wall.json");
    let output = xtask(&[
        "trace",
        "--runs",
        "2",
        "--save-profile",
        baseline.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&baseline).unwrap()).unwrap();
    let context = &profile["context"];
    assert_eq!(context["time-base"], "wall", "{context:#}");
    assert_eq!(context["machine"], "pc", "{context:#}");
    assert_eq!(context["app"], "hello-dyn", "{context:#}");
    assert!(context["qemu-version"].is_string(), "{context:#}");
    let output = xtask(&[
        "trace",
        "--deterministic",
        "--runs",
        "1",
        "--baseline",
        baseline.to_str().unwrap(),
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{shown}");
    assert!(
        errors[0].contains("the baseline's times count wall and this profile's instructions (-icount shift=0,sleep=off)"),
        "{shown}"
    );
}

/// `--deterministic`: every guest instruction takes the same virtual time, so two
/// boots give every stage the same ticks, whatever the host does meanwhile.
#[test]
fn deterministic_runs_repeat_exactly() {
    let dir = xtask::project_root().join("target/test-inputs/trace-deterministic");
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("profile.json");
    let output = xtask(&[
        "trace",
        "--deterministic",
        "--runs",
        "2",
        "--append=-freq 1000",
        "--save-profile",
        json.to_str().unwrap(),
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let stages = profile["stages"].as_array().expect("stages");
    assert!(stages.len() > 10, "{profile:#}");
    for stage in stages {
        assert_eq!(stage["min"], stage["max"], "{stage:#}");
        assert!(stage["min"].as_f64().unwrap() > 0.0 || stage["name"] != "loader total");
    }
}

/// `--keep-cmdline` hands a kernel of 0.6-0.10 its command line as given: no
/// `-freq` inserted, so the kernel measures the TSC itself; without it, the loader
/// inserts the frequency it measured.
#[test]
fn keep_cmdline_turns_the_frequency_insertion_off() {
    let app = xtask::project_root().join("target/test-kernels/debug/calibrating");
    let app = app.to_str().unwrap();
    let kept = xtask(&["run", "--keep-cmdline", app, "--", "app"]);
    let shown = text(&kept);
    assert_eq!(kept.status.code(), Some(0), "{shown}");
    let stdout = String::from_utf8_lossy(&kept.stdout);
    assert!(stdout.contains("tk: freq_source=pit"), "{shown}");
    assert!(!stdout.contains("tk: freq-inserted="), "{shown}");
    let edited = xtask(&["run", app, "--", "app"]);
    let shown = text(&edited);
    assert_eq!(edited.status.code(), Some(0), "{shown}");
    let stdout = String::from_utf8_lossy(&edited.stdout);
    assert!(stdout.contains("tk: freq_source=cmdline"), "{shown}");
    assert!(stdout.contains("tk: freq-inserted="), "{shown}");
}

#[test]
fn trace_explains_how_to_install_a_missing_qemu() {
    let output = xtask(&["trace", "--qemu", "/nonexistent/qemu-system-x86_64"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/qemu-system-x86_64 not found"),
        "{shown}"
    );
    assert!(
        stderr.contains("apt-get install qemu-system-x86"),
        "{shown}"
    );
}

/// A stand-in for QEMU that does what its `-append` text names (see the script).
fn fake_qemu() -> PathBuf {
    xtask::project_root().join("xtask/tests/fake-qemu/qemu-system-x86_64")
}

#[test]
fn a_boot_that_hangs_is_stopped_at_the_timeout_and_still_reported() {
    let fake = fake_qemu();
    let output = xtask(&[
        "trace",
        "--color=never",
        "--qemu",
        fake.to_str().unwrap(),
        // Long enough for the stand-in (a shell) to print its line on a busy host.
        "--timeout",
        "5",
        "--append",
        "hang",
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(124), "{shown}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("started\n"), "{shown}");
    assert!(stdout.contains("rusty-trace boot report"), "{shown}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(
            "error: QEMU did not end within 5 s and was stopped: the boot hangs before the loader's first event; exit status 124"
        ),
        "{shown}"
    );
}

#[test]
fn ctrl_c_stops_the_boot_and_prints_the_report_of_what_arrived() {
    let fake = fake_qemu();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["trace", "--color=never", "--qemu"])
        .arg(&fake)
        // The stand-in hangs, and the timeout is far: only Ctrl-C ends this boot.
        .args(["--timeout", "600", "--append", "hang"])
        .current_dir(xtask::project_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xtask runs");
    let (sender, receiver) = mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buffer) {
            if sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // Once QEMU's first line is shown, the boot is under way (and the loader built).
    let mut seen = Vec::new();
    while !seen.starts_with(b"started\n") {
        match receiver.recv_timeout(Duration::from_secs(600)) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => {
                let _ = child.kill();
                panic!("no output; got {:?}", String::from_utf8_lossy(&seen));
            }
        }
    }
    // Only xtask gets the signal, as when QEMU ignores it: xtask must stop QEMU.
    let interrupt = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    // A guard against a hang, far above any real stop: without the runner stopping
    // QEMU, xtask would wait for the 600 s timeout.
    let mut waited = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if waited == 120 {
            let _ = child.kill();
            panic!("xtask did not stop within 120 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_secs(1));
        waited += 1;
    };
    while let Ok(chunk) = receiver.recv_timeout(Duration::from_secs(5)) {
        seen.extend(chunk);
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let stdout = String::from_utf8_lossy(&seen);
    assert_eq!(status.code(), Some(130), "{stderr}\n{stdout}");
    assert!(stdout.contains("rusty-trace boot report"), "{stdout}");
    assert!(stdout.contains("8 bytes of text"), "{stdout}");
    assert!(
        stderr.contains("interrupted: the report covers what arrived before Ctrl-C"),
        "{stderr}"
    );
}

/// A terminal's Ctrl-C on a boot that hangs: SIGINT to the whole process group,
/// QEMU included, and to xtask once more, as `timeout -s INT` sends it. xtask must say "interrupted", exit 130, print the report, and say
/// where the CPU was (QEMU, which keeps Ctrl-C held back, is stopped through its
/// monitor): never a reset or a triple fault (QEMU ending on SIGINT exits with 0,
/// which reads as one). Five boots, each interrupted once the kernel waits.
#[test]
fn ctrl_c_on_a_hung_boot_says_where_the_cpu_was() {
    let crashing = xtask::build::test_kernel_dir(xtask::build::Profile::Debug).join("crashing");
    for run in 1..=5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["trace", "--color=never", "--timeout", "600"])
            .arg(&crashing)
            .args(["--", "hang"])
            .current_dir(xtask::project_root())
            // A group of its own, as a terminal's foreground job.
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xtask runs");
        let (sender, receiver) = mpsc::channel();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buffer) {
                if sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("tk: waiting for ever\n") {
            match receiver.recv_timeout(Duration::from_secs(600)) {
                Ok(chunk) => seen.extend(chunk),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "run {run}: no hang; got {:?}",
                        String::from_utf8_lossy(&seen)
                    );
                }
            }
        }
        // As `timeout -s INT` does it: the command, then its whole group (so xtask
        // gets it twice, QEMU once).
        let group = format!("-{}", child.id());
        for target in [child.id().to_string(), group] {
            let interrupt = Command::new("kill")
                .args(["-INT", "--", &target])
                .status()
                .unwrap();
            assert!(interrupt.success());
        }
        let output = child.wait_with_output().unwrap();
        while let Ok(chunk) = receiver.recv_timeout(Duration::from_secs(5)) {
            seen.extend(chunk);
        }
        let stdout = String::from_utf8_lossy(&seen);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = format!("run {run}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        assert_eq!(output.status.code(), Some(130), "{shown}");
        assert!(stdout.contains("rusty-trace boot report"), "{shown}");
        assert!(
            stdout.contains(
                "  stop     interrupted (Ctrl-C): the guest was still running and QEMU stopped it"
            ),
            "{shown}"
        );
        assert!(stderr.contains("error: interrupted: "), "{shown}");
        assert!(
            stderr.contains("test_kernels::arch::faults::halt_forever")
                && stderr.contains("the CPU was halted (HLT)"),
            "{shown}"
        );
        for wrong in ["reset", "triple fault", "Triple fault"] {
            assert!(
                !stdout.contains(wrong) && !stderr.contains(wrong),
                "{wrong:?}: {shown}"
            );
        }
    }
}

#[test]
fn a_bad_baseline_or_threshold_is_refused_before_anything_boots() {
    // Not JSON at all: refused with the file named, before QEMU is even looked for.
    let output = xtask(&[
        "trace",
        "--qemu",
        "/nonexistent/qemu-system-x86_64",
        "--baseline",
        "Cargo.toml",
    ]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("Cargo.toml is not a usable baseline: the baseline is not JSON"),
        "{shown}"
    );
    let output = xtask(&["trace", "--runs", "2", "--max-regression", "ten"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(shown.contains("not a percentage"), "{shown}");
}

/// `census` counts the blocks QEMU translated in the loader's code, per loader
/// function: the whole loader's code is hundreds of blocks, its entry function
/// among them, and the total line adds up the table's rows.
#[test]
fn census_counts_the_loaders_translated_blocks_per_function() {
    let output = xtask(&["census", "--debug", "--top", "5"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    let total: u32 = lines
        .next()
        .and_then(|line| line.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a total line first: {shown}"));
    assert!(total > 300, "{shown}");
    assert!(stdout.contains("rusty_loader::"), "{shown}");
    // Five functions, then the rest in one line: the rows add up to the total.
    let rows: Vec<u32> = lines
        .skip(1)
        .map(|line| line.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(rows.len(), 6, "{shown}");
    assert_eq!(rows.iter().sum::<u32>(), total, "{shown}");
}
