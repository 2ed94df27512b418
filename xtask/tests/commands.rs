//! Every documented command and option of `cargo xtask` that no other test runs from
//! the command line, run once as a user runs it (the real xtask binary): `run` and
//! `trace` through PVH, `--smp`, `-v`, `--trace-level`, `build --release`, `record`,
//! `bench` and `census --microvm`. And the memory map of a PVH boot against the one
//! QEMU holds in guest memory.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::{artifacts, entered, shown, xtask, BOOT_TIMEOUT};
use rusty_loader::wire::{LoaderEvent, MapEntry};
use serde_json::{json, Value};
use trace_decoder::decode::{decode_recording, TraceTable};
use xtask::qemu::{BootProtocol, Machine, QemuConfig};

/// xtask writes the debug loader of every trace level to the same files
/// (`target/x86_64/debug/rusty-loader*`): the tests here that build it hold this, so
/// that none boots a loader another has just replaced with another level's.
fn debug_loader() -> MutexGuard<'static, ()> {
    static FILES: Mutex<()> = Mutex::new(());
    FILES.lock().unwrap_or_else(PoisonError::into_inner)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Checks status 0 and returns stdout.
fn succeeded(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{}", shown(output));
    stdout(output)
}

#[test]
fn run_and_trace_boot_through_pvh_on_both_machines() {
    let _files = debug_loader();
    for machine in [&[][..], &["--microvm"][..]] {
        let mut args = vec!["run", "--boot", "pvh"];
        args.extend(machine);
        args.extend(["--", "hello", "pvh"]);
        let out = succeeded(&xtask(&args));
        assert!(out.contains("tk: args=hello pvh"), "{machine:?}\n{out}");
        assert!(out.contains("tk: ok"), "{machine:?}\n{out}");

        let mut args = vec!["trace", "--color=never", "--boot", "pvh"];
        args.extend(machine);
        args.extend(["--", "hello", "pvh"]);
        let out = succeeded(&xtask(&args));
        assert!(out.contains("] Entry protocol=pvh"), "{machine:?}\n{out}");
        // No file name in front: the PVH command line is the -append text alone.
        assert!(
            out.contains("Command    -- hello pvh\n"),
            "{machine:?}\n{out}"
        );
        assert!(
            out.contains("Exit       QEMU status 3: the kernel reported success"),
            "{machine:?}\n{out}"
        );
    }
}

#[test]
fn smp_and_verbose_reach_qemu() {
    let _files = debug_loader();
    let output = xtask(&["run", "--smp", "2", "-v"]);
    assert!(succeeded(&output).contains("tk: ok"), "{}", shown(&output));
    // -v: the QEMU command line, on stderr, with the CPUs asked for.
    let command = stderr(&output)
        .lines()
        .find(|l| l.starts_with("qemu-system-x86_64 "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no QEMU command line\n{}", shown(&output)));
    assert!(command.contains(" -smp 2 "), "{command}");
    assert!(
        command.contains(" -kernel target/x86_64/debug/rusty-loader "),
        "{command}"
    );
    // Without -v, none.
    let quiet = xtask(&["run"]);
    succeeded(&quiet);
    assert!(
        !stderr(&quiet).contains("qemu-system-x86_64 "),
        "{}",
        shown(&quiet)
    );
}

#[test]
fn trace_levels_from_the_command_line() {
    let _files = debug_loader();
    // off: the loader without a trace (its own file), booting as well.
    let output = xtask(&["run", "--trace-level", "off", "-v"]);
    assert!(succeeded(&output).contains("tk: ok"), "{}", shown(&output));
    assert!(
        stderr(&output).contains(" -kernel target/x86_64/debug/rusty-loader-notrace "),
        "{}",
        shown(&output)
    );
    // ...which `trace` refuses before it builds anything.
    let output = xtask(&["trace", "--trace-level", "off"]);
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert!(
        stderr(&output).contains(
            "error: --trace-level off builds a loader without a trace: use `cargo xtask run`"
        ),
        "{}",
        shown(&output)
    );
    // error: only errors are traced, and a good boot has none.
    let out = succeeded(&xtask(&[
        "trace",
        "--color=never",
        "--trace-level",
        "error",
    ]));
    assert!(out.contains("no error (only errors are traced)"), "{out}");
    assert!(!out.contains("] HandOver "), "{out}");
    // debug: a Mapping event per page-table mapping, beside the info events.
    let out = succeeded(&xtask(&[
        "trace",
        "--color=never",
        "--trace-level",
        "debug",
    ]));
    assert!(out.contains("] Mapping start=0x"), "{out}");
    assert!(out.contains("] HandOver "), "{out}");
    // Put the default loader back for the next test binary's boots (each builds it
    // anyway; this keeps the files as `cargo xtask build` leaves them).
    succeeded(&xtask(&["build"]));
}

#[test]
fn build_release_writes_what_it_lists() {
    let out = succeeded(&xtask(&["build", "--release"]));
    let root = xtask::project_root();
    let listed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, path)| path.trim()))
        .collect();
    for expected in [
        "target/x86_64/release/rusty-loader",
        "target/x86_64/release/rusty-loader.elf",
        "target/test-kernels/release/hello-dyn",
        "target/test-kernels/release/crashing",
    ] {
        let path = root.join(expected);
        assert!(
            listed.contains(&path.to_str().unwrap()),
            "{expected} not listed:\n{out}"
        );
        assert!(path.is_file(), "{} missing", path.display());
    }
    assert!(listed.iter().all(|p| Path::new(p).is_file()), "{out}");
}

