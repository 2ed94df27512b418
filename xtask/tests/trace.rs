//! The boot trace against the truth: each test kernel is booted, its serial stream
//! decoded with the loader ELF, and every event compared with what the test knows
//! independently — the application's ELF program headers and relocations, QEMU's
//! command line, and what the kernel itself reported about its memory map, boot
//! info, image, TLS, stack and device tree.

mod common;

use std::path::Path;

use common::{artifacts, boot, config, parse_hex, parse_range, KernelReport};
use goblin::elf::program_header::PT_LOAD;
use goblin::elf::Elf;
use rusty_loader::wire::LoaderEvent;
use trace_decoder::decode::{decode_recording, Decoded, Event, TraceTable};
use xtask::qemu::{Machine, QemuConfig};

struct TracedBoot {
    decoded: Decoded,
    report: KernelReport,
    /// Bytes on the wire that belong to frames (markers included).
    frame_bytes: usize,
}

fn table() -> TraceTable {
    let elf = std::fs::read(&artifacts().loader.elf).unwrap();
    TraceTable::from_elf(&elf).expect("the loader ELF has a defmt table")
}

fn traced_boot(config: &QemuConfig) -> TracedBoot {
    let run = boot(config);
    assert_eq!(run.status, Some(3), "serial:\n{}", run.serial_text());
    let decoded = decode_recording(&table(), &run.serial).expect("the stream decodes");
    assert_eq!(decoded.malformed_frames, 0);
    assert!(!decoded.truncated);
    let report = KernelReport::parse(&String::from_utf8_lossy(&decoded.text));
    let frame_bytes = run.serial.len() - decoded.text.len();
    TracedBoot {
        decoded,
        report,
        frame_bytes,
    }
}

