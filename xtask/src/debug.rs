//! `cargo xtask debug`: one boot under QEMU's gdb stub with gdb attached, the
//! loader's symbols and the application's at the address the application runs at,
//! stopped where the user asks (README, "Debugging").
//!
//! QEMU starts with the CPU held before its first instruction and a gdb stub on a
//! Unix socket of the session's own ([`QemuConfig::gdb_socket`]). The session's gdb
//! script ([`Script`], written to a file so that an IDE's debugger can use it too)
//! loads the loader's ELF, connects, and sets hardware breakpoints in the loader:
//! the stages asked for, `crash` (the loader's exception entry, whose unwinding
//! information leads on into the code that faulted), and always the hand-over's jump
//! (`rusty_loader_jump_to_kernel`, the kernel's entry in rcx). At the jump, with the
//! kernel copied and relocated, the script adds the application's symbols at bias =
//! entry - the ELF's entry point (0 for `ET_EXEC`) and sets the application's
//! breakpoints. Where the kernel runs is thus read from the jump itself: one source
//! of truth, whatever the loader planned.
//!
//! Why the two kinds of breakpoint: under KVM a software breakpoint is an `int3`
//! written into guest memory, which a later copy overwrites: the firmware copies the
//! loader into memory after the CPU starts (so the loader's breakpoints are hardware
//! ones, of which KVM offers four), and the loader copies the kernel (so the
//! application's are set only once it is in place). Under TCG both kinds live
//! outside guest memory and are unlimited.
//!
//! `--batch` runs gdb without a terminal: the script's end prints the stop, the
//! backtrace and the registers and quits with status 0, and a gdb whose script
//! failed (the boot ended, QEMU was stopped at the timeout) quits with 3; the
//! session's status then says how the boot ended, in `cargo xtask run`'s words
//! ([`trace_decoder::report::ending`]).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use trace_decoder::decode::TraceTable;
use trace_decoder::host::outputs::write_file;
use trace_decoder::report::format::wrap;
use trace_decoder::report::outcome::exception_name;
use trace_decoder::report::symbols::AppSymbols;

use xshell::Shell;

use crate::qemu::{BootProtocol, QemuConfig};
use crate::trace::{BootOptions, Prepared};
use crate::traced_boot::{self as t, Live, TracedRun};
use trace_decoder::report::ending::{Ending, EndingKind, QemuEnd, USAGE_STATUS};

/// `cargo xtask debug`'s options: those of a boot, as for `run`, then the debugger's.
#[derive(clap::Args)]
pub struct DebugArgs {
    #[command(flatten)]
    pub boot: BootOptions,
    #[command(flatten)]
    pub debug: DebugOptions,
}

impl DebugArgs {
    /// `cargo xtask debug`: gdb and the WHEREs checked first (a mistake there costs
    /// no build), then the boot prepared as `run` prepares it, then the session.
    pub fn run(self, sh: &Shell) -> Result<ExitCode> {
        let checked = check(&self.debug)?;
        let kvm = self.debug.kvm && t::kvm_or_warn();
        let script = self.debug.script.as_deref();
        let prepared = Prepared::new(sh, &self.boot, &[("--script", script)], kvm)?;
        let boot = Boot {
            config: prepared.config,
            table: prepared.table,
            timeout: prepared.timeout,
            symbols: prepared.symbols,
            loader_elf: prepared.loader_elf,
        };
        run(checked, &self.debug, boot)
    }
}