/// `record` into another directory: the same files as the decoder's recordings,
/// each decoding with the ELF written beside them and ending with its status.
#[test]
fn record_writes_recordings_the_decoder_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = succeeded(&xtask(&["record", "--out", dir.path().to_str().unwrap()]));
    let committed = xtask::record::recordings_dir();
    let mut names: Vec<String> = std::fs::read_dir(&committed)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".bin")?.to_string())
        })
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    let elf = std::fs::read(dir.path().join("rusty-loader.elf")).expect("the loader ELF");
    let table = TraceTable::from_elf(&elf).expect("a table, and the symbols naming it");
    for name in &names {
        assert!(
            out.contains(&format!("recorded {name} (")),
            "{name}:\n{out}"
        );
        let stream = std::fs::read(dir.path().join(format!("{name}.bin"))).unwrap();
        let decoded = decode_recording(&table, &stream).expect("the recording decodes");
        assert_eq!(decoded.malformed_frames, 0, "{name}");
        assert!(!decoded.truncated, "{name}");
        let last = decoded.events.last().map(|e| e.name()).unwrap_or_default();
        let status = std::fs::read_to_string(dir.path().join(format!("{name}.status"))).unwrap();
        let committed_status =
            std::fs::read_to_string(committed.join(format!("{name}.status"))).unwrap();
        assert_eq!(status, committed_status, "{name}");
        match status.trim() {
            "3" => assert_eq!(last, "HandOver", "{name}"),
            "35" => assert_eq!(last, "Refused", "{name}"),
            other => panic!("{name}: status {other}"),
        }
    }
    assert!(
        out.contains(&format!("wrote {}", dir.path().display())),
        "{out}"
    );
}

/// A short `bench`: every row it always prints, each with its ratio, which must be
/// the row's two figures divided (to the digits shown). The figures themselves are
/// the host's speed and are not checked.
#[test]
fn bench_prints_its_ratios() {
    let output = xtask(&["bench", "--boots", "1", "--decoder-copies", "10"]);
    let out = succeeded(&output);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    for column in ["measure", "baseline", "rusty-loader", "ratio", "reading"] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<&str> = lines.collect();
    for (measure, baseline, ours) in [
        ("boot wall time, demo app", " untraced ", " traced "),
        ("trace size, demo boot", " text log ", " defmt "),
        ("segment copy throughput", " host memcpy ", " loader "),
    ] {
        let row = rows
            .iter()
            .find(|r| r.starts_with(measure))
            .unwrap_or_else(|| panic!("no {measure:?} row\n{}", shown(&output)));
        let expected = figure(row, ours) / figure(row, baseline);
        let printed = ratio_of(row);
        // The ratio is shown to 0.001, each figure to 2 or 3 digits.
        assert!(
            (printed - expected).abs() <= 0.0005 + 0.05 * expected,
            "{row}: {expected:.4} expected"
        );
    }
}

