//! `rusty-trace` as a user runs it: the built binary on the recorded streams, checking
//! what goes to stdout and stderr, the files it writes and its exit status, for good
//! streams and for every kind of bad input and bad ELF.

mod common;

use common::frames;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use trace_decoder::decode::build_id::table_build_id;
use trace_decoder::decode::stream::text_only;
use trace_decoder::decode::Session;
use trace_decoder::decode::TraceTable;
use trace_decoder::report::Report;

fn recordings() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recordings")
}

fn elf() -> PathBuf {
    recordings().join("rusty-loader.elf")
}

fn recording(name: &str) -> Vec<u8> {
    std::fs::read(recordings().join(format!("{name}.bin"))).unwrap()
}

fn recorded_status(name: &str) -> i32 {
    let text = std::fs::read_to_string(recordings().join(format!("{name}.status"))).unwrap();
    text.trim().parse().unwrap()
}

fn rusty_trace() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rusty-trace"));
    // The tests check plain output; a developer's NO_COLOR must not change it either.
    command.env_remove("NO_COLOR");
    command
}

/// Runs rusty-trace with `args`, `stdin` as its standard input.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    run_command(rusty_trace().args(args), stdin)
}

fn run_command(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rusty-trace starts");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Written from a thread: a large input would otherwise fill the pipe while
    // rusty-trace waits for us to read its output.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn elf_arg() -> String {
    elf().display().to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The status and both streams, for assertion messages.
fn shown(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    )
}

/// One `rusty-trace: error: ...` line and nothing that looks like a panic.
fn assert_one_error_line(output: &Output, code: i32, needles: &[&str]) {
    assert_eq!(output.status.code(), Some(code), "{}", shown(output));
    let err = stderr(output);
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("rusty-trace: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", shown(output));
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "{needle:?} in {}",
            shown(output)
        );
    }
    assert!(!err.contains("panicked"), "{}", shown(output));
}

/// What the report should say for a recording read from a file: the library's
/// report of the same stream, without host times (a file has none worth showing).
fn expected_report(name: &str) -> Report {
    let elf = std::fs::read(elf()).unwrap();
    let table = TraceTable::from_elf(&elf).unwrap();
    let mut session = Session::new(&table);
    session.feed(&recording(name), &mut |_| {});
    let mut record = session.finish(Some(recorded_status(name)), &mut |_| {});
    record.host = Default::default();
    record.text_lines.forget_times();
    Report::build(&record)
}

#[test]
fn text_passes_through_unchanged() {
    for name in [
        "hello-dyn-pc",
        "hello-exec-pc",
        "legacy-dyn-microvm",
        "not-an-elf",
    ] {
        let stream = recording(name);
        let output = run(&["--elf", &elf_arg(), "--quiet", "--no-report"], &stream);
        assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
        assert_eq!(output.stdout, text_only(&stream), "{name}");
        assert_eq!(stderr(&output), "", "{name}");
    }
}