/// The options of `cargo xtask debug` besides those of the boot (`run`'s).
#[derive(clap::Args, Debug, Default)]
pub struct DebugOptions {
    /// Where to stop (repeatable): a function of the application or FILE:LINE (of
    /// the loader when the application has none), `stage:<stage>` (a loader stage,
    /// as the trace names it; listed below), `entry` (the kernel's first
    /// instruction: the default) or `crash` (the first CPU exception, before the
    /// loader's handler reports it).
    #[arg(long = "break", value_name = "WHERE")]
    pub breaks: Vec<String>,
    /// No terminal: run to WHERE, print the stop, the backtrace and the registers,
    /// and exit with 0 when WHERE was reached (else the status below).
    #[arg(long, conflicts_with = "serve")]
    pub batch: bool,
    /// Start no debugger: QEMU waits for yours, which attaches by sourcing the
    /// session's script (`gdb -x SCRIPT`, or from an IDE). Ends with the boot.
    #[arg(long)]
    pub serve: bool,
    /// The gdb to run (default: gdb on PATH; it must debug x86_64 code).
    #[arg(long, value_name = "PATH")]
    pub gdb: Option<PathBuf>,
    /// Where to write the session's gdb script (default:
    /// target/xtask-debug/session.gdb).
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Use KVM when it can run the loader here (otherwise a warning saying why, and
    /// TCG). KVM gives four hardware breakpoints: the hand-over takes one, `crash`
    /// one, each loader WHERE one.
    #[arg(long)]
    pub kvm: bool,
}

/// Examples and the stages, for `--help`; the statuses follow ([`help_statuses`]).
pub fn help_text() -> String {
    let mut text = String::from(
        "Examples:
  cargo xtask debug target/test-kernels/debug/hello-dyn --break test_kernels::checks::start
  cargo xtask debug app.elf --break hermit::boot_processor_main --batch
  cargo xtask debug app.elf --break stage:relocation --break crash
  cargo xtask debug target/test-kernels/debug/crashing --break crash --batch -- page-fault
  cargo xtask debug app.elf --serve        (then: gdb -x target/xtask-debug/session.gdb)

Loader stages (--break stage:<stage>, the trace's stage id or name):\n",
    );
    for stage in STAGES {
        let _ = writeln!(text, "  {:<15}{}", stage.id, stage.stops_at);
    }
    text + "\n" + &help_statuses()
        + "With --serve the session ends with the boot, with the status cargo xtask run\ngives that ending (cargo xtask run --help).\n"
}

/// The exit statuses of `cargo xtask debug`: one table, printed by `--help`, listed
/// in docs/exit-codes.md (a test keeps the two in step).
pub fn statuses() -> [(u8, &'static str); 6] {
    let of = |kind: EndingKind| kind.statuses().first;
    [
        (
            REACHED,
            "--batch: stopped at WHERE (the stop, backtrace and registers are printed); without --batch: gdb ended normally",
        ),
        (
            USAGE_STATUS,
            "usage or setup error (arguments, an unknown WHERE, gdb or QEMU not found, the build): nothing booted",
        ),
        (
            NOT_REACHED,
            "--batch: the boot ended before reaching WHERE; the line says how, in the words and with the status of cargo xtask run",
        ),
        (
            of(EndingKind::TimedOut),
            "--batch: WHERE was not reached within --timeout; QEMU was stopped",
        ),
        (
            of(EndingKind::QemuFailed),
            "QEMU or gdb failed: QEMU could not start, or gdb ended without reaching WHERE while the boot went on",
        ),
        (
            of(EndingKind::Interrupted),
            "interrupted with Ctrl-C (--batch, --serve)",
        ),
    ]
}

/// WHERE was reached.
pub const REACHED: u8 = 0;
/// The boot ended before WHERE was reached (an even status: isa-debug-exit, whose
/// statuses `run` passes on, gives only odd ones).
pub const NOT_REACHED: u8 = 6;

/// [`statuses`] as `--help` shows it.
pub fn help_statuses() -> String {
    const STATUS_WIDTH: usize = 5;
    let indent = " ".repeat(2 + STATUS_WIDTH + 2);
    let mut text = String::from("Exit status:\n");
    for (status, meaning) in statuses() {
        for (i, line) in wrap(meaning, 80 - indent.len()).iter().enumerate() {
            if i == 0 {
                let _ = writeln!(text, "  {status:>STATUS_WIDTH$}  {line}");
            } else {
                let _ = writeln!(text, "{indent}{line}");
            }
        }
    }
    text
}

/// Where one loader stage begins, as a breakpoint.
#[derive(Debug, PartialEq, Eq)]
pub struct Stage {
    /// The stage's id in the trace's timeline (`report::Stage::id`,
    /// docs/report-schema.md).
    pub id: &'static str,
    /// Its name in the reports.
    pub name: &'static str,
    /// Where the breakpoint goes.
    pub at: StageAt,
    /// What the stop is, for `--help`.
    pub stops_at: &'static str,
}

/// A stage's place in the loader's code.
#[derive(Debug, PartialEq, Eq)]
pub enum StageAt {
    /// The loader's first instruction: `start32` or `pvh_start32`, by how QEMU
    /// boots it.
    LoaderEntry,
    /// A gdb location in the loader (found in debug and release builds alike:
    /// `xtask/tests/debug.rs`).
    Location(&'static str),
    /// The line of a loader source file that holds this text: a place inside a
    /// function, found anew in each checkout.
    SourceLine {
        file: &'static str,
        text: &'static str,
    },
}

/// The jump into the kernel (`loader/src/arch/x86_64/mod.rs`).
pub const HAND_OVER_SYMBOL: &str = "rusty_loader_jump_to_kernel";
/// The loader's exception entry, common to every vector, before the handler runs
/// (`loader/src/arch/x86_64/exceptions.s`).
pub const EXCEPTION_ENTRY_SYMBOL: &str = "exception_common";

/// Every stage of the trace's timeline, in boot order.
pub const STAGES: [Stage; 14] = [
    Stage {
        id: "mode-switch",
        name: "mode switch",
        at: StageAt::LoaderEntry,
        stops_at: "the loader's first instruction (32-bit code)",
    },
    Stage {
        id: "paging",
        name: "paging on",
        at: StageAt::LoaderEntry,
        stops_at: "the same: its first step",
    },
    Stage {
        id: "long-mode",
        name: "long mode",
        at: StageAt::Location("paging_enabled"),
        stops_at: "right after paging is on, before the jump to 64-bit code",
    },
    Stage {
        id: "rust-start-up",
        name: "Rust start-up & MBI",
        at: StageAt::Location("start64"),
        stops_at: "the first 64-bit instruction",
    },
    Stage {
        id: "boot-info",
        name: "command line",
        at: StageAt::Location("rusty_loader::trace::memory_map"),
        stops_at: "the memory map read, its event about to be sent",
    },
    Stage {
        id: "elf",
        name: "ELF inspection & placement",
        at: StageAt::Location("rusty_loader::boot::plan"),
        stops_at: "the application's ELF about to be inspected",
    },
    Stage {
        id: "segment",
        name: "segment",
        at: StageAt::Location("rusty_loader::elf::Kernel::load_segment_timed<fn() -> u64>"),
        stops_at: "each segment's loading (once per segment)",
    },
    Stage {
        id: "segment-copy",
        name: "segment copy",
        at: StageAt::Location("rusty_loader::elf::Kernel::load_segment_timed<fn() -> u64>"),
        stops_at: "the same: a segment's copy comes first",
    },
    Stage {
        id: "segment-zero",
        name: "segment zero",
        at: StageAt::SourceLine {
            file: "loader/src/elf/load.rs",
            text: "zeroed.fill(0);",
        },
        stops_at: "each segment's zeroing",
    },
    Stage {
        id: "relocation",
        name: "relocation",
        at: StageAt::Location("rusty_loader::elf::Kernel::relocate"),
        stops_at: "the relocations about to be applied",
    },
    Stage {
        id: "frequency",
        name: "frequency",
        at: StageAt::Location("rusty_loader::boot::frequency"),
        stops_at: "the TSC frequency about to be taken",
    },
    Stage {
        id: "device-tree",
        name: "device tree",
        at: StageAt::Location("rusty_loader::fdt::build_fdt"),
        stops_at: "the device tree about to be built",
    },
    Stage {
        id: "page-tables",
        name: "page tables",
        at: StageAt::Location("rusty_loader::boot::page_tables"),
        stops_at: "the hand-over page tables about to be built",
    },
    Stage {
        id: "hand-over",
        name: "hand-over",
        at: StageAt::Location(HAND_OVER_SYMBOL),
        stops_at: "the jump into the kernel (rdi boot info, rsi PML4, rdx stack, rcx entry)",
    },
];

/// Where to stop, as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Where {
    /// The kernel's first instruction.
    Entry,
    /// The first CPU exception that reaches the loader's handler.
    Crash,
    /// Where a loader stage begins.
    Stage(&'static Stage),
    /// A function or FILE:LINE, of the application or else of the loader.
    Location(String),
}

impl Where {
    /// Reads one `--break` value.
    pub fn parse(text: &str) -> Result<Where> {
        let text = text.trim();
        if let Some(stage) = text.strip_prefix("stage:") {
            let stage = stage.trim();
            return STAGES
                .iter()
                .find(|s| s.id.eq_ignore_ascii_case(stage) || s.name.eq_ignore_ascii_case(stage))
                .map(Where::Stage)
                .with_context(|| {
                    let ids: Vec<&str> = STAGES.iter().map(|s| s.id).collect();
                    format!(
                        "--break {text}: no such loader stage; the stages are {}",
                        ids.join(", ")
                    )
                });
        }
        match text {
            "" => {
                bail!("--break needs a WHERE: a function, FILE:LINE, stage:<stage>, entry or crash")
            }
            "entry" => Ok(Where::Entry),
            "crash" => Ok(Where::Crash),
            location => Ok(Where::Location(location.to_string())),
        }
    }
}

/// As the user writes it: `entry`, `crash`, `stage:relocation`, the location.
impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Where::Entry => f.write_str("entry"),
            Where::Crash => f.write_str("crash"),
            Where::Stage(stage) => write!(f, "stage:{}", stage.id),
            Where::Location(location) => f.write_str(location),
        }
    }
}

/// What is checked before anything is built: gdb is there and every WHERE reads.
pub struct Checked {
    pub gdb: PathBuf,
    pub wheres: Vec<Where>,
}

/// Finds gdb and reads the WHEREs (the default: `entry`). Nothing is built yet: a
/// mistake here costs no build.
pub fn check(options: &DebugOptions) -> Result<Checked> {
    let gdb = find_gdb(options.gdb.as_deref())?;
    let mut wheres = options
        .breaks
        .iter()
        .map(|text| Where::parse(text))
        .collect::<Result<Vec<_>>>()?;
    if wheres.is_empty() {
        wheres.push(Where::Entry);
    }
    Ok(Checked { gdb, wheres })
}

/// Finds a gdb that debugs x86_64 code, or says in one line how to install one.
pub fn find_gdb(explicit: Option<&Path>) -> Result<PathBuf> {
    let gdb = explicit.map_or_else(|| PathBuf::from("gdb"), Path::to_path_buf);
    let status = Command::new(&gdb)
        .args(["-nx", "-batch", "-ex", "set architecture i386:x86-64"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => Ok(gdb),
        Ok(_) => bail!(
            "{} cannot debug x86_64 code: install one that can (Debian/Ubuntu: sudo apt-get install gdb-multiarch) and give it with --gdb",
            gdb.display()
        ),
        Err(_) => bail!(
            "{} not found: install gdb (Debian/Ubuntu: sudo apt-get install gdb; Fedora: sudo dnf install gdb) or give one with --gdb",
            gdb.display()
        ),
    }
}

/// The application's ELF as the script needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppImage {
    pub path: PathBuf,
    /// `ET_DYN`: loaded where the loader chooses; else `ET_EXEC`, at its link
    /// address.
    pub relocatable: bool,
    /// The entry point in the file (`e_entry`).
    pub entry: u64,
}

impl AppImage {
    /// Reads the ELF header; None when the file is no 64-bit ELF (the loader then
    /// refuses it, and only the loader can be debugged).
    pub fn read(path: &Path) -> Option<AppImage> {
        use goblin::elf::header;
        let bytes = std::fs::read(path).ok()?;
        let head = bytes.get(..header::header64::SIZEOF_EHDR)?;
        if head.get(..4)? != header::ELFMAG || head[header::EI_CLASS] != header::ELFCLASS64 {
            return None;
        }
        let parsed = goblin::elf::Elf::parse_header(head).ok()?;
        Some(AppImage {
            path: path.to_path_buf(),
            relocatable: parsed.e_type == header::ET_DYN,
            entry: parsed.e_entry,
        })
    }

