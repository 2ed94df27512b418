//! `cargo xtask`: builds the loader and the test kernels, boots apps in QEMU, runs
//! the tests and the fuzz targets. See `cargo xtask --help`.
//!
//! `run` and `trace` are `xtask::trace`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use xshell::Shell;
use xtask::build::{self, Profile, TraceLevel};
use xtask::ending::USAGE_STATUS;
use xtask::qemu::{BootProtocol, Machine};
use xtask::trace;

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
    #[command(after_help = trace::after_help(trace::RUN_EXAMPLES))]
    Run(Box<trace::BootOptions>),
    /// Boot an application, decode the boot trace live and print the reports.
    ///
    /// Builds the loader, boots APP (default: the bundled demo kernel) with the
    /// standard QEMU command line, shows the app's output and each loader event as it
    /// arrives, then a timeline, a summary and a memory map. A bad application is
    /// booted all the same: the loader's refusal is the diagnosis. Exit statuses
    /// as for `cargo xtask run`.
    #[command(after_help = trace::after_help(trace::TRACE_EXAMPLES))]
    Trace(Box<trace::TraceArgs>),
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
    Record,
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

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(USAGE_STATUS)
        }
    }
}

/// A line saying what comes next, on a terminal only: long steps are not silent, and
/// a pipe gets nothing but results.
fn step(message: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("cargo xtask: {message}");
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
            let loader = build::build_loader(&sh, Profile::from_release(release), trace_level)?;
            let kernels = build::build_test_kernels(&sh, Profile::from_release(release))?;
            println!("loader:       {}", loader.image.display());
            println!("loader (ELF): {}", loader.elf.display());
            for kernel in kernels.all() {
                println!("test kernel:  {}", kernel.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(boot) => boot.run(&sh),
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
            xtask::bench_table::print(&rows);
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
                    profile: Profile::from_release(!debug),
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
        Command::Record => {
            xtask::record::record(&sh)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Trace(args) => args.run(&sh),
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