/// The figure after `label` in a bench row (`12.3 ms`, `404 B`, `3.1 MB/s`), in
/// seconds, bytes or bytes per second.
fn figure(row: &str, label: &str) -> f64 {
    let at = row
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} in {row:?}"))
        + label.len();
    let mut words = row[at..].split_whitespace();
    let (Some(number), Some(unit)) = (words.next(), words.next()) else {
        panic!("no figure after {label:?} in {row:?}")
    };
    let number: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("{number:?} in {row:?}"));
    let scale = match unit {
        "ms" => 1e-3,
        "B" => 1.0,
        "MB/s" => 1e6,
        "GB/s" => 1e9,
        other => panic!("unit {other:?} in {row:?}"),
    };
    number * scale
}

/// The ratio column of a bench row (`0.123x`).
fn ratio_of(row: &str) -> f64 {
    row.split_whitespace()
        .find_map(|word| word.strip_suffix('x')?.parse().ok())
        .unwrap_or_else(|| panic!("no ratio in {row:?}"))
}

/// `census --microvm` boots on microvm: its frequency is measured against the APIC
/// timer (no PIT there), so that code is translated, and the PIT's edge reading is
/// not (on pc it is the other way round).
#[test]
fn census_on_microvm_counts_the_microvm_path() {
    let output = xtask(&["census", "--microvm", "--top", "500"]);
    let out = succeeded(&output);
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.contains(" translated blocks, ")
            && first.contains(" instructions in the loader's code (")
            && first.ends_with("target/x86_64/release/rusty-loader.elf)"),
        "{}",
        shown(&output)
    );
    let blocks: u32 = first.split(' ').next().unwrap().parse().unwrap();
    let listed: u32 = out
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next()?.parse::<u32>().ok())
        .sum();
    assert_eq!(listed, blocks, "the functions' blocks add up\n{out}");
    assert!(out.contains("freq::read_apic"), "{out}");
    assert!(!out.contains("freq::read_pit_edge"), "{out}");
}

/// One QMP connection to a QEMU the test started.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn connect(socket: &Path) -> Qmp {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() > deadline => panic!("no QMP socket: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let mut qmp = Qmp {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        qmp.message(); // The greeting.
        qmp.execute(json!({"execute": "qmp_capabilities"}));
        qmp
    }

    fn message(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("QEMU answers");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    fn execute(&mut self, command: Value) -> Value {
        writeln!(self.writer, "{command}").unwrap_or_else(|e| panic!("QMP {command}: {e}"));
        loop {
            let message = self.message();
            if let Some(value) = message.get("return") {
                return value.clone();
            }
            assert!(message.get("error").is_none(), "{command}: {message}");
        }
    }

    /// Ends QEMU. It may close the socket before it answers.
    fn quit(&mut self) {
        let _ = writeln!(self.writer, "{}", json!({"execute": "quit"}));
    }

    /// `xp /<n>gx <address>`: `n` 64-bit words of guest physical memory, as QEMU
    /// reads them.
    fn words(&mut self, address: u64, n: usize) -> Vec<u64> {
        let text = self.execute(json!({
            "execute": "human-monitor-command",
            "arguments": {"command-line": format!("xp /{n}gx {address:#x}")}
        }));
        let words: Vec<u64> = text
            .as_str()
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once(": "))
            .flat_map(|(_, values)| values.split_whitespace())
            .map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).unwrap())
            .collect();
        assert_eq!(words.len(), n, "{text}");
        words
    }
}

/// The magic number at the start of `struct hvm_start_info` (Xen's
/// `arch-x86/hvm/start_info.h`).
const START_INFO_MAGIC: u64 = 0x336e_c578;