    fn name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// A WHERE made concrete: a gdb location and whose code it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The kernel's first instruction.
    Entry,
    /// The loader's exception entry.
    Crash,
    /// The jump into the kernel (`stage:hand-over`).
    HandOver,
    /// In the loader: a hardware breakpoint from the start.
    Loader { label: String, location: String },
    /// In the application: a breakpoint set at the hand-over.
    App { label: String, location: String },
}

impl Stop {
    fn label(&self) -> String {
        match self {
            Stop::Entry => "entry".to_string(),
            Stop::Crash => "crash".to_string(),
            Stop::HandOver => "stage:hand-over".to_string(),
            Stop::Loader { label, .. } | Stop::App { label, .. } => label.clone(),
        }
    }

    /// A hardware breakpoint of its own in the loader (KVM has four).
    fn loader_hardware_breakpoint(&self) -> bool {
        matches!(self, Stop::Crash | Stop::Loader { .. })
    }
}

/// Turns each WHERE into a stop, asking gdb where an application or loader location
/// is (as the session's gdb will find it). Errors are usage errors: nothing booted.
pub fn resolve(
    gdb: &Path,
    wheres: &[Where],
    loader_elf: &Path,
    app: Option<&AppImage>,
    boot: BootProtocol,
) -> Result<Vec<Stop>> {
    let mut stops = Vec::new();
    for place in wheres {
        let stop = match place {
            Where::Entry if app.is_none() => bail!(
                "--break entry: the application is not a 64-bit ELF: the loader will refuse it and never enter it"
            ),
            Where::Entry => Stop::Entry,
            Where::Crash => Stop::Crash,
            Where::Stage(stage) => match &stage.at {
                StageAt::Location(HAND_OVER_SYMBOL) => Stop::HandOver,
                at => {
                    let location = stage_location(at, boot)?;
                    gdb_finds(gdb, loader_elf, &location).map_err(|why| {
                        anyhow::anyhow!(
                            "--break {place}: the loader {} has no {location} ({why}): was it built from this checkout?",
                            loader_elf.display()
                        )
                    })?;
                    Stop::Loader {
                        label: place.to_string(),
                        location,
                    }
                }
            },
            Where::Location(location) => {
                let in_app = match app {
                    Some(app) => gdb_finds(gdb, &app.path, location),
                    None => Err("the application is not a 64-bit ELF".to_string()),
                };
                match in_app {
                    Ok(()) => Stop::App {
                        label: location.clone(),
                        location: location.clone(),
                    },
                    Err(app_why) => match gdb_finds(gdb, loader_elf, location) {
                        Ok(()) => Stop::Loader {
                            label: location.clone(),
                            location: location.clone(),
                        },
                        Err(_) => bail!(
                            "--break {location}: neither the application nor the loader has it (gdb on the application: {app_why})"
                        ),
                    },
                }
            }
        };
        if !stops.contains(&stop) {
            stops.push(stop);
        }
    }
    Ok(stops)
}

/// A stage's gdb location.
fn stage_location(at: &StageAt, boot: BootProtocol) -> Result<String> {
    Ok(match at {
        StageAt::LoaderEntry => match boot {
            BootProtocol::Multiboot => "start32".to_string(),
            BootProtocol::Pvh => "pvh_start32".to_string(),
            BootProtocol::Uefi => "uefi_start64".to_string(),
        },
        StageAt::Location(location) => location.to_string(),
        StageAt::SourceLine { file, text } => {
            let path = crate::project_root().join(file);
            let source = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let line = source
                .lines()
                .position(|line| line.contains(text))
                .with_context(|| format!("{file} no longer holds `{text}`: xtask/src/debug.rs's stage table needs updating"))?;
            format!("{file}:{}", line + 1)
        }
    })
}

/// Whether gdb finds `location` in `elf`; when not, gdb's reason.
fn gdb_finds(gdb: &Path, elf: &Path, location: &str) -> Result<(), String> {
    let output = Command::new(gdb)
        .args(["-nx", "-batch", "-ex", "set breakpoint pending off", "-ex"])
        .arg(format!("file {}", gdb_path(elf)))
        .arg("-ex")
        .arg(format!("break {location}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("gdb did not run: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(stderr
        .lines()
        .rfind(|line| !line.trim().is_empty())
        .unwrap_or("gdb failed")
        .trim()
        .to_string())
}

/// A file name as gdb's commands take it, quoted.
fn gdb_path(path: &Path) -> String {
    format!("\"{}\"", escape(&path.display().to_string()))
}

/// Backslashes and double quotes escaped, for a gdb string.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The session's gdb script.
pub struct Script<'a> {
    pub loader_elf: &'a Path,
    pub app: Option<&'a AppImage>,
    pub socket: &'a Path,
    pub stops: &'a [Stop],
}

/// What the script prints at each stop, so that a reader (and the tests) can tell
/// the session's lines from gdb's and the kernel's.
pub const PREFIX: &str = "[cargo xtask debug]";

impl Script<'_> {
    /// The script that a debugger sources: connects, sets every stop and runs to the
    /// first.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let app_line = match self.app {
            Some(app) if app.relocatable => format!(
                "# application {} (ET_DYN: its symbols are added at the bias the loader\n# chose, read at the hand-over),\n",
                app.path.display()
            ),
            Some(app) => format!(
                "# application {} (ET_EXEC: its symbols at its link address),\n",
                app.path.display()
            ),
            None => "# no application symbols (the module is not a 64-bit ELF),\n".to_string(),
        };
        let _ = write!(
            s,
            "# gdb commands for one `cargo xtask debug` session (README.md, \"Debugging\"):\n\
             # loader {loader},\n\
             {app_line}\
             # QEMU's gdb stub on {socket}, the CPU held before its first instruction.\n\
             # Another debugger attaches to a session started with --serve by sourcing\n\
             # this file (`gdb -x FILE`, or an IDE's gdb); it ends at the first stop.\n\
             set pagination off\n\
             set confirm off\n\
             set breakpoint pending off\n\
             set $rusty_loader_reached = 0\n\
             file {loader_quoted}\n\
             target remote {socket}\n",
            loader = self.loader_elf.display(),
            socket = self.socket.display(),
            loader_quoted = gdb_path(self.loader_elf),
        );
        let loader_stops = self
            .stops
            .iter()
            .filter(|stop| matches!(stop, Stop::Loader { .. }));
        for stop in loader_stops {
            if let Stop::Loader { label, location } = stop {
                let _ = write!(
                    s,
                    "\n# {label}: a hardware breakpoint, as every one in the loader (under KVM the\n\
                     # firmware's copy of the loader would overwrite a software one).\n\
                     hbreak {location}\n\
                     commands\n  set $rusty_loader_reached = 1\n  echo {PREFIX} reached {label}\\n\nend\n",
                    label = echo_text(label),
                );
            }
        }
        if self.stops.contains(&Stop::Crash) {
            s += &self.crash();
        }
        s += &self.hand_over();
        s += "continue\n";
        s
    }

    /// The script for `--batch`: [`Script::render`], then, when a WHERE's
    /// breakpoint stopped the guest (not QEMU stopping it at the timeout), the stop,
    /// the backtrace, the registers, and gdb leaves with status 0 and the guest still
    /// stopped (the session ends QEMU next). Otherwise, or when an error cut the
    /// script short (the boot ended), gdb goes on to the command the session gives
    /// after the script: `quit 3`.
    pub fn render_batch(&self) -> String {
        self.render()
            + &format!(
                "if $rusty_loader_reached == 1\n\
                 \x20 echo \\n{PREFIX} stopped at:\\n\n\
                 \x20 frame\n\
                 \x20 echo \\n{PREFIX} backtrace:\\n\n\
                 \x20 bt\n\
                 \x20 echo \\n{PREFIX} registers:\\n\n\
                 \x20 info registers {BATCH_REGISTERS}\n\
                 \x20 disconnect\n\
                 \x20 quit 0\n\
                 end\n"
            )
    }

    /// `crash`: the loader's exception entry, before its handler runs. The line
    /// that says so is one `printf` per vector (one write: nothing cuts into it).
    fn crash(&self) -> String {
        let mut s = String::from(
            "\n# crash: the loader's exception entry, before its handler reports the exception.\n\
             # Its unwinding information makes frame 1 the code that faulted.\n\
             define rusty-loader-report-exception\n",
        );
        for vector in 0..32u64 {
            let _ = write!(
                s,
                "  if $rusty_loader_vector == {vector}\n    printf \"{PREFIX} reached crash: CPU exception {vector} ({}), error code %#lx; the faulting frame:\\n\", $rusty_loader_error_code\n  end\n",
                printf_text(exception_name(vector))
            );
        }
        let _ = write!(
            s,
            "end\n\
             hbreak {EXCEPTION_ENTRY_SYMBOL}\n\
             commands\n\
             \x20 silent\n\
             \x20 set $rusty_loader_reached = 1\n\
             \x20 with language c -- set $rusty_loader_vector = *(unsigned long long *)$sp\n\
             \x20 with language c -- set $rusty_loader_error_code = *(unsigned long long *)($sp + 8)\n\
             \x20 rusty-loader-report-exception\n\
             \x20 frame 1\n\
             end\n"
        );
        s
    }

    /// The hand-over: the application's symbols and breakpoints, then on (unless
    /// the hand-over is a stop itself).
    fn hand_over(&self) -> String {
        let mut s = format!(
            "\n# The hand-over: the kernel is in place and its entry in rcx. The application's\n\
             # symbols and breakpoints (software ones: set now, nothing overwrites them).\n\
             hbreak {HAND_OVER_SYMBOL}\n\
             commands\n\
             \x20 silent\n\
             \x20 set $rusty_loader_entry = $rcx\n"
        );
        if let Some(app) = self.app {
            let path = escape(&app.path.display().to_string()).replace('%', "%%");
            let (how, check) = if app.relocatable {
                ("ET_DYN: at the bias the loader chose", String::new())
            } else {
                (
                    "ET_EXEC: at its link address",
                    format!(
                        "  if $rusty_loader_bias != 0\n    echo {PREFIX} warning: the loader entered an ET_EXEC kernel away from its entry point\\n\n  end\n"
                    ),
                )
            };
            let _ = write!(
                s,
                "  set $rusty_loader_bias = $rusty_loader_entry - {entry:#x}\n\
                 \x20 eval \"add-symbol-file \\\"{path}\\\" -o %#lx\", $rusty_loader_bias\n\
                 \x20 printf \"{PREFIX} hand-over: the kernel's entry is %#lx; {name}'s symbols at bias %#lx ({how})\\n\", $rusty_loader_entry, $rusty_loader_bias\n\
                 {check}",
                entry = app.entry,
                name = echo_text(&app.name()).replace('%', "%%"),
            );
        }
        for stop in self.stops {
            match stop {
                Stop::App { label, location } => {
                    let _ = write!(
                        s,
                        "  break {location}\n  commands\n    set $rusty_loader_reached = 1\n    echo {PREFIX} reached {}\\n\n  end\n",
                        echo_text(label)
                    );
                }
                Stop::Entry => {
                    let _ = write!(
                        s,
                        "  tbreak *$rusty_loader_entry\n  commands\n    set $rusty_loader_reached = 1\n    echo {PREFIX} reached entry: the kernel's first instruction\\n\n  end\n"
                    );
                }
                _ => {}
            }
        }
        if self.stops.contains(&Stop::HandOver) {
            let _ = write!(
                s,
                "  set $rusty_loader_reached = 1\n  echo {PREFIX} reached stage:hand-over: the jump into the kernel\\n\n  frame\n"
            );
        } else {
            s += "  continue\n";
        }
        s += "end\n";
        s
    }
}

