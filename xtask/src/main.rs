//! `cargo xtask`: builds the loader and the test kernels, boots apps in QEMU, runs
//! the tests and the fuzz targets. See `cargo xtask --help`.
//!
//! `run` and `trace` share their options ([`BootOptions`]), their checks before the
//! boot (`xtask::preflight`) and the table of exit statuses
//! (`trace_decoder::ending`): a boot ends with the same status under both.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use trace_decoder::color::ColorChoice;
use trace_decoder::decode::TraceTable;
use trace_decoder::ending::{help_table, Ending, EndingKind, USAGE_STATUS};
use trace_decoder::outputs::{write_file, ReportFiles};
use trace_decoder::profile::{Baseline, Comparison, Profile as BootProfile, StageTimes};
use trace_decoder::report::Report;
use trace_decoder::symbols::AppSymbols;
use xshell::Shell;
use xtask::build::{self, Profile, TraceLevel};
use xtask::preflight;
use xtask::qemu::{self, BootProtocol, Machine, QemuConfig};
use xtask::trace::{self as t, Live, TracedRun};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, boot and test rusty-loader",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const RUN_EXAMPLES: &str = "\
Examples:
  cargo xtask run
  cargo xtask run target/test-kernels/debug/hello-dyn --append \"-freq 2800\" -- hello world
  cargo xtask run app.elf --microvm -m 1G --qemu-arg=-s";

const TRACE_EXAMPLES: &str = "\
Examples:
  cargo xtask trace
  cargo xtask trace target/test-kernels/debug/legacy-dyn --microvm -- hello world
  cargo xtask trace --release --runs 10 --json profile.json
  cargo xtask trace --release --runs 5 --baseline profile.json --max-regression 10%";

/// A `--help` text's end: the examples, then the exit statuses.
fn after_help(examples: &str) -> String {
    format!("{examples}\n\n{}", help_table())
}