#[test]
fn events_text_and_report_in_stream_order() {
    let name = "hello-dyn-pc";
    let path = recordings().join(format!("{name}.bin"));
    let status = recorded_status(name).to_string();
    let output = run(
        &[
            "--elf",
            &elf_arg(),
            "--status",
            &status,
            path.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    // Every event in order, with its time: the frequency came in the trace.
    let table = TraceTable::from_elf(&std::fs::read(elf()).unwrap()).unwrap();
    let build = format!("{:#010x}", table.build_id());
    assert!(
        lines[0].starts_with(&format!(
            "[    0.000 ms] LoaderStart format=3 build={build} mbi=0x"
        )),
        "{}",
        lines[0]
    );
    assert!(
        lines[7].contains(" ms] SegmentLoaded addr=0x800000 "),
        "{}",
        lines[7]
    );
    assert!(
        lines[16].contains(" ms] HandOver entry=0x"),
        "{}",
        lines[16]
    );
    // The kernel's text follows the hand-over, then the report.
    let text = String::from_utf8(text_only(&recording(name))).unwrap();
    let after_events = lines[17..].join("\n") + "\n";
    assert!(after_events.starts_with(&text), "{}", shown(&output));
    let report = expected_report(name).render_text(false);
    assert!(out.ends_with(&report), "{}", shown(&output));
    assert_eq!(stderr(&output), "");
}

#[test]
fn json_report_keeps_stdout_clean() {
    let name = "not-an-elf";
    // Standard input redirected from the recording: a file, so no host times.
    let file = std::fs::File::open(recordings().join(format!("{name}.bin"))).unwrap();
    let output = rusty_trace()
        .args([
            "--elf",
            &elf_arg(),
            "--format",
            "json",
            "--status",
            "35",
            "-",
        ])
        .stdin(file)
        .output()
        .unwrap();
    // A replay ends as the boot did: the loader's refusal, QEMU status 35.
    assert_eq!(output.status.code(), Some(35), "{}", shown(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", shown(&output)));
    let expected: serde_json::Value =
        serde_json::from_str(&expected_report(name).to_json()).unwrap();
    assert_eq!(json, expected);
    // The text and the event lines went to stderr.
    let err = stderr(&output);
    assert!(err.contains("] Refused code=17 name=not-elf"), "{err}");
    assert!(
        err.contains("rusty-loader: error: the module is not an ELF file"),
        "{err}"
    );
}

#[test]
fn timeline_files() {
    let dir = tempfile::tempdir().unwrap();
    let chrome = dir.path().join("boot.json");
    let svg = dir.path().join("boot.svg");
    let output = run(
        &[
            "--elf",
            &elf_arg(),
            "--no-report",
            "--quiet",
            "--chrome-trace",
            chrome.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ],
        &recording("hello-dyn-pc"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    // Each file written is confirmed, on stderr.
    assert_eq!(
        stderr(&output),
        format!(
            "rusty-trace: wrote {}\nrusty-trace: wrote {}\n",
            chrome.display(),
            svg.display()
        )
    );
    let chrome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(chrome).unwrap()).expect("the Chrome trace is JSON");
    assert!(!chrome.is_null());
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.contains("<svg"), "{svg}");

    let output = run(
        &["--elf", &elf_arg(), "--svg", "/nonexistent-dir/boot.svg"],
        &recording("hello-dyn-pc"),
    );
    assert_one_error_line(
        &output,
        2,
        &["cannot write the SVG timeline to /nonexistent-dir/boot.svg"],
    );
}

#[test]
fn colour_follows_the_option() {
    // From a file, so that the reports do not differ by their host times.
    let path = recordings().join("hello-dyn-pc.bin");
    let path = path.to_str().unwrap();
    let plain = run(&["--elf", &elf_arg(), path], b"");
    assert!(!plain.stdout.contains(&0x1b), "not a terminal: no colour");
    let always = run(&["--elf", &elf_arg(), "--color", "always", path], b"");
    assert!(stdout(&always).contains("\x1b[1mLoaderStart\x1b[0m"));
    let never = run(&["--elf", &elf_arg(), "--color", "never", path], b"");
    assert_eq!(never.stdout, plain.stdout);
    // NO_COLOR only matters where colour would be automatic, and a pipe has none.
    let no_color = run_command(
        rusty_trace()
            .args(["--elf", &elf_arg(), "--color", "always", path])
            .env("NO_COLOR", "1"),
        b"",
    );
    assert_eq!(
        no_color.stdout, always.stdout,
        "--color always wins over NO_COLOR"
    );
}

/// The chunks a child writes, as they arrive.
fn read_in_background(mut stdout: std::process::ChildStdout) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = [0; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buffer) {
            if sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    receiver
}

#[test]
fn text_arrives_live_before_the_input_ends() {
    let stream = recording("hello-dyn-pc");
    let text = text_only(&stream);
    let first_line = &text[..text.iter().position(|&b| b == b'\n').unwrap() + 1];
    let mut child = rusty_trace()
        .args(["--elf", &elf_arg()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let receiver = read_in_background(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let mut wait_for = |needle: &[u8], what: &str| {
        while !seen.windows(needle.len()).any(|w| w == needle) {
            let chunk = receiver.recv_timeout(HANG_GUARD).unwrap_or_else(|_| {
                panic!(
                    "{what} did not arrive; got {:?}",
                    String::from_utf8_lossy(&seen)
                )
            });
            seen.extend(chunk);
        }
    };

    // Up to the Frequency event: the events before it wait for it, until the input
    // pauses; then they are shown in TSC ticks.
    let frequency_at = frames(&stream)[5].start - 2;
    stdin.write_all(&stream[..frequency_at]).unwrap();
    stdin.flush().unwrap();
    wait_for(b"ticks] PagingEnabled", "the held-back events");

    // Everything up to the end of the kernel's first line: that line must show up
    // while the input is still open.
    let end_of_line = stream
        .windows(first_line.len())
        .position(|w| w == first_line)
        .unwrap()
        + first_line.len();
    stdin.write_all(&stream[frequency_at..end_of_line]).unwrap();
    stdin.flush().unwrap();
    wait_for(first_line, "the kernel's first line");
    wait_for(b"ms] HandOver", "HandOver");

    stdin.write_all(&stream[end_of_line..]).unwrap();
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn another_build_exits_2_naming_both_identities() {
    let mut stream = recording("hello-dyn-pc");
    let id = table_build_id(&std::fs::read(elf()).unwrap()).unwrap();
    // Change the second byte of the build identity inside LoaderStart (rzcobs
    // keeps non-zero bytes as they are), so that the stream claims another build.
    let bytes = id.to_le_bytes();
    let at = stream.windows(2).position(|w| w == &bytes[..2]).unwrap() + 1;
    stream[at] ^= 0x01;
    let output = run(&["--elf", &elf_arg()], &stream);
    let other = format!("{:#010x}", id ^ 0x100);
    let ours = format!("{id:#010x}");
    assert_one_error_line(
        &output,
        2,
        &["another loader build", &other, &ours, "rusty-loader.elf"],
    );
    // The text still passes through; no events are shown.
    let out = stdout(&output);
    assert!(
        out.starts_with("Hello from hello-dyn"),
        "{}",
        shown(&output)
    );
    assert!(!out.contains("ms] "), "{}", shown(&output));
}

#[test]
fn truncated_stream_is_decoded_with_a_warning() {
    let stream = recording("hello-dyn-pc");
    // Cut inside the Kernel event's frame, the seventh.
    let kernel_frame = frames(&stream)[6].clone();
    let output = run(&["--elf", &elf_arg()], &stream[..kernel_frame.start + 4]);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let err = stderr(&output);
    assert!(
        err.contains("rusty-trace: warning: the stream ends inside a frame"),
        "{err}"
    );
    // The events before the cut are shown (in ticks: the frequency comes later).
    assert!(
        stdout(&output).contains("] Module start="),
        "{}",
        shown(&output)
    );
}

#[test]
fn corrupted_frame_is_skipped_and_counted() {
    let mut stream = recording("hello-dyn-pc");
    // The sixth frame (Frequency), filled with bytes that cannot decode: 0xFE
    // announces 133 more bytes than the frame has.
    let frame = frames(&stream)[5].clone();
    stream[frame].fill(0xFE);
    let output = run(&["--elf", &elf_arg(), "--format", "json"], &stream);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let err = stderr(&output);
    assert!(
        err.contains("warning: frame 6 (after CommandLine) did not decode"),
        "{err}"
    );
    assert!(err.contains("] HandOver "), "decoding went on: {err}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        find_key(&json, "malformed_frames"),
        Some(&1.into()),
        "{json}"
    );
}

/// The first value of `key` anywhere in a JSON document.
fn find_key<'a>(json: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match json {
        serde_json::Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|v| find_key(v, key))),
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

#[test]
fn no_trace_in_the_input() {
    let elf = elf_arg();
    let output = run(&["--elf", &elf], b"");
    assert_one_error_line(
        &output,
        2,
        &["no boot trace found", "the input is empty", &elf],
    );

    let text = b"Hermit booting with another loader\nhello\n";
    let output = run(&["--elf", &elf], text);
    assert_one_error_line(
        &output,
        2,
        &["no boot trace found", "--trace-level off", &elf],
    );
    assert_eq!(output.stdout, text, "the text still passes through");

    // Binary garbage with frame markers: frames that do not decode, no panic.
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .chain(*b"\xff\x00\x12\x34\x00\xff\x00\x7f\x00")
        .collect();
    let output = run(&["--elf", &elf], &garbage);
    // What was found, not a guess: how many candidate frames, how each failed.
    assert_one_error_line(
        &output,
        2,
        &[
            "no boot trace found",
            "candidate frames (a frame marker FF 00 up to the next 00), none decodes (",
            "broken encoding",
            "random or damaged bytes",
        ],
    );
}

#[test]
fn an_elf_file_is_no_serial_stream() {
    // The loader ELF itself, given as the stream: the easy mix-up with `cargo xtask
    // trace app.elf`. Nothing is decoded or written to stdout.
    let elf = elf_arg();
    for output in [
        run(&["--elf", &elf, &elf], b""),
        run(&["--elf", &elf], &std::fs::read(&elf).unwrap()),
    ] {
        assert_one_error_line(
            &output,
            2,
            &[
                "is an ELF file, not a serial stream; to boot it: cargo xtask trace ",
                "; to use it for symbols: --elf (the loader's ELF) or --app",
            ],
        );
        assert!(output.stdout.is_empty(), "{}", shown(&output));
    }
    // Found by itself, the loader ELF is not announced either: one line.
    let workspace = tempfile::tempdir().unwrap();
    let found = workspace.path().join("target/x86_64/debug");
    std::fs::create_dir_all(&found).unwrap();
    std::fs::copy(&elf, found.join("rusty-loader.elf")).unwrap();
    let output = run_command(rusty_trace().arg(&elf).current_dir(workspace.path()), b"");
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert_eq!(stderr(&output).lines().count(), 1, "{}", shown(&output));
}

#[test]
fn unreadable_input_exits_2() {
    let output = run(&["--elf", &elf_arg(), "/nonexistent/boot.bin"], b"");
    assert_one_error_line(&output, 2, &["cannot read /nonexistent/boot.bin"]);
    let output = run(&["--elf", &elf_arg(), "/"], b"");
    assert_one_error_line(&output, 2, &["cannot read /"]);
}

/// How long a test waits for output that must come before it calls it a hang: far
/// above any real wait, also on a busy machine (nothing is timed by it).
const HANG_GUARD: Duration = Duration::from_secs(60);

/// An objcopy, found as the loader's build finds one (`xtask::build::find_objcopy`):
/// the llvm-tools component's, else binutils'. There is one wherever the loader
/// builds, so its absence fails rather than skips the stripped-ELF case.
fn objcopy() -> PathBuf {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc runs");
    let llvm = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim())
        .join("lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-objcopy");
    if llvm.exists() {
        return llvm;
    }
    let binutils = Command::new("objcopy").arg("--version").output();
    assert!(
        binutils.is_ok_and(|o| o.status.success()),
        "no objcopy: install binutils or the llvm-tools rustup component (the loader's build needs one too)"
    );
    PathBuf::from("objcopy")
}

#[test]
fn elf_problems_exit_2() {
    let stream = recording("hello-dyn-pc");
    let output = run(&["--elf", "/nonexistent/rusty-loader.elf"], &stream);
    assert_one_error_line(
        &output,
        2,
        &["cannot read the loader ELF /nonexistent/rusty-loader.elf"],
    );

    let not_elf = recordings().join("not-an-elf.txt");
    let output = run(&["--elf", not_elf.to_str().unwrap()], &stream);
    assert_one_error_line(&output, 2, &["is not an ELF file"]);

    // An ELF, but not a loader: this very program.
    let output = run(&["--elf", env!("CARGO_BIN_EXE_rusty-trace")], &stream);
    assert_one_error_line(&output, 2, &["is not a rusty-loader ELF"]);

    let dir = tempfile::tempdir().unwrap();
    let stripped = dir.path().join("stripped.elf");
    // Symbols gone, the table kept: what binutils' --strip-all leaves (LLVM's would
    // drop the table too, unless told to keep it).
    let status = Command::new(objcopy())
        .args(["--strip-all", "--keep-section=.defmt"])
        .arg(elf())
        .arg(&stripped)
        .status()
        .expect("objcopy runs");
    assert!(status.success(), "objcopy --strip-all: {status}");
    let output = run(&["--elf", stripped.to_str().unwrap()], &stream);
    assert_one_error_line(&output, 2, &["is stripped", "unstripped"]);
}

#[test]
fn usage_errors_exit_2() {
    let output = run(&["--format", "yaml"], b"");
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    let output = run(&["--no-such-option"], b"");
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
}

#[test]
fn help_has_examples_and_exit_codes() {
    let output = run(&["--help"], b"");
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    for needle in [
        "Usage: rusty-trace [OPTIONS] [INPUT]",
        "-initrd app.elf | rusty-trace",
        "--format json",
        "Exit status: a replay ends as `cargo xtask trace` ended the boot",
        "            2  usage or setup error",
        "          130  interrupted with Ctrl-C",
        "--status",
    ] {
        assert!(help.contains(needle), "{needle:?} in\n{help}");
    }
    // No option's help says the same thing twice.
    for option in help.split("\n  -").skip(1) {
        let text = option.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut sentences: Vec<&str> = text
            .split(". ")
            .map(|s| s.trim_end_matches('.'))
            .filter(|s| s.len() > 20)
            .collect();
        let all = sentences.len();
        sentences.sort_unstable();
        sentences.dedup();
        assert_eq!(sentences.len(), all, "a sentence repeats in -{option}");
        let halves: Vec<&str> = text.split("QEMU's exit status").collect();
        assert!(halves.len() <= 2, "-{option}");
    }
}

#[test]
fn finds_the_newest_loader_elf_above_the_current_directory() {
    let workspace = tempfile::tempdir().unwrap();
    let profiles = workspace.path().join("target/x86_64");
    let cwd = workspace.path().join("some/where/deep");
    std::fs::create_dir_all(&cwd).unwrap();
    for profile in ["debug", "release"] {
        std::fs::create_dir_all(profiles.join(profile)).unwrap();
    }
    // The release ELF is not a loader ELF at all: picking it would fail, so a
    // success shows the newer debug one was picked.
    let release = profiles.join("release/rusty-loader.elf");
    let debug = profiles.join("debug/rusty-loader.elf");
    std::fs::write(&release, b"old and wrong").unwrap();
    std::fs::copy(elf(), &debug).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&release)
        .unwrap()
        .set_modified(old)
        .unwrap();

    let output = run_command(
        rusty_trace()
            .args(["--quiet", "--no-report"])
            .current_dir(&cwd),
        &recording("hello-dyn-pc"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let err = stderr(&output);
    assert!(err.contains("using "), "{err}");
    assert!(err.contains("debug/rusty-loader.elf"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let output = run_command(rusty_trace().current_dir(empty.path()), b"");
    assert_one_error_line(
        &output,
        2,
        &["no loader ELF given and none found", "cargo xtask build"],
    );
}

#[test]
fn the_loader_elf_of_the_streams_build_is_chosen() {
    // Two builds side by side, the newer not the stream's: a stream from the older
    // one must be decoded with it, not refused as "another loader build".
    let workspace = tempfile::tempdir().unwrap();
    let profiles = workspace.path().join("target/x86_64");
    for profile in ["debug", "release"] {
        std::fs::create_dir_all(profiles.join(profile)).unwrap();
    }
    let ours = profiles.join("release/rusty-loader.elf");
    let newer = profiles.join("debug/rusty-loader.elf");
    std::fs::copy(elf(), &ours).unwrap();
    // Another build: one defmt symbol's name changed (a digit of its
    // disambiguator), which changes the build identity and nothing else.
    let mut other = std::fs::read(elf()).unwrap();
    let key = b"\"disambiguator\":\"";
    let at = other.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    other[at] = if other[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&newer, &other).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&ours)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let ours_id = table_build_id(&std::fs::read(&ours).unwrap()).unwrap();
    assert_ne!(table_build_id(&other).unwrap(), ours_id);

    let output = run_command(
        rusty_trace()
            .args(["--quiet", "--no-report"])
            .current_dir(workspace.path()),
        &recording("hello-dyn-pc"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "rusty-trace: using target/x86_64/release/rusty-loader.elf (its build {ours_id:#010x} is the stream's; --elf chooses another)\n"
        )
    );
    assert!(stdout(&output).contains("tk: ok"), "{}", shown(&output));
}

#[test]
fn a_recordings_status_file_gives_the_exit_line() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("boot.bin");
    std::fs::write(&stream, recording("hello-dyn-pc")).unwrap();
    let args = ["--elf", &elf_arg(), stream.to_str().unwrap()];
    let output = run(&args, b"");
    assert!(!stdout(&output).contains("Exit "), "{}", shown(&output));

    // As `cargo xtask trace --save boot.bin` leaves it.
    let status = dir.path().join("boot.status");
    std::fs::write(&status, "3\n").unwrap();
    let output = run(&args, b"");
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert!(
        stdout(&output).contains("Exit       QEMU status 3: the kernel reported success"),
        "{}",
        shown(&output)
    );
    assert!(
        stderr(&output).contains(&format!(
            "rusty-trace: QEMU status 3 from {} (--status overrides it)",
            status.display()
        )),
        "{}",
        shown(&output)
    );
    std::fs::write(&status, "three\n").unwrap();
    assert_one_error_line(
        &run(&args, b""),
        2,
        &["holds neither QEMU's exit status (a number) nor an end without one"],
    );
}

#[test]
fn a_replay_ends_with_the_status_of_the_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("boot.bin");
    std::fs::write(&stream, recording("hello-dyn-pc")).unwrap();
    let status = dir.path().join("boot.status");
    let args = ["--elf", &elf_arg(), "--quiet", stream.to_str().unwrap()];
    // Each as `cargo xtask trace --save` records it, with the status and the line
    // that run ended with (docs/exit-codes.md).
    for (recorded, code, line) in [
        ("1\n", 1, "the application reported failure (QEMU status 1)"),
        ("9\n", 9, "the application ended with its own value 4 (QEMU status 9)"),
        (
            "timeout 60\n",
            124,
            "QEMU did not end within 60 s and was stopped: the boot hangs after the hand-over, in the application",
        ),
        (
            "interrupted\n",
            130,
            "interrupted: the report covers what arrived before Ctrl-C",
        ),
        ("0\n", 4, "QEMU ended without an exit code"),
        (
            "1\nqemu-error: qemu-system-x86_64: could not load kernel\n",
            125,
            "QEMU failed: qemu-system-x86_64: could not load kernel",
        ),
    ] {
        std::fs::write(&status, recorded).unwrap();
        let output = run(&args, b"");
        assert_one_error_line(&output, code, &[line, &format!("; exit status {code}")]);
    }
    // `--status` overrides the file, as QEMU's status of a live pipe.
    let output = run(&[&args[..], &["--status", "3"]].concat(), b"");
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
}

#[test]
fn a_stream_read_in_one_burst_has_no_host_times() {
    // Through a pipe, but all at once, as from a QEMU that ran before its reader
    // started: the arrival times say nothing about the boot.
    let output = run(&["--elf", &elf_arg()], &recording("hello-dyn-pc"));
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let out = stdout(&output);
    assert!(
        out.contains("Host       times unknown: the stream did not arrive as the loader sent it"),
        "{out}"
    );
    assert!(!out.contains(" firmware"), "{out}");
    let json = run(
        &["--elf", &elf_arg(), "--format", "json"],
        &recording("hello-dyn-pc"),
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["host"]["live"], false, "{}", shown(&json));
    assert_eq!(report["host"]["firmware_us"], serde_json::Value::Null);
}

#[test]
fn a_terminal_as_input_is_told_what_rusty_trace_waits_for() {
    // util-linux's `script` gives rusty-trace a terminal; the Ctrl-D typed into it
    // ends the input.
    let command = format!(
        "{} --elf {} --no-report",
        env!("CARGO_BIN_EXE_rusty-trace"),
        elf_arg()
    );
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let receiver = read_in_background(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = Vec::new();
    let needle = "rusty-trace: reading the serial stream from standard input, a terminal: pipe QEMU's output in or name a file (Ctrl-D ends the input)";
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match receiver.recv_timeout(HANG_GUARD) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => {
                let _ = child.kill();
                panic!("not said; got {:?}", String::from_utf8_lossy(&seen));
            }
        }
    }
    stdin.write_all(b"\x04").unwrap();
    stdin.flush().unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    while let Ok(chunk) = receiver.recv_timeout(Duration::from_secs(2)) {
        seen.extend(chunk);
    }
    // Nothing came: no trace, exit status 2, as for any empty input.
    assert_eq!(status.code(), Some(2), "{}", String::from_utf8_lossy(&seen));
    assert!(String::from_utf8_lossy(&seen).contains("the input is empty"));
}

#[test]
fn ctrl_c_stops_reading_and_still_reports() {
    let stream = recording("hello-dyn-pc");
    let mut child = rusty_trace()
        .args(["--elf", &elf_arg(), "--color", "never"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The whole boot arrives, but the input stays open, as from a process that
    // never ends.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&stream).unwrap();
    stdin.flush().unwrap();
    let receiver = read_in_background(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("tk: ok") {
        let chunk = receiver
            .recv_timeout(HANG_GUARD)
            .unwrap_or_else(|_| panic!("no output; got {:?}", String::from_utf8_lossy(&seen)));
        seen.extend(chunk);
    }
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let status = child.wait().unwrap();
    while let Ok(chunk) = receiver.recv_timeout(Duration::from_secs(2)) {
        seen.extend(chunk);
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    drop(stdin);
    let out = String::from_utf8_lossy(&seen);
    assert_eq!(status.code(), Some(130), "{err}\n{out}");
    assert!(out.contains("rusty-trace boot report"), "{out}");
    let expected = expected_report("hello-dyn-pc").outcome.message;
    assert!(out.contains(&format!("Outcome    {expected}")), "{out}");
    assert!(err.contains("interrupted"), "{err}");
}