/// The registers `--batch` prints: the general ones, RIP and RFLAGS, the segments
/// and control registers a boot is about (not the vector registers).
const BATCH_REGISTERS: &str = "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags cs ss fs_base gs_base cr0 cr2 cr3 cr4 efer";

/// Text for gdb's `echo`: backslashes doubled.
fn echo_text(text: &str) -> String {
    text.replace('\\', "\\\\")
}

/// Text for a gdb `printf` format string: also quotes and per cent signs escaped.
fn printf_text(text: &str) -> String {
    escape(text).replace('%', "%%")
}

/// Everything the session needs from the boot's preparation (`run`'s).
pub struct Boot {
    pub config: QemuConfig,
    /// The loader's trace table; None for a loader built without tracing.
    pub table: Option<TraceTable>,
    /// `--timeout` (for `--batch`).
    pub timeout: Duration,
    pub symbols: Option<AppSymbols>,
    pub loader_elf: PathBuf,
}

/// How long a session without `--batch` may last: as long as the person debugging
/// wants.
const NO_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long QEMU may take to open its gdb socket.
const SOCKET_PATIENCE: Duration = Duration::from_secs(30);

/// A directory of the session's own for the gdb socket and the batch script,
/// removed when dropped.
struct SessionDir(PathBuf);