#[derive(Subcommand)]
enum Command {
    /// Build the loader (target/x86_64/<profile>/rusty-loader, plus rusty-loader.elf
    /// with symbols) and the test kernels.
    Build {
        /// Optimised build (what users time).
        #[arg(long)]
        release: bool,
        /// Trace verbosity compiled into the loader (`off`: no trace, only the
        /// fatal-error line).
        #[arg(long, value_enum, default_value = "info")]
        trace_level: TraceLevel,
    },
    /// Boot an application in QEMU with the loader and show its output.
    ///
    /// Builds the loader, boots APP (default: the bundled demo kernel) with the
    /// standard QEMU command line and shows the application's output, without the
    /// loader's binary trace frames. Words after `--` go to the application, as
    /// with `trace`; QEMU arguments go with --qemu-arg. A boot that does not end
    /// with the application's success ends with one line on stderr saying why, and
    /// the exit status below.
    #[command(after_help = after_help(RUN_EXAMPLES))]
    Run(Box<BootOptions>),
    /// Boot an application, decode the boot trace live and print the reports.
    ///
    /// Builds the loader, boots APP (default: the bundled demo kernel) with the
    /// standard QEMU command line, shows the app's output and each loader event as it
    /// arrives, then a timeline, a summary and a memory map. A bad application is
    /// booted all the same: the loader's refusal is the diagnosis. Exit statuses
    /// as for `cargo xtask run`.
    #[command(after_help = after_help(TRACE_EXAMPLES))]
    Trace(Box<TraceArgs>),
    /// Build everything and run all tests (host unit tests and QEMU boots).
    Test,
    /// rustfmt check, clippy on the host crates and on the bare-metal binaries (with
    /// their real flags), all with warnings denied.
    Lint,
    /// Measure, side by side in one run: tracing overhead on boot time, trace size vs
    /// a text log, segment copy throughput vs host memcpy, decoder throughput vs
    /// defmt-print. Prints ratios (see docs/benchmarks.md).
    Bench {
        /// Boots per variant for the wall-time comparison.
        #[arg(long, default_value_t = 10)]
        boots: usize,
        /// Copies of a recorded boot concatenated for the decoder comparison.
        #[arg(long, default_value_t = 2000)]
        decoder_copies: usize,
        /// Also compare loader phase and time to exit with the loader of this
        /// revision (built with its own `cargo xtask build --release` in
        /// target/bench/rev-<commit>).
        #[arg(long, value_name = "REV", conflicts_with = "baseline_loader")]
        baseline_rev: Option<String>,
        /// Also compare with this Multiboot loader image (another release, another
        /// loader).
        #[arg(long, value_name = "IMAGE")]
        baseline_loader: Option<PathBuf>,
        /// Only compare with the baseline, in virtual time under QEMU's `-icount
        /// shift=0,sleep=off` (one instruction = 1 ns, timer waits take the time they
        /// wait): figures that repeat exactly whatever the host does. Reads both
        /// loaders' traces, so the baseline must be a traced rusty-loader with its
        /// ELF beside it (`<image>.elf`).
        #[arg(long)]
        deterministic: bool,
        /// The entry this loader boots through in the comparison with the baseline
        /// (which always boots through Multiboot): with `--baseline-rev HEAD --boot
        /// pvh`, this build's PVH entry against its Multiboot entry.
        #[arg(long, value_enum, default_value = "multiboot")]
        boot: BootProtocol,
    },
    /// Which of the loader's code QEMU translates in one boot: translated blocks and
    /// instructions per loader function (and the function inlined into it), largest
    /// first. Under TCG each distinct block costs microseconds the first time it
    /// runs, whatever it then does: this is where the loader's wall time goes
    /// (docs/benchmarks.md). The counts do not depend on the host's load.
    Census {
        /// The application to boot (default: the demo app, hello-dyn).
        app: Option<PathBuf>,
        /// Build and boot the debug loader (default: release, what users boot).
        #[arg(long)]
        debug: bool,
        /// Trace verbosity compiled into the loader (`off`: what tracing costs, by
        /// difference).
        #[arg(long, value_enum, default_value = "info")]
        trace_level: TraceLevel,
        /// Use the microvm machine type instead of pc.
        #[arg(long)]
        microvm: bool,
        /// Kernel arguments, passed with -append.
        #[arg(long)]
        append: Option<String>,
        /// How many functions to list.
        #[arg(long, default_value_t = 25)]
        top: usize,
    },
    /// Boot the test kernels and save their raw serial streams, with the loader ELF,
    /// as the decoder's test data (trace-decoder/tests/recordings/).
    Record {
        /// Write them here instead (a directory, made if missing).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Run the fuzz targets of fuzz/ (cargo-fuzz, nightly) for a bounded time each
    /// (docs/fuzzing.md).
    ///
    /// Exit status: 0 when nothing was found, 1 when a target found a failing input
    /// (left in fuzz/artifacts/TARGET/), 2 when nightly Rust or cargo-fuzz is missing,
    /// TARGET is unknown, or a run failed without a finding (a build error, a full disk).
    #[command(
        after_help = "Examples:\n  cargo xtask fuzz --time 10\n  cargo xtask fuzz stream --time 600"
    )]
    Fuzz {
        /// One target (`cargo +nightly fuzz list` in fuzz/); default: every target.
        target: Option<String>,
        /// Seconds per target.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        time: u64,
    },
}

