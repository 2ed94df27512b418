//! `cargo xtask`: builds the loader and the test kernels, boots apps in QEMU, runs
//! the tests and the fuzz targets. See `cargo xtask --help`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use trace_decoder::color::ColorChoice;
use trace_decoder::decode::TraceTable;
use trace_decoder::outputs::{write_file, ReportFiles};
use trace_decoder::profile::{Baseline, Comparison, Profile as BootProfile, StageTimes};
use trace_decoder::report::Report;
use xshell::Shell;
use xtask::build::{self, Profile, TraceLevel};
use xtask::qemu::{self, Machine, QemuConfig};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, boot and test rusty-loader",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Boot an application in QEMU with the loader and show its serial output.
    ///
    /// Example: cargo xtask run --append "-freq 2800 -- hello" target/test-kernels/debug/hello-dyn
    Run {
        /// The Hermit application (ELF); default: the bundled demo kernel.
        app: Option<PathBuf>,
        #[command(flatten)]
        boot: BootOptions,
        /// Extra QEMU arguments.
        #[arg(last = true)]
        qemu_args: Vec<OsString>,
    },
    /// Boot an application, decode the boot trace live and print the reports.
    ///
    /// Builds the loader, boots APP (default: the bundled demo kernel) with the
    /// standard QEMU command line, shows the app's output and each loader event as it
    /// arrives, then a timeline, a summary and a memory map.
    ///
    /// Exit status: 0 when the app reported success (QEMU 3), 1 when it reported
    /// failure (QEMU 1), QEMU's status for a loader refusal (33-65) or CPU exception
    /// (129-191, odd), 124 on timeout, 130 when interrupted with Ctrl-C (after the
    /// report of what arrived), 2 when xtask itself fails (build, QEMU missing, APP
    /// not a Hermit application), 3 when --baseline finds a regression.
    #[command(
        after_help = "Examples:\n  cargo xtask trace\n  cargo xtask trace target/test-kernels/debug/legacy-dyn --microvm -- hello world\n  cargo xtask trace --release --runs 10 --json profile.json\n  cargo xtask trace --release --runs 5 --baseline profile.json --max-regression 10%"
    )]
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
    },
    /// Boot the test kernels and save their raw serial streams, with the loader ELF,
    /// as the decoder's test data (trace-decoder/tests/recordings/).
    Record,
    /// Run the fuzz targets of fuzz/ (cargo-fuzz, nightly) for a bounded time each
    /// (docs/fuzzing.md).
    ///
    /// Exit status: 0 when nothing was found, 1 when a target found a failing input
    /// (left in fuzz/artifacts/TARGET/), 2 when nightly Rust or cargo-fuzz is missing
    /// or TARGET is unknown.
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