/// The one event of a kind, its fields bound by the pattern: `one!(events,
/// LoaderEvent::Tls { start, .. } => *start)`. Fails unless exactly one matches.
macro_rules! one {
    ($events:expr, $pattern:pat => $value:expr) => {{
        let found: Vec<_> = $events
            .iter()
            .filter_map(|e: &Event| match &e.kind {
                $pattern => Some($value),
                _ => None,
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {} event",
            stringify!($pattern)
        );
        found.into_iter().next().unwrap()
    }};
}

/// Whether any event matches the pattern.
macro_rules! any {
    ($events:expr, $pattern:pat) => {
        $events.iter().any(|e: &Event| matches!(e.kind, $pattern))
    };
}

/// Every check that holds for every kernel.
fn check_trace(kernel_path: &Path, config: &QemuConfig, traced: &TracedBoot) {
    let events = &traced.decoded.events;
    let report = &traced.report;
    let names: Vec<&str> = events.iter().map(|e| e.name()).collect();

    // Order: identity first, the start-up code's stamps next, hand-over last.
    assert_eq!(
        names[..5],
        [
            "LoaderStart",
            "PagingEnabled",
            "LongModeEntered",
            "Entry",
            "MemoryMap"
        ]
    );
    // These boots enter through Multiboot (refusals.rs checks PVH's `Entry`).
    assert_eq!(events[3].message(), "Entry protocol=multiboot");
    assert_eq!(*names.last().unwrap(), "HandOver", "{names:?}");
    let LoaderEvent::LoaderStart { format, build, mbi } = events[0].kind else {
        panic!("LoaderStart first");
    };
    assert_eq!(u64::from(format), trace_decoder::decode::TRACE_FORMAT);
    assert_eq!(u64::from(build), table().build_id());
    assert_eq!(u64::from(mbi), parse_hex(report.one("mbi")));

    // Times: LoaderStart at the Multiboot entry, then the mode switch as the
    // start-up code timed it, then every event later than the one before (each
    // frame carries the ticks since the previous one; none may be 0 here, where
    // every event follows real work, or saturated).
    let times: Vec<u64> = events.iter().map(|e| e.timestamp).collect();
    assert_eq!(times[0], 0, "LoaderStart is timed at the entry");
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "timestamps must grow: {times:?}"
    );
    assert!(
        times.windows(2).all(|w| w[1] - w[0] < u64::from(u32::MAX)),
        "no gap saturates: {times:?}"
    );

    // Memory-map entries: every usable one is what the kernel read from the MBI.
    let map = trace_decoder::decode::memory_map(events);
    assert!(map.len() >= 2, "{map:?}");
    assert!(map.iter().all(|e| (1..=5).contains(&e.kind)), "{map:?}");
    let mut traced_ram: Vec<(u64, u64)> = map
        .iter()
        .filter(|e| e.kind == 1)
        .map(|e| (e.start, e.end))
        .collect();
    let mut kernel_ram: Vec<(u64, u64)> = report.all("mem").into_iter().map(parse_range).collect();
    traced_ram.sort();
    kernel_ram.sort();
    assert_eq!(traced_ram, kernel_ram);

    // The command line is QEMU's: the file name, then the -append text.
    let (text, kernel_args_at, app_args_at) = one!(events, LoaderEvent::CommandLine { text, kernel_args_at, app_args_at } => (text, *kernel_args_at, *app_args_at));
    assert_eq!(*text, config.command_line());
    if let Some(append) = &config.append {
        assert_eq!(&text[usize::from(kernel_args_at)..], append.as_str());
        let app_args = append.split_once("-- ").map(|(_, a)| a).unwrap();
        assert_eq!(&text[usize::from(app_args_at)..], app_args);
    }
    let frequency = one!(events, LoaderEvent::Frequency { khz, source, window_us } => (*khz, source.as_str(), *window_us));
    assert_eq!(frequency, (2_800_000, "cmdline", 0), "given, not measured");

    // Segments equal the application's program headers, moved by the load bias.
    let bytes = std::fs::read(kernel_path).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    let (image_start, image_end) = parse_range(report.one("image"));
    let (base, entry_version, entry, segment_count) = one!(events, LoaderEvent::Kernel { base, entry_version, entry, segments, .. } => (*base, *entry_version, *entry, *segments));
    assert_eq!(base, image_start);
    assert_eq!(entry_version, hermit_entry_version(&elf, &bytes));
    let bias = parse_hex(report.one("bias"));
    assert_eq!(entry, elf.entry + bias);
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect();
    assert_eq!(usize::from(segment_count), loads.len());
    let segments: Vec<(u64, u64, u64, u8)> = events
        .iter()
        .filter_map(|e| match e.kind {
            LoaderEvent::SegmentLoaded {
                addr,
                filesz,
                memsz,
                flags,
                ..
            } => Some((addr, filesz, memsz, flags)),
            _ => None,
        })
        .collect();
    assert_eq!(segments.len(), loads.len());
    for (&(addr, filesz, memsz, flags), header) in segments.iter().zip(&loads) {
        // In program-header order, each at its ELF address plus the load bias.
        assert_eq!(addr, header.p_vaddr + bias);
        assert_eq!(filesz, header.p_filesz);
        assert_eq!(memsz, header.p_memsz);
        assert_eq!(u32::from(flags), header.p_flags);
        assert!(
            image_start <= addr && addr + header.p_memsz <= image_end,
            "segment inside the image"
        );
    }

    // Relocations: as many RELATIVE ones as the ELF has.
    let relocated = one!(events, LoaderEvent::Relocated { relative, .. } => *relative);
    let relative = elf
        .dynrelas
        .iter()
        .filter(|r| r.r_type == goblin::elf::reloc::R_X86_64_RELATIVE)
        .count();
    assert_eq!(relocated as usize, relative);

    // TLS, device tree, boot info and stack as the kernel found them.
    let tls: Vec<u64> = report.one("tls").split(',').map(parse_hex).collect();
    let traced_tls = events.iter().find_map(|e| match e.kind {
        LoaderEvent::Tls {
            start,
            filesz,
            memsz,
            align,
        } => Some(vec![start, filesz, memsz, align]),
        _ => None,
    });
    assert_eq!(traced_tls.unwrap_or(vec![0, 0, 0, 0]), tls);
    // A device tree exactly where the boot info says; none for entry version 2.
    let fdt = events.iter().find_map(|e| match e.kind {
        LoaderEvent::DeviceTree { addr, .. } => Some(addr),
        _ => None,
    });
    match fdt {
        Some(addr) => assert_eq!(addr, parse_hex(report.one("fdt"))),
        None => {
            assert_eq!(entry_version, 2);
            assert_eq!(parse_hex(report.one("fdt")), 0);
        }
    }
    let boot_info = parse_hex(report.one("bootinfo"));
    let (stack_bottom, stack_top) = parse_range(report.one("stack"));
    assert_eq!(stack_top - stack_bottom, 32 * 1024, "the ABI's stack size");
    let pml4 = one!(events, LoaderEvent::PageTables { pml4, .. } => *pml4);
    assert_eq!(pml4, parse_hex(report.one("cr3")));

    let hand_over =
        one!(events, LoaderEvent::HandOver { entry, rdi, rsp, .. } => (*entry, *rdi, *rsp));
    assert_eq!(hand_over, (elf.entry + bias, boot_info, stack_bottom));
}