/// The options of one boot, the same for `run` and `trace`.
#[derive(clap::Args)]
struct BootOptions {
    /// The Hermit application (ELF); default: the bundled demo kernel.
    app: Option<PathBuf>,
    /// Arguments for the application (passed after `--` on the kernel command line).
    #[arg(last = true)]
    app_args: Vec<String>,
    /// Use an optimised loader build.
    #[arg(long)]
    release: bool,
    /// Trace verbosity compiled into the loader.
    #[arg(long, value_enum, default_value = "info")]
    trace_level: TraceLevel,
    /// Use the microvm machine type instead of pc.
    #[arg(long)]
    microvm: bool,
    /// How QEMU boots the loader: the 32-bit image through Multiboot, or the 64-bit
    /// ELF through PVH (as Cloud Hypervisor and Firecracker would).
    #[arg(long, value_enum, default_value = "multiboot")]
    boot: BootProtocol,
    /// Guest memory (QEMU -m syntax); at least the loader's own image (about 3M).
    #[arg(short = 'm', long, default_value = "64M")]
    memory: String,
    /// Number of CPUs.
    #[arg(long, default_value_t = 1)]
    smp: u32,
    /// Kernel arguments, passed with -append (the words after `--` follow them).
    #[arg(long, allow_hyphen_values = true)]
    append: Option<String>,
    /// Seconds before QEMU is stopped (exit status 124).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// The QEMU binary.
    #[arg(long)]
    qemu: Option<PathBuf>,
    /// Extra QEMU argument (repeatable), e.g. --qemu-arg=-icount --qemu-arg=shift=3.
    #[arg(long = "qemu-arg", value_name = "ARG", allow_hyphen_values = true)]
    qemu_args: Vec<String>,
    /// Hand the kernel its command line exactly as given: no `-freq` inserted for a
    /// kernel of 0.6-0.10 (the loader option `keep-cmdline`, after the app in -initrd).
    #[arg(long)]
    keep_cmdline: bool,
    /// Deterministic timing: QEMU counts instructions (-icount shift=0,sleep=off), so
    /// one tick is one guest instruction and every figure repeats exactly, whatever
    /// the host is doing (for baselines and budgets; slower than a normal boot).
    #[arg(long)]
    deterministic: bool,
    /// Print the QEMU command line.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(clap::Args)]
struct TraceArgs {
    #[command(flatten)]
    boot: BootOptions,
    /// Use KVM when it can run the loader here (otherwise a warning saying why, and
    /// TCG: also when the host's KVM is PVM, which runs only PVM-aware guests).
    #[arg(long)]
    kvm: bool,
    /// Write the report as JSON (with --runs: the per-stage statistics).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a Chrome/Perfetto trace (open it in ui.perfetto.dev).
    #[arg(long, value_name = "FILE")]
    chrome_trace: Option<PathBuf>,
    /// Write an SVG boot chart and memory-layout picture.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Keep the raw serial stream, for `rusty-trace FILE` later, and QEMU's exit
    /// status beside it (FILE with the extension .status), which rusty-trace reads.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Boot N times and print per-stage min/median/max.
    #[arg(long, value_name = "N", default_value_t = 1)]
    runs: usize,
    /// Compare per-stage times with an earlier `--json` output; fail on regressions.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// How much slower than the baseline a stage may be (a stage slower by 20 µs or
    /// less never counts: that is noise).
    #[arg(long, value_name = "PERCENT", default_value = "10%",
          value_parser = parse_percent)]
    max_regression: f64,
    /// Colour: auto, always or never (`auto`: on a terminal, unless NO_COLOR is set).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    trace_decoder::profile::parse_percent(text).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(USAGE_STATUS)
        }
    }
}

fn profile(release: bool) -> Profile {
    if release {
        Profile::Release
    } else {
        Profile::Debug
    }
}

/// A line saying what comes next, on a terminal only: long steps are not silent, and
/// a pipe gets nothing but results.
fn step(message: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("cargo xtask: {message}");
    }
}

/// Says that a file was written (on stderr, so that stdout keeps the results).
fn wrote(path: &Path) {
    eprintln!("wrote {}", path.display());
}