/// The memory map in the PVH start info, read by QEMU from guest memory while the
/// kernel waits (the `crashing` kernel's `hang`), against the `MemoryMap` event the
/// loader traced from it: the same entries in the same order. The start info is
/// found at the address the loader got in EBX (`LoaderStart.mbi`), and checked to be
/// one by its magic; everything else comes from QEMU (`xp`), decoded here from
/// Xen's layout, not by the loader's code.
#[test]
fn the_pvh_memory_map_is_the_one_in_qemus_start_info() {
    let _files = debug_loader();
    for machine in [Machine::Pc, Machine::Microvm] {
        let arts = artifacts();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("qmp.sock");
        let mut config = entered(
            QemuConfig::new(&arts.loader.image, &arts.kernels.crashing),
            BootProtocol::Pvh,
            machine,
        );
        config.append = Some("-- hang".to_string());
        config.extra_args = vec![
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", socket.display()).into(),
        ];
        let mut qemu = Command::new(&config.qemu)
            .args(config.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("QEMU starts");
        let (sender, receiver) = mpsc::channel();
        let mut serial_out = qemu.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = serial_out.read(&mut buffer) {
                if sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut serial = Vec::new();
        let waiting = b"tk: waiting for ever\n";
        while !serial.windows(waiting.len()).any(|w| w == waiting) {
            match receiver.recv_timeout(BOOT_TIMEOUT) {
                Ok(chunk) => serial.extend(chunk),
                Err(_) => {
                    let _ = qemu.kill();
                    panic!(
                        "{machine:?}: the kernel did not start waiting\n{}",
                        String::from_utf8_lossy(&serial)
                    );
                }
            }
        }
        let mut qmp = Qmp::connect(&socket);
        qmp.execute(json!({"execute": "stop"}));

        let table = TraceTable::from_elf(&std::fs::read(&arts.loader.elf).unwrap()).unwrap();
        let events = decode_recording(&table, &serial).unwrap().events;
        let start_info = events
            .iter()
            .find_map(|e| match e.kind {
                LoaderEvent::LoaderStart { mbi, .. } => Some(u64::from(mbi)),
                _ => None,
            })
            .expect("LoaderStart");
        let traced = trace_decoder::decode::memory_map(&events);

        // struct hvm_start_info (version 1): magic, version, flags, nr_modules,
        // modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr, memmap_entries.
        let header = qmp.words(start_info, 7);
        assert_eq!(header[0] & 0xffff_ffff, START_INFO_MAGIC, "{machine:?}");
        assert!(
            header[0] >> 32 >= 1,
            "{machine:?}: version 1 has the memory map"
        );
        let (memmap, entries) = (header[5], (header[6] & 0xffff_ffff) as usize);
        // struct hvm_memmap_table_entry: addr, size, type (and a reserved u32).
        let held: Vec<(u64, u64, u64)> = qmp
            .words(memmap, 3 * entries)
            .chunks(3)
            .map(|e| (e[0], e[1], e[2] & 0xffff_ffff))
            .collect();
        qmp.quit();
        let _ = qemu.wait();
        eprintln!("{machine:?}: QEMU's start info at {start_info:#x}: {held:x?}");
        assert!(
            held.iter().any(|&(_, size, kind)| kind == 1 && size > 0),
            "{machine:?}: no RAM in {held:x?}"
        );
        // Each entry as it is, but for its type: the loader hands on E820 types 1-5
        // (which mean what Multiboot's mean) and makes any other reserved (2), the
        // MBI having no other (qboot, microvm's firmware, ends its list with an
        // empty entry of type 0).
        let expected: Vec<MapEntry> = held
            .iter()
            .map(|&(start, size, kind)| MapEntry {
                start,
                end: start + size,
                kind: if (1..=5).contains(&kind) {
                    kind as u8
                } else {
                    2
                },
            })
            .collect();
        assert_eq!(traced, expected, "{machine:?}: traced vs QEMU's start info");
    }
}