#[derive(clap::Args)]
struct BootOptions {
    /// Use an optimised loader build.
    #[arg(long)]
    release: bool,
    /// Trace verbosity compiled into the loader.
    #[arg(long, value_enum, default_value = "info")]
    trace_level: TraceLevel,
    /// Use the microvm machine type instead of pc.
    #[arg(long)]
    microvm: bool,
    /// Guest memory (QEMU -m syntax).
    #[arg(short = 'm', long, default_value = "64M")]
    memory: String,
    /// Number of CPUs.
    #[arg(long, default_value_t = 1)]
    smp: u32,
    /// Kernel arguments (and `-- app args`), passed with -append.
    #[arg(long, allow_hyphen_values = true)]
    append: Option<String>,
    /// Seconds before QEMU is stopped.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// The QEMU binary.
    #[arg(long)]
    qemu: Option<PathBuf>,
    /// Print the QEMU command line.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(clap::Args)]
struct TraceArgs {
    /// The Hermit application (ELF); default: the bundled demo kernel.
    app: Option<PathBuf>,
    /// Arguments for the application (passed after `--` on the kernel command line).
    #[arg(last = true)]
    app_args: Vec<String>,
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
    /// Keep the raw serial stream, for `rusty-trace FILE` later.
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
    /// Extra QEMU argument (repeatable), e.g. --qemu-arg=-icount --qemu-arg=shift=3.
    #[arg(long = "qemu-arg", value_name = "ARG", allow_hyphen_values = true)]
    qemu_args: Vec<String>,
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
            ExitCode::from(2)
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
        Command::Run {
            app,
            boot,
            qemu_args,
        } => {
            let qemu = qemu::find_qemu(boot.qemu.as_deref())?;
            let loader = build::build_loader(&sh, profile(boot.release), boot.trace_level)?;
            let app = match app {
                Some(app) => app,
                None => build::build_test_kernels(&sh, profile(boot.release))?.hello_dyn,
            };
            let config = QemuConfig {
                qemu,
                machine: if boot.microvm {
                    Machine::Microvm
                } else {
                    Machine::Pc
                },
                memory: boot.memory,
                smp: boot.smp,
                append: boot.append,
                extra_args: qemu_args,
                ..QemuConfig::new(loader.image, app)
            };
            if boot.verbose {
                eprintln!("{}", config.display());
            }
            let (status, timed_out) =
                qemu::run_text_only(&config, Duration::from_secs(boot.timeout))?;
            if timed_out {
                eprintln!(
                    "error: QEMU did not finish within {} s and was stopped",
                    boot.timeout
                );
                return Ok(ExitCode::from(124));
            }
            let code = status.unwrap_or(1);
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        Command::Bench {
            boots,
            decoder_copies,
        } => {
            let rows = xtask::bench::run(
                &sh,
                &xtask::bench::Options {
                    boots,
                    decoder_copies,
                },
            )?;
            xtask::bench::print(&rows);
            Ok(ExitCode::SUCCESS)
        }
        Command::Record => {
            xtask::record::record(&sh)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Trace(args) => trace(&sh, *args),
        Command::Fuzz { target, time } => {
            xtask::fuzz::run(&xtask::project_root(), target.as_deref(), time)
        }
        Command::Lint => {
            xshell::cmd!(sh, "cargo fmt --all --check").run()?;
            // The fuzz crate is a workspace of its own (docs/fuzzing.md).
            xshell::cmd!(
                sh,
                "cargo fmt --manifest-path fuzz/Cargo.toml --all --check"
            )
            .run()?;
            xshell::cmd!(
                sh,
                "cargo clippy --workspace --all-targets --quiet -- -D warnings"
            )
            .run()?;
            build::lint_bare_metal(&sh)?;
            println!("lint: clean");
            Ok(ExitCode::SUCCESS)
        }
        Command::Test => {
            build::build_loader(&sh, Profile::Debug, TraceLevel::Info)?;
            build::build_loader(&sh, Profile::Debug, TraceLevel::Off)?;
            build::build_test_kernels(&sh, Profile::Debug)?;
            xshell::cmd!(sh, "cargo test --workspace").run()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn trace(sh: &Shell, args: TraceArgs) -> Result<ExitCode> {
    use xtask::trace as t;
    let color = args.color.enabled_for(&std::io::stdout());
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    // A bad baseline is refused before anything is built or booted.
    let baseline = args.baseline.as_deref().map(Baseline::read).transpose()?;
    let qemu = qemu::find_qemu(args.boot.qemu.as_deref())?;
    let profile = profile(args.boot.release);
    let loader = build::build_loader(sh, profile, args.boot.trace_level)
        .context("the loader build failed")?;
    anyhow::ensure!(
        args.boot.trace_level != TraceLevel::Off,
        "--trace-level off builds a loader without a trace: use `cargo xtask run`"
    );
    let app = match &args.app {
        Some(app) => app.clone(),
        None => build::build_test_kernels(sh, profile)?.hello_dyn,
    };
    t::check_app(&app)?;
    let table = trace_decoder::loader_elf::load_table(&loader.elf)?;
    let mut append = args.boot.append.clone().unwrap_or_default();
    if !args.app_args.is_empty() {
        append = format!("{append} -- {}", args.app_args.join(" "))
            .trim_start()
            .to_string();
    }
    let kvm = args.kvm
        && match t::kvm_usable() {
            Ok(()) => true,
            Err(why) => {
                eprintln!("warning: not using KVM: {why}; falling back to TCG");
                false
            }
        };
    let config = QemuConfig {
        qemu,
        machine: if args.boot.microvm {
            Machine::Microvm
        } else {
            Machine::Pc
        },
        memory: args.boot.memory.clone(),
        smp: args.boot.smp,
        kvm,
        append: (!append.is_empty()).then_some(append),
        extra_args: args.qemu_args.iter().map(Into::into).collect(),
        ..QemuConfig::new(&loader.image, &app)
    };
    if args.boot.verbose {
        eprintln!("{}", config.display());
    }
    let timeout = Duration::from_secs(args.boot.timeout);

    if args.runs == 1 && baseline.is_none() {
        // Ctrl-C reaches QEMU too, which stops; the report of what arrived is still
        // worth printing, so the first one only stops the boot (a second one ends
        // xtask).
        trace_decoder::pump::stop_on_ctrl_c();
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let run = t::trace_once(
            &config,
            &table,
            timeout,
            Some(t::Live {
                out: &mut out,
                style: trace_decoder::consumer::line_style(
                    args.color,
                    std::io::IsTerminal::is_terminal(&std::io::stdout()),
                ),
            }),
        )?;
        drop(out);
        if let Some(path) = &args.save {
            write_file(path, "the raw stream", &run.raw)?;
        }
        let report = Report::build(&run.record);
        println!();
        print!("{}", report.render_text(color));
        ReportFiles {
            json: args.json.clone(),
            chrome_trace: args.chrome_trace.clone(),
            svg: args.svg.clone(),
        }
        .write(&report)?;
        if run.timed_out {
            eprintln!(
                "error: QEMU did not finish within {} s and was stopped",
                args.boot.timeout
            );
        }
        if run.interrupted {
            eprintln!("interrupted: the report covers what arrived before Ctrl-C");
            return Ok(ExitCode::from(130));
        }
        return Ok(ExitCode::from(t::exit_status(run.status, run.timed_out)));
    }
    profile_runs(&config, &table, timeout, &args, baseline.as_ref())
}

/// `--runs N` and `--baseline`: boots quietly N times, prints per-stage statistics,
/// keeps them with `--json`, and compares them with a baseline.
fn profile_runs(
    config: &QemuConfig,
    table: &TraceTable,
    timeout: Duration,
    args: &TraceArgs,
    baseline: Option<&Baseline>,
) -> Result<ExitCode> {
    let mut boots = Vec::new();
    for i in 0..args.runs {
        eprint!("\rboot {}/{}...", i + 1, args.runs);
        let run = xtask::trace::trace_once(config, table, timeout, None)?;
        if run.status != Some(3) {
            eprintln!();
            anyhow::bail!(
                "boot {} did not succeed (QEMU status {:?}); run without --runs to see why",
                i + 1,
                run.status
            );
        }
        boots.push(StageTimes::of(&Report::build(&run.record)));
    }
    eprintln!("\r{} boots done.     ", args.runs);
    let profile = BootProfile::from_boots(&boots)?;
    print!("{}", profile.render_table());
    if let Some(path) = &args.json {
        write_file(path, "the profile", profile.to_json())?;
    }
    let Some(baseline) = baseline else {
        return Ok(ExitCode::SUCCESS);
    };
    let comparison = Comparison::new(&profile, baseline, args.max_regression)?;
    println!();
    print!("{}", comparison.render());
    if comparison.regressions() > 0 {
        eprintln!("error: {}", comparison.verdict());
        return Ok(ExitCode::from(3));
    }
    println!("{}", comparison.verdict());
    Ok(ExitCode::SUCCESS)
}