fn run(cli: Cli) -> Result<ExitCode> {
    let sh = Shell::new()?;
    sh.change_dir(xtask::project_root());
    match cli.command {
        Command::Build {
            release,
            trace_level,
        } => {
            let loader = build::build_loader(&sh, profile(release), trace_level)?;
            let kernels = build::build_test_kernels(&sh, profile(release))?;
            println!("loader:       {}", loader.image.display());
            println!("loader (ELF): {}", loader.elf.display());
            for kernel in kernels.all() {
                println!("test kernel:  {}", kernel.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(boot) => run_app(&sh, &boot),
        Command::Bench {
            boots,
            decoder_copies,
            baseline_rev,
            baseline_loader,
            deterministic,
            boot,
        } => {
            use xtask::bench_loaders::BaselineSource;
            let baseline = baseline_rev
                .map(BaselineSource::Revision)
                .or(baseline_loader.map(BaselineSource::Image));
            let rows = xtask::bench::run(
                &sh,
                &xtask::bench::Options {
                    boots,
                    decoder_copies,
                    baseline,
                    deterministic,
                    boot,
                },
            )?;
            xtask::bench::print(&rows);
            Ok(ExitCode::SUCCESS)
        }
        Command::Census {
            app,
            debug,
            trace_level,
            microvm,
            append,
            top,
        } => {
            xtask::census::run(
                &sh,
                &xtask::census::CensusOptions {
                    app,
                    profile: profile(!debug),
                    trace_level,
                    machine: if microvm {
                        Machine::Microvm
                    } else {
                        Machine::Pc
                    },
                    append,
                    top,
                },
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Record { out } => {
            // Absolute: the files are written here and by tools run from the root.
            let dir = match out {
                Some(dir) => std::path::absolute(&dir)
                    .with_context(|| format!("cannot resolve {}", dir.display()))?,
                None => xtask::record::recordings_dir(),
            };
            xtask::record::record(&sh, &dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Trace(args) => trace(&sh, *args),
        Command::Fuzz { target, time } => {
            xtask::fuzz::run(&xtask::project_root(), target.as_deref(), time)
        }
        Command::Lint => {
            step("[1/3] rustfmt");
            xshell::cmd!(sh, "cargo fmt --all --check").run()?;
            // The fuzz crate is a workspace of its own (docs/fuzzing.md).
            xshell::cmd!(
                sh,
                "cargo fmt --manifest-path fuzz/Cargo.toml --all --check"
            )
            .run()?;
            step("[2/3] clippy on the host crates");
            xshell::cmd!(
                sh,
                "cargo clippy --workspace --all-targets --quiet -- -D warnings"
            )
            .run()?;
            step("[3/3] clippy on the bare-metal binaries");
            build::lint_bare_metal(&sh)?;
            println!("lint: clean");
            Ok(ExitCode::SUCCESS)
        }
        Command::Test => {
            step("[1/4] building the loader (debug)");
            build::build_loader(&sh, Profile::Debug, TraceLevel::Info)?;
            step("[2/4] building the loader without tracing (debug)");
            build::build_loader(&sh, Profile::Debug, TraceLevel::Off)?;
            step("[3/4] building the test kernels (debug)");
            build::build_test_kernels(&sh, Profile::Debug)?;
            step("[4/4] cargo test --workspace: host tests, then QEMU boots (several minutes)");
            xshell::cmd!(sh, "cargo test --workspace").run()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A boot made ready: QEMU's command line and the loader's trace table.
struct Prepared {
    config: QemuConfig,
    /// None for a loader built without tracing.
    table: Option<TraceTable>,
    timeout: Duration,
    /// The application's symbols, to name a crash's code addresses (None when its
    /// ELF cannot be read for them: the report then gives addresses only).
    symbols: Option<AppSymbols>,
}

/// Everything before a boot: the arguments and files checked first (a mistake costs
/// no build), then QEMU found, the loader built, `-m` checked against it, the
/// default application built, and the QEMU command line put together.
fn prepare(
    sh: &Shell,
    boot: &BootOptions,
    outputs: &[(&str, Option<&Path>)],
    kvm: bool,
) -> Result<Prepared> {
    if let Some(app) = &boot.app {
        preflight::check_app(app)?;
    }
    if boot.boot == BootProtocol::Pvh && boot.keep_cmdline {
        // QEMU's PVH boot opens `-initrd` as one file name and passes no module
        // string, which is where the loader reads its options.
        anyhow::bail!(
            "--keep-cmdline needs --boot multiboot: QEMU's PVH boot passes no module string for the loader's options"
        );
    }
    for (flag, path) in outputs {
        if let Some(path) = path {
            preflight::check_output(flag, path)?;
        }
    }
    let qemu = qemu::find_qemu(boot.qemu.as_deref())?;
    let profile = profile(boot.release);
    let loader =
        build::build_loader(sh, profile, boot.trace_level).context("the loader build failed")?;
    preflight::check_memory(
        &boot.memory,
        trace_decoder::loader_elf::loader_image(&loader.elf)?,
    )?;
    let table = if boot.trace_level == TraceLevel::Off {
        None
    } else {
        Some(trace_decoder::loader_elf::load_table(&loader.elf)?)
    };
    let app = match &boot.app {
        // QEMU runs in the project's root (below): the path must not depend on where
        // xtask was started.
        Some(app) => {
            std::path::absolute(app).with_context(|| format!("cannot resolve {}", app.display()))?
        }
        None => build::build_test_kernels(sh, profile)?.hello_dyn,
    };
    // The loader's path is the kernel's file name on the Multiboot command line,
    // which the trace and its reports show: relative to the project's root, it says
    // the same on every machine and gives away no home directory.
    let root = xtask::project_root();
    let loader_image = loader
        .image
        .strip_prefix(&root)
        .map_or_else(|_| loader.image.clone(), PathBuf::from);
    let mut append = boot.append.clone().unwrap_or_default();
    if !boot.app_args.is_empty() {
        append = format!("{append} -- {}", boot.app_args.join(" "))
            .trim_start()
            .to_string();
    }
    let symbols = match AppSymbols::read(&app) {
        // Named as the user would name it, not by where the checkout lies.
        Ok(mut symbols) => {
            symbols.name = app
                .strip_prefix(xtask::project_root())
                .unwrap_or(&app)
                .display()
                .to_string();
            Some(symbols)
        }
        Err(why) => {
            eprintln!("warning: {why}: a crash's addresses will not be named");
            None
        }
    };
    let config = QemuConfig {
        qemu,
        // What the loader cannot see (a triple fault, a hang) is asked of QEMU.
        monitor: true,
        machine: if boot.microvm {
            Machine::Microvm
        } else {
            Machine::Pc
        },
        memory: boot.memory.clone(),
        smp: boot.smp,
        kvm,
        append: (!append.is_empty()).then_some(append),
        loader_options: loader_options(boot.keep_cmdline),
        boot: boot.boot,
        deterministic: boot.deterministic,
        extra_args: boot.qemu_args.iter().map(OsString::from).collect(),
        working_dir: Some(root),
        ..QemuConfig::new(loader_image, &app)
    };
    if boot.verbose {
        eprintln!("{}", config.display());
    }
    Ok(Prepared {
        config,
        table,
        timeout: Duration::from_secs(boot.timeout),
        symbols,
    })
}

/// Ends a boot: one line on stderr unless the application succeeded (and one more
/// with what QEMU said, when it stopped the guest), and the status.
fn finish(ending: &Ending, qemu_said: Option<&str>) -> ExitCode {
    if ending.kind != EndingKind::AppSucceeded {
        eprintln!("error: {}; exit status {}", ending.reason, ending.status);
        if let Some(said) = qemu_said {
            eprintln!("QEMU: {said}");
        }
    }
    ExitCode::from(ending.status)
}

/// What QEMU said when it stopped the guest, in one sentence: from the report (RIP
/// named from the application's ELF) when the boot was traced, else its RIP alone.
fn qemu_said(run: &TracedRun, symbols: Option<&AppSymbols>) -> Option<String> {
    let stop = run.stop.as_ref()?;
    if let Some(record) = &run.record {
        return Report::build_with_app(record, symbols)
            .stop
            .map(|s| s.message);
    }
    let rip = stop
        .registers
        .as_deref()
        .map(trace_decoder::qemu_state::Registers::parse)
        .and_then(|registers| registers.rip)
        .map_or(String::new(), |rip| format!(" at RIP {rip:#x}"));
    Some(format!("the guest stopped{rip}"))
}

/// `cargo xtask run`.
fn run_app(sh: &Shell, boot: &BootOptions) -> Result<ExitCode> {
    let prepared = prepare(sh, boot, &[], false)?;
    // Ctrl-C reaches QEMU too; the runner then stops and says so.
    trace_decoder::pump::stop_on_ctrl_c();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let run = t::boot(
        &prepared.config,
        prepared.table.as_ref(),
        prepared.timeout,
        Some(Live {
            out: &mut out,
            style: Default::default(),
            events: false,
        }),
    )?;
    drop(out);
    let said = qemu_said(&run, prepared.symbols.as_ref());
    Ok(finish(&run.ending(), said.as_deref()))
}

/// Writes the raw stream and QEMU's status beside it (`FILE.status`), the pair
/// rusty-trace replays with the Exit line.
fn save(path: &Path, run: &TracedRun) -> Result<()> {
    write_file(path, "the raw stream", &run.raw)?;
    wrote(path);
    if let Some(status) = run.status() {
        let status_path = path.with_extension("status");
        write_file(&status_path, "QEMU's exit status", format!("{status}\n"))?;
        wrote(&status_path);
    }
    Ok(())
}

fn trace(sh: &Shell, args: TraceArgs) -> Result<ExitCode> {
    let color = args.color.enabled_for(&std::io::stdout());
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        args.boot.trace_level != TraceLevel::Off,
        "--trace-level off builds a loader without a trace: use `cargo xtask run`"
    );
    // A bad baseline is refused before anything is built or booted.
    let baseline = args.baseline.as_deref().map(Baseline::read).transpose()?;
    let kvm = args.kvm
        && match t::kvm_usable() {
            Ok(()) => true,
            Err(why) => {
                eprintln!("warning: not using KVM: {why}; falling back to TCG");
                false
            }
        };
    let prepared = prepare(
        sh,
        &args.boot,
        &[
            ("--json", args.json.as_deref()),
            ("--chrome-trace", args.chrome_trace.as_deref()),
            ("--svg", args.svg.as_deref()),
            ("--save", args.save.as_deref()),
        ],
        kvm,
    )?;
    let table = prepared
        .table
        .as_ref()
        .expect("a traced loader has a table");

    if args.runs == 1 && baseline.is_none() {
        // Ctrl-C reaches QEMU too, which stops; the report of what arrived is still
        // worth printing, so the first one only stops the boot (a second one ends
        // xtask).
        trace_decoder::pump::stop_on_ctrl_c();
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let run = t::boot(
            &prepared.config,
            Some(table),
            prepared.timeout,
            Some(Live {
                out: &mut out,
                style: trace_decoder::consumer::line_style(
                    args.color,
                    std::io::stdout().is_terminal(),
                ),
                events: true,
            }),
        )?;
        drop(out);
        if let Some(path) = &args.save {
            save(path, &run)?;
        }
        let record = run.record.as_ref().expect("a traced boot has a record");
        let report = Report::build_with_app(record, prepared.symbols.as_ref());
        println!();
        print!("{}", report.render_text(color));
        let files = ReportFiles {
            json: args.json.clone(),
            chrome_trace: args.chrome_trace.clone(),
            svg: args.svg.clone(),
        };
        for path in files.write(&report)? {
            wrote(&path);
        }
        let said = report.stop.as_ref().map(|stop| stop.message.clone());
        return Ok(finish(&run.ending(), said.as_deref()));
    }
    profile_runs(&prepared, table, &args, baseline.as_ref())
}

/// `--runs N` and `--baseline`: boots quietly N times, prints per-stage statistics,
/// keeps them with `--json`, and compares them with a baseline.
fn profile_runs(
    prepared: &Prepared,
    table: &TraceTable,
    args: &TraceArgs,
    baseline: Option<&Baseline>,
) -> Result<ExitCode> {
    // Progress on a terminal only, on one line rewritten in place.
    let progress = std::io::stderr().is_terminal();
    let mut boots = Vec::new();
    for i in 0..args.runs {
        if progress {
            eprint!("\rboot {}/{}...", i + 1, args.runs);
        }
        let run = t::boot(&prepared.config, Some(table), prepared.timeout, None)?;
        let ending = run.ending();
        let record = run.record.as_ref().expect("a traced boot has a record");
        if ending.kind != EndingKind::AppSucceeded {
            if progress {
                eprintln!();
            }
            eprintln!(
                "error: boot {} of {}: {} (run without --runs to see the boot); exit status {}",
                i + 1,
                args.runs,
                ending.reason,
                ending.status
            );
            return Ok(ExitCode::from(ending.status));
        }
        boots.push(StageTimes::of(&Report::build(record)));
    }
    if progress {
        eprintln!("\r{} boots done.     ", args.runs);
    }
    let profile = BootProfile::from_boots(&boots)?;
    print!("{}", profile.render_table());
    if let Some(path) = &args.json {
        write_file(path, "the profile", profile.to_json())?;
        wrote(path);
    }
    let Some(baseline) = baseline else {
        return Ok(ExitCode::SUCCESS);
    };
    let comparison = Comparison::new(&profile, baseline, args.max_regression)?;
    println!();
    print!("{}", comparison.render());
    if comparison.regressions() > 0 {
        return Ok(finish(&Ending::regression(comparison.verdict()), None));
    }
    println!("{}", comparison.verdict());
    Ok(ExitCode::SUCCESS)
}

/// The loader's own options, written after the application's file name in `-initrd`.
fn loader_options(keep_cmdline: bool) -> Vec<String> {
    keep_cmdline
        .then(|| "keep-cmdline".to_string())
        .into_iter()
        .collect()
}