/// The entry version in the application's HERMIT note, read independently of the
/// loader.
fn hermit_entry_version(elf: &Elf, bytes: &[u8]) -> u8 {
    elf.iter_note_headers(bytes)
        .expect("the application has notes")
        .filter_map(Result::ok)
        .find(|note| note.name == "HERMIT" && note.n_type == 0x5a00)
        .expect("a HERMIT note")
        .desc[0]
}

fn traced_config(app: &Path, machine: Machine) -> QemuConfig {
    let mut config = config(app);
    config.machine = machine;
    config.append = Some("-freq 2800 -- first second".to_string());
    config
}

/// The generation's name as the loader library decides it for `app`: the trace must
/// say the same, so the names the binary interns cannot drift from the library's.
fn library_generation(app: &Path) -> &'static str {
    let bytes = std::fs::read(app).unwrap();
    let kernel = rusty_loader::elf::inspect(&bytes).expect("a test kernel the loader accepts");
    kernel.generation().name()
}

#[test]
fn hello_dyn_trace_matches_the_truth() {
    let app = &artifacts().kernels.hello_dyn;
    let config = traced_config(app, Machine::Pc);
    let traced = traced_boot(&config);
    check_trace(app, &config, &traced);
    let kernel = one!(traced.decoded.events, LoaderEvent::Kernel { major, minor, patch, generation, kind, .. } => ((*major, *minor, *patch), generation.as_str(), kind.as_str()));
    assert_eq!(
        kernel,
        ((0, 13, 0), "0.11+", "dyn"),
        "version from the ABI-tag note"
    );
    assert_eq!(kernel.1, library_generation(app));
}

#[test]
fn legacy_dyn_trace_matches_the_truth_on_microvm() {
    let app = &artifacts().kernels.legacy_dyn;
    let config = traced_config(app, Machine::Microvm);
    let traced = traced_boot(&config);
    check_trace(app, &config, &traced);
    let kernel = one!(traced.decoded.events, LoaderEvent::Kernel { major, minor, patch, generation, .. } => ((*major, *minor, *patch), generation.as_str()));
    assert_eq!(kernel, ((0, 0, 0), "0.6-0.10"), "no ABI-tag note");
    assert_eq!(kernel.1, library_generation(app));
    assert!(!any!(traced.decoded.events, LoaderEvent::Tls { .. }));
}

#[test]
fn legacy_v2_trace_matches_the_truth() {
    let app = &artifacts().kernels.legacy_v2;
    let config = traced_config(app, Machine::Pc);
    let traced = traced_boot(&config);
    check_trace(app, &config, &traced);
    let events = &traced.decoded.events;
    assert_eq!(
        one!(events, LoaderEvent::Kernel { entry_version, .. } => *entry_version),
        2
    );
    assert!(
        !any!(events, LoaderEvent::DeviceTree { .. }),
        "no device tree for entry version 2"
    );
}

#[test]
fn hello_exec_trace_matches_the_truth() {
    let app = &artifacts().kernels.hello_exec;
    let config = traced_config(app, Machine::Pc);
    let traced = traced_boot(&config);
    check_trace(app, &config, &traced);
    assert_eq!(
        one!(traced.decoded.events, LoaderEvent::Kernel { kind, .. } => kind.as_str()),
        "exec"
    );
    let relocated =
        one!(traced.decoded.events, LoaderEvent::Relocated { relative, .. } => *relative);
    assert_eq!(relocated, 0);
}

/// The kernel the loader's copy and relocation times are measured on: every one of
/// its relocations traced, on microvm (where nothing else costs much).
#[test]
fn big_dyn_trace_matches_the_truth_on_microvm() {
    let app = &artifacts().kernels.big_dyn;
    let config = traced_config(app, Machine::Microvm);
    let traced = traced_boot(&config);
    check_trace(app, &config, &traced);
    let relocated =
        one!(traced.decoded.events, LoaderEvent::Relocated { relative, .. } => *relative);
    assert!(relocated >= 2000);
}