impl SessionDir {
    fn new() -> io::Result<SessionDir> {
        let dir = std::env::temp_dir().join(format!("rusty-loader-debug-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(SessionDir(dir))
    }
}

impl Drop for SessionDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The session's mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Interactive,
    Batch,
    Serve,
}

/// `cargo xtask debug`, after the boot was prepared as for `run`.
pub fn run(checked: Checked, options: &DebugOptions, boot: Boot) -> Result<ExitCode> {
    let mode = if options.batch {
        Mode::Batch
    } else if options.serve {
        Mode::Serve
    } else {
        Mode::Interactive
    };
    let app = boot.config.app.as_deref().and_then(AppImage::read);
    let stops = resolve(
        &checked.gdb,
        &checked.wheres,
        &boot.loader_elf,
        app.as_ref(),
        boot.config.boot,
    )?;
    if boot.config.kvm {
        check_hardware_breakpoints(&stops)?;
    }
    let session = SessionDir::new().context("creating the session's directory")?;
    let socket = session.0.join("gdb.sock");
    let script = Script {
        loader_elf: &boot.loader_elf,
        app: app.as_ref(),
        socket: &socket,
        stops: &stops,
    };
    let script_path = options
        .script
        .clone()
        .unwrap_or_else(|| crate::project_root().join("target/xtask-debug/session.gdb"));
    if let Some(dir) = script_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_file(&script_path, "the gdb script", script.render())?;
    eprintln!("wrote {}", script_path.display());
    // What gdb runs: the script, with the batch ending for --batch.
    let gdb_script = match mode {
        Mode::Batch => {
            let path = session.0.join("batch.gdb");
            write_file(&path, "the gdb script", script.render_batch())?;
            path
        }
        Mode::Interactive | Mode::Serve => script_path.clone(),
    };
    match mode {
        // Ctrl-C stops the boot (and QEMU with it); gdb, in a process group of its
        // own, learns it from the closed connection.
        Mode::Batch | Mode::Serve => trace_decoder::host::pump::stop_on_ctrl_c(),
        // Ctrl-C is the debugger's (it interrupts the guest): this process lets it
        // pass, QEMU does not see it (a process group of its own).
        Mode::Interactive => {
            let _ = ctrlc::set_handler(|| {});
        }
    }
    let config = QemuConfig {
        gdb_socket: Some(socket.clone()),
        ..boot.config.clone()
    };
    let timeout = match mode {
        Mode::Batch => boot.timeout,
        Mode::Interactive | Mode::Serve => NO_TIMEOUT,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let output_open = Arc::new(AtomicBool::new(true));
    let start = Instant::now();
    std::thread::scope(|scope| -> Result<ExitCode> {
        let qemu = scope.spawn(|| {
            let mut out = GuestText {
                open: output_open.clone(),
                partial_lines: mode == Mode::Interactive,
                pending: Vec::new(),
            };
            let live = Live {
                out: &mut out,
                style: Default::default(),
                events: false,
            };
            t::boot_until(
                &config,
                boot.table.as_ref(),
                timeout,
                Some(live),
                stop.clone(),
            )
        });
        let join = |qemu: std::thread::ScopedJoinHandle<'_, Result<TracedRun>>| {
            qemu.join().expect("the boot does not panic")
        };
        // A debugger connects once QEMU listens.
        while !socket.exists() {
            if qemu.is_finished() {
                let ending = join(qemu)?.ending();
                eprintln!(
                    "error: QEMU ended before its gdb stub opened: {}; exit status {}",
                    ending.reason, ending.status
                );
                return Ok(ExitCode::from(ending.status));
            }
            if start.elapsed() > SOCKET_PATIENCE {
                stop.store(true, Ordering::Relaxed);
                let _ = join(qemu);
                bail!(
                    "QEMU did not open its gdb socket {} within {} s",
                    socket.display(),
                    SOCKET_PATIENCE.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if mode == Mode::Serve {
            eprintln!(
                "QEMU waits for a debugger: gdb -x {} (or source that file from your IDE's gdb)",
                script_path.display()
            );
            return Ok(serve_ending(&join(qemu)?, boot.symbols.as_ref()));
        }
        // Under --batch gdb is ended a little before QEMU's timeout: QEMU then stops
        // the guest to read its registers, which a gdb still attached would take for
        // a stop of its own (and trip over when QEMU goes).
        let gdb_deadline =
            (mode == Mode::Batch).then(|| start + timeout.saturating_sub(GDB_MARGIN));
        let gdb_status = run_gdb(&checked.gdb, mode, &gdb_script, gdb_deadline);
        // When gdb never got there because the boot ended first, the rest of the
        // guest's text is still on its way from QEMU, which has ended: it is read
        // to its end (briefly: a QEMU still running is stopped below).
        if matches!(gdb_status, Ok(GdbRun::Exited(Some(GDB_NOT_REACHED)))) {
            let drained = Instant::now() + DRAIN_PATIENCE;
            while !qemu.is_finished() && Instant::now() < drained {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // The guest's output after gdb is done is no longer the session's.
        output_open.store(false, Ordering::Relaxed);
        // QEMU ends now, or at its timeout, right after gdb's.
        if !matches!(gdb_status, Ok(GdbRun::Late)) {
            stop.store(true, Ordering::Relaxed);
        }
        let run = join(qemu)?;
        let gdb_status = match gdb_status? {
            GdbRun::Exited(status) => status,
            GdbRun::Late => None,
        };
        if mode == Mode::Interactive {
            if run.qemu != QemuEnd::Killed {
                let ending = run.ending();
                eprintln!(
                    "the boot ended: {}, for which cargo xtask run exits with status {}",
                    ending.reason, ending.status
                );
            }
            return Ok(match gdb_status {
                Some(0) => ExitCode::SUCCESS,
                _ => {
                    eprintln!("error: gdb failed (status {gdb_status:?})");
                    ExitCode::from(of_kind(EndingKind::QemuFailed))
                }
            });
        }
        let gdb_end = match gdb_status {
            Some(0) => GdbEnd::Reached,
            Some(GDB_NOT_REACHED) => GdbEnd::NotReached,
            other => GdbEnd::Failed(other),
        };
        let wheres: Vec<String> = stops.iter().map(Stop::label).collect();
        let verdict = verdict(gdb_end, &run.qemu, &run.ending(), &wheres.join(", "));
        if let Some(message) = &verdict.message {
            eprintln!("error: {message}; exit status {}", verdict.status);
            if let Some(said) = run.qemu_said(boot.symbols.as_ref()) {
                eprintln!("QEMU: {said}");
            }
        }
        Ok(ExitCode::from(verdict.status))
    })
}

/// Under `--kvm`, whether the loader's stops fit in KVM's hardware breakpoints.
fn check_hardware_breakpoints(stops: &[Stop]) -> Result<()> {
    // The hand-over's breakpoint is always there.
    let hardware = 1 + stops
        .iter()
        .filter(|s| s.loader_hardware_breakpoint())
        .count();
    if hardware > KVM_HARDWARE_BREAKPOINTS {
        bail!(
            "--kvm: these WHEREs need {hardware} hardware breakpoints in the loader (the hand-over's included), KVM has {KVM_HARDWARE_BREAKPOINTS}: ask for fewer loader stops, or debug under TCG"
        );
    }
    Ok(())
}

/// How long before QEMU's timeout a batch gdb is ended.
const GDB_MARGIN: Duration = Duration::from_millis(500);

/// How gdb ended.
enum GdbRun {
    /// By itself, with its exit status (None: a signal).
    Exited(Option<i32>),
    /// Killed at the deadline.
    Late,
}

/// Runs gdb on `script` and waits for it (until `deadline`, when there is one:
/// then it is killed).
fn run_gdb(gdb: &Path, mode: Mode, script: &Path, deadline: Option<Instant>) -> Result<GdbRun> {
    let mut command = Command::new(gdb);
    match mode {
        Mode::Batch => {
            command
                .args(["-nx", "-batch"])
                // A gdb that trips over a vanishing target leaves no core file behind.
                .args(["-iex", "maintenance set internal-error corefile no"])
                .arg("-x")
                .arg(script)
                .args(["-ex", &format!("quit {GDB_NOT_REACHED}")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped());
            // Ctrl-C is this process's: the session ends gdb itself.
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        Mode::Interactive | Mode::Serve => {
            command.arg("-q").arg("-x").arg(script);
        }
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start {}", gdb.display()))?;
    // Under --batch gdb's output goes on a line at a time, between the guest's.
    let forward = child.stdout.take().map(|stdout| {
        std::thread::spawn(move || {
            let mut lines = io::BufReader::new(stdout);
            let mut line = Vec::new();
            while matches!(io::BufRead::read_until(&mut lines, b'\n', &mut line), Ok(n) if n > 0) {
                write_line(&line);
                line.clear();
            }
        })
    });
    let ended = wait_for_gdb(&mut child, deadline);
    if let Some(forward) = forward {
        let _ = forward.join();
    }
    ended
}

/// Waits for gdb until `deadline` (then kills it).
fn wait_for_gdb(child: &mut std::process::Child, deadline: Option<Instant>) -> Result<GdbRun> {
    loop {
        if let Some(status) = child.try_wait().context("waiting for gdb")? {
            return Ok(GdbRun::Exited(status.code()));
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            let _ = child.kill();
            child.wait().context("waiting for gdb")?;
            return Ok(GdbRun::Late);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// KVM's hardware breakpoints (x86's four debug address registers).
const KVM_HARDWARE_BREAKPOINTS: usize = 4;

/// gdb's status when its script stopped before WHERE (given with `-ex quit`).
const GDB_NOT_REACHED: i32 = 3;

/// How long the guest's text is still read after gdb gave up because the boot
/// ended: QEMU has ended, and its last text is in the pipe.
const DRAIN_PATIENCE: Duration = Duration::from_secs(2);

fn of_kind(kind: EndingKind) -> u8 {
    kind.statuses().first
}

/// `--serve`: the boot's ending as `run` gives it.
fn serve_ending(run: &TracedRun, symbols: Option<&AppSymbols>) -> ExitCode {
    let ending = run.ending();
    if ending.kind != EndingKind::AppSucceeded {
        eprintln!("error: {}; exit status {}", ending.reason, ending.status);
        if let Some(said) = run.qemu_said(symbols) {
            eprintln!("QEMU: {said}");
        }
    }
    ExitCode::from(ending.status)
}

/// How the batch gdb ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GdbEnd {
    /// Its script ran to the end: WHERE was reached.
    Reached,
    /// Its script stopped before WHERE (the connection closed: the boot ended, or
    /// QEMU was stopped).
    NotReached,
    /// Anything else (its status, if any).
    Failed(Option<i32>),
}

/// A batch session's exit status and, unless WHERE was reached, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: u8,
    pub message: Option<String>,
}

/// The batch session's status: reached, or why not, in `run`'s words for the boot's
/// end. QEMU ended without a status (`Killed`) is the session's doing: it stops
/// QEMU once gdb has ended, so gdb ended while the boot went on.
pub fn verdict(gdb: GdbEnd, qemu: &QemuEnd, ending: &Ending, wheres: &str) -> Verdict {
    let verdict = |status: u8, message: String| Verdict {
        status,
        message: Some(message),
    };
    if gdb == GdbEnd::Reached {
        return Verdict {
            status: REACHED,
            message: None,
        };
    }
    match qemu {
        QemuEnd::Interrupted | QemuEnd::TimedOut { .. } | QemuEnd::KvmFailed => verdict(
            ending.status,
            format!("never stopped at {wheres}: {}", ending.reason),
        ),
        QemuEnd::Killed => verdict(
            of_kind(EndingKind::QemuFailed),
            match gdb {
                GdbEnd::Failed(Some(status)) => format!(
                    "gdb ended with status {status} before stopping at {wheres}, while the boot went on (gdb's messages are above)"
                ),
                GdbEnd::Failed(None) => format!(
                    "gdb was killed before stopping at {wheres}, while the boot went on"
                ),
                _ => format!(
                    "gdb's script ended before stopping at {wheres}, while the boot went on (gdb's messages are above)"
                ),
            },
        ),
        QemuEnd::Exited(_) => verdict(
            NOT_REACHED,
            format!(
                "never stopped at {wheres}: the boot ended first: {}, for which cargo xtask run exits with status {}",
                ending.reason, ending.status
            ),
        ),
    }
}

/// Held while a whole line goes to standard output: the guest's text and gdb's
/// output (under `--batch`) never cut into each other's lines.
static STDOUT_LINES: Mutex<()> = Mutex::new(());

/// Writes `line` to standard output as one piece.
fn write_line(line: &[u8]) {
    let _whole = STDOUT_LINES.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = io::stdout().lock();
    let _ = out.write_all(line).and_then(|()| out.flush());
}

/// The guest's text on standard output, while `open` is set (nothing after), a
/// whole line at a time; with `partial_lines`, also what it has of a line when
/// flushed (a prompt, at a terminal).
struct GuestText {
    open: Arc<AtomicBool>,
    partial_lines: bool,
    pending: Vec<u8>,
}

/// The end of the guest's text, even without a line break.
impl Drop for GuestText {
    fn drop(&mut self) {
        if self.open.load(Ordering::Relaxed) && !self.pending.is_empty() {
            write_line(&self.pending);
        }
    }
}

impl Write for GuestText {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if !self.open.load(Ordering::Relaxed) {
            return Ok(bytes.len());
        }
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            write_line(&line);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.partial_lines && self.open.load(Ordering::Relaxed) && !self.pending.is_empty() {
            write_line(&std::mem::take(&mut self.pending));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheres_read_as_written() {
        assert_eq!(Where::parse("entry").unwrap(), Where::Entry);
        assert_eq!(Where::parse(" crash ").unwrap(), Where::Crash);
        assert_eq!(
            Where::parse("hermit::boot_processor_main").unwrap(),
            Where::Location("hermit::boot_processor_main".into())
        );
        assert_eq!(
            Where::parse("src/main.rs:12").unwrap(),
            Where::Location("src/main.rs:12".into())
        );
        let relocation = Where::parse("stage:relocation").unwrap();
        assert!(matches!(relocation, Where::Stage(s) if s.id == "relocation"));
        // The report's name works as well as the id.
        let device_tree = Where::parse("stage:Device Tree").unwrap();
        assert_eq!(device_tree.to_string(), "stage:device-tree");
        let unknown = Where::parse("stage:nope").unwrap_err().to_string();
        assert!(
            unknown.contains("no such loader stage") && unknown.contains("hand-over"),
            "{unknown}"
        );
        assert!(Where::parse("").is_err());
    }

    /// Every stage a boot's report shows (here a recorded boot of each kind of
    /// kernel) has its place in the loader.
    #[test]
    fn every_stage_of_the_timeline_has_a_stop() {
        use trace_decoder::decode::decode_recording;
        use trace_decoder::decode::BootRecord;
        use trace_decoder::report::Report;
        let recordings = crate::project_root().join("trace-decoder/tests/recordings");
        let table =
            TraceTable::from_elf(&std::fs::read(recordings.join("rusty-loader.elf")).unwrap())
                .unwrap();
        let mut seen = Vec::new();
        for name in [
            "hello-dyn-pc.bin",
            "hello-exec-pc.bin",
            "legacy-dyn-microvm.bin",
        ] {
            let decoded =
                decode_recording(&table, &std::fs::read(recordings.join(name)).unwrap()).unwrap();
            let report = Report::build(&BootRecord {
                events: decoded.events,
                trace_bytes: decoded.trace_bytes,
                ..BootRecord::default()
            });
            let mut stages: Vec<_> = report.timeline.stages.iter().collect();
            while let Some(stage) = stages.pop() {
                stages.extend(stage.children.iter());
                if !seen.contains(&stage.id) {
                    seen.push(stage.id);
                }
            }
        }
        for id in &seen {
            assert!(
                STAGES.iter().any(|s| s.id == *id),
                "the timeline's stage {id} has no stop in STAGES"
            );
        }
        assert_eq!(
            seen.len(),
            STAGES.len(),
            "a stop for a stage no boot shows: {seen:?}"
        );
    }

    #[test]
    fn the_segment_zero_line_is_found_in_the_source() {
        let zero = STAGES.iter().find(|s| s.id == "segment-zero").unwrap();
        let location = stage_location(&zero.at, BootProtocol::Multiboot).unwrap();
        assert!(
            location.starts_with("loader/src/elf/load.rs:"),
            "{location}"
        );
    }

    fn dyn_app() -> AppImage {
        AppImage {
            path: PathBuf::from("/apps/hello dyn"),
            relocatable: true,
            entry: 0x114c0,
        }
    }

    #[test]
    fn the_script_loads_the_loader_and_adds_the_app_at_the_hand_over() {
        let app = dyn_app();
        let stops = [
            Stop::Loader {
                label: "stage:relocation".into(),
                location: "rusty_loader::elf::Kernel::relocate".into(),
            },
            Stop::App {
                label: "test_kernels::checks::start".into(),
                location: "test_kernels::checks::start".into(),
            },
            Stop::Entry,
        ];
        let script = Script {
            loader_elf: Path::new("/t/rusty-loader.elf"),
            app: Some(&app),
            socket: Path::new("/tmp/s/gdb.sock"),
            stops: &stops,
        };
        let text = script.render();
        let at = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("no {needle:?} in\n{text}"))
        };
        assert!(at("file \"/t/rusty-loader.elf\"\n") < at("target remote /tmp/s/gdb.sock\n"));
        // Loader stops are hardware breakpoints, set before the run.
        assert!(
            at("hbreak rusty_loader::elf::Kernel::relocate\n")
                < at("hbreak rusty_loader_jump_to_kernel\n")
        );
        // At the hand-over: the bias from rcx and the ELF's entry, the symbols, then
        // the application's breakpoints, and on.
        let hand_over = at("hbreak rusty_loader_jump_to_kernel\n");
        let bias = at("set $rusty_loader_bias = $rusty_loader_entry - 0x114c0\n");
        let symbols =
            at("eval \"add-symbol-file \\\"/apps/hello dyn\\\" -o %#lx\", $rusty_loader_bias\n");
        let app_break = at("  break test_kernels::checks::start\n");
        let entry = at("  tbreak *$rusty_loader_entry\n");
        assert!(hand_over < bias && bias < symbols && symbols < app_break && app_break < entry);
        assert!(text.ends_with("  continue\nend\ncontinue\n"), "{text}");
        assert!(
            !text.contains("exception_common"),
            "no crash stop asked for"
        );
        assert!(
            !text.contains("quit"),
            "the reusable script leaves gdb running"
        );
        let batch = script.render_batch();
        assert!(batch.starts_with(&text));
        assert!(batch.ends_with("  disconnect\n  quit 0\nend\n"), "{batch}");
        assert!(batch.contains("if $rusty_loader_reached == 1\n"), "{batch}");
        assert!(batch.contains("\n  bt\n") && batch.contains("info registers rax"));
        // Each stop says it was reached.
        assert_eq!(
            text.matches("set $rusty_loader_reached = 1\n").count(),
            3,
            "{text}"
        );
    }

    #[test]
    fn crash_and_hand_over_stops_in_the_script() {
        let app = AppImage {
            relocatable: false,
            entry: 0x80e370,
            ..dyn_app()
        };
        let stops = [Stop::Crash, Stop::HandOver];
        let text = Script {
            loader_elf: Path::new("/t/rusty-loader.elf"),
            app: Some(&app),
            socket: Path::new("/tmp/s/gdb.sock"),
            stops: &stops,
        }
        .render();
        assert!(
            text.contains("hbreak exception_common\ncommands\n  silent\n"),
            "{text}"
        );
        assert!(
            text.contains("  if $rusty_loader_vector == 14\n    printf \"[cargo xtask debug] reached crash: CPU exception 14 (#PF page fault), error code %#lx; the faulting frame:\\n\", $rusty_loader_error_code\n  end\n"),
            "{text}"
        );
        assert!(text.contains("  frame 1\nend\n"), "{text}");
        assert!(text.contains("ET_EXEC: at its link address"), "{text}");
        assert!(text.contains("  if $rusty_loader_bias != 0\n"), "{text}");
        // The hand-over is the stop: gdb stays there.
        assert!(
            text.ends_with(
                "reached stage:hand-over: the jump into the kernel\\n\n  frame\nend\ncontinue\n"
            ),
            "{text}"
        );
    }

    fn ending(kind: EndingKind, status: u8, reason: &str) -> Ending {
        Ending {
            kind,
            status,
            reason: reason.to_string(),
        }
    }

    #[test]
    fn verdicts_say_how_the_boot_ended_in_runs_words() {
        let success = ending(
            EndingKind::AppSucceeded,
            0,
            "the application reported success (QEMU status 3)",
        );
        let reached = verdict(GdbEnd::Reached, &QemuEnd::Killed, &success, "x");
        assert_eq!(
            reached,
            Verdict {
                status: 0,
                message: None
            }
        );

        let ended = verdict(GdbEnd::NotReached, &QemuEnd::Exited(3), &success, "nope");
        assert_eq!(ended.status, NOT_REACHED);
        assert_eq!(
            ended.message.unwrap(),
            "never stopped at nope: the boot ended first: the application reported success (QEMU status 3), for which cargo xtask run exits with status 0"
        );

        let hang = ending(EndingKind::TimedOut, 124, "QEMU did not end within 5 s and was stopped: the boot hangs after the hand-over, in the application");
        let timed_out = verdict(
            GdbEnd::NotReached,
            &QemuEnd::TimedOut { seconds: 5 },
            &hang,
            "nope",
        );
        assert_eq!(timed_out.status, 124);
        assert!(timed_out
            .message
            .unwrap()
            .starts_with("never stopped at nope: QEMU did not end within 5 s"));

        let killed = ending(EndingKind::QemuFailed, 125, "QEMU was ended by a signal");
        let gdb_failed = verdict(GdbEnd::Failed(Some(1)), &QemuEnd::Killed, &killed, "x");
        assert_eq!(gdb_failed.status, 125);
        assert!(gdb_failed
            .message
            .unwrap()
            .contains("gdb ended with status 1"));

        let interrupted = ending(EndingKind::Interrupted, 130, "interrupted");
        assert_eq!(
            verdict(GdbEnd::NotReached, &QemuEnd::Interrupted, &interrupted, "x").status,
            130
        );
    }

    #[test]
    fn the_status_table_has_one_row_per_status() {
        let statuses = statuses();
        for (i, (status, _)) in statuses.iter().enumerate() {
            assert!(
                statuses[..i].iter().all(|(other, _)| other != status),
                "status {status} twice"
            );
        }
        // Distinct from every status `run` gives for a boot's end.
        for kind in EndingKind::ALL {
            assert!(!kind.statuses().contains(NOT_REACHED), "{kind:?}");
        }
        let help = help_statuses();
        assert!(
            help.starts_with("Exit status:\n")
                && help.contains("\n      6  --batch: the boot ended"),
            "{help}"
        );
    }
}