/// The trace's size, counted under `-icount`: there every tick is an instruction, so
/// the tick counts the frames carry (and the bytes they take) are the same on any
/// host, busy or not, and two boots send the same bytes.
#[test]
fn trace_stays_small() {
    let app = &artifacts().kernels.hello_dyn;
    let mut config = traced_config(app, Machine::Pc);
    config.deterministic = true;
    let traced = traced_boot(&config);
    let again = traced_boot(&config);
    assert_eq!(
        traced.frame_bytes, again.frame_bytes,
        "two boots under -icount send traces of the same size"
    );
    let regions = trace_decoder::decode::memory_map(&traced.decoded.events).len();
    let segments = traced
        .decoded
        .events
        .iter()
        .filter(|e| matches!(e.kind, LoaderEvent::SegmentLoaded { .. }))
        .count();
    let command_line = config.command_line().len();
    println!(
        "trace: {} bytes on the wire, {} events ({regions} memory regions, {segments} segments, {command_line}-byte command line)",
        traced.frame_bytes,
        traced.decoded.events.len()
    );
    // The budget: TRACE_BUDGET bytes for the trace of a demo boot, plus the command
    // line, which the trace carries verbatim and whose length the user chooses. A
    // new event or field that breaks this should be worth its bytes.
    assert!(
        traced.frame_bytes <= TRACE_BUDGET + command_line,
        "the trace grew to {} bytes, {} without the command line (budget {TRACE_BUDGET})",
        traced.frame_bytes,
        traced.frame_bytes - command_line
    );
}

/// The trace of a demo boot without its command line (18 events, 7 memory regions,
/// 4 segments, the debug loader under `-icount`): 356 bytes measured
/// (docs/trace-format.md, "Size").
const TRACE_BUDGET: usize = 360;

/// Decodes the raw stream exactly as stock `defmt-print` does: all bytes into one
/// stream decoder, skipping what does not decode. The markers and text must cost
/// no event.
#[test]
fn stock_defmt_decoding_reads_every_event() {
    let app = &artifacts().kernels.hello_dyn;
    let config = traced_config(app, Machine::Pc);
    let run = boot(&config);
    let ours = decode_recording(&table(), &run.serial).unwrap().events;

    let elf = std::fs::read(&artifacts().loader.elf).unwrap();
    let table = defmt_decoder::Table::parse(&elf).unwrap().unwrap();
    let mut decoder = table.new_stream_decoder();
    decoder.received(&run.serial);
    let mut messages = Vec::new();
    loop {
        match decoder.decode() {
            Ok(frame) => messages.push(frame.display_message().to_string()),
            Err(defmt_decoder::DecodeError::Malformed) => continue,
            Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
        }
    }
    let names: Vec<String> = messages
        .iter()
        .map(|m| m.split(' ').next().unwrap().to_string())
        .collect();
    let expected: Vec<String> = ours.iter().map(|e| e.name().to_string()).collect();
    assert_eq!(names, expected);

    // With the defmt-print binary installed (`.ci/run` installs it), the real thing
    // must agree too; without it the test says, in cargo's output, that this part
    // was skipped.
    let printed = match std::process::Command::new("defmt-print")
        .arg("-e")
        .arg(&artifacts().loader.elf)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&run.serial).unwrap();
            child.wait_with_output().expect("defmt-print runs")
        }
        Err(why) => {
            use std::io::Write;
            // Straight to the terminal: cargo test captures `eprintln!` of a
            // passing test.
            let _ = writeln!(
                std::io::stderr(),
                "note: stock_defmt_decoding_reads_every_event: defmt-print not run ({why}); \
                 `cargo install defmt-print --locked` to compare with it"
            );
            return;
        }
    };
    let printed = String::from_utf8_lossy(&printed.stdout);
    for name in &expected {
        assert!(
            printed.contains(name.as_str()),
            "defmt-print did not show {name}:\n{printed}"
        );
    }
    assert_eq!(
        printed.lines().filter(|l| l.contains(" INFO ")).count(),
        expected.len(),
        "{printed}"
    );
}
