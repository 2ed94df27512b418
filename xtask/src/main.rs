//! `cargo xtask`: builds the loader and the test kernels, boots apps in QEMU, runs
//! the tests and the fuzz targets. See `cargo xtask --help`.
//!
//! This is the command line's top and its dispatch, nothing else: each subcommand
//! is a module of the library with its options and what it does (`build`, `trace`
//! for `run` and `trace`, `debug`, `test`, `lint`, `bench`, `census`, `record`, `fuzz`). A
//! new subcommand is a module, a variant here with its `--help` text, and one line
//! of dispatch.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use trace_decoder::report::ending::USAGE_STATUS;
use xshell::Shell;
use xtask::{bench, build, census, debug, fuzz, lint, record, test, trace};

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
    Build(build::BuildArgs),
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
    /// Boot an application under gdb, stopped where you ask, with the loader's and
    /// the application's symbols in place.
    ///
    /// Builds the loader, boots APP (default: the bundled demo kernel) as `run` does,
    /// with QEMU's gdb stub, and starts gdb connected to it: the loader's symbols,
    /// the application's at the address it runs at (read at the hand-over), stopped
    /// at each WHERE. The session's gdb script is written to a file, for another
    /// debugger front end (--serve). Words after `--` go to the application.
    #[command(after_help = debug::help_text())]
    Debug(Box<debug::DebugArgs>),
    /// Build everything and run all tests (host unit tests and QEMU boots).
    Test,
    /// rustfmt check, clippy on the host crates and on the bare-metal binaries (with
    /// their real flags), all with warnings denied.
    Lint,
    /// Measure, side by side in one run: tracing overhead on boot time, trace size vs
    /// a text log, segment copy throughput vs host memcpy, decoder throughput vs
    /// defmt-print. Prints ratios (see docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Which of the loader's code QEMU translates in one boot: translated blocks and
    /// instructions per loader function (and the function inlined into it), largest
    /// first. Under TCG each distinct block costs microseconds the first time it
    /// runs, whatever it then does: this is where the loader's wall time goes
    /// (docs/benchmarks.md). The counts do not depend on the host's load.
    Census(census::CensusArgs),
    /// Boot the test kernels and save their raw serial streams, with the loader ELF,
    /// as the decoder's test data (trace-decoder/tests/recordings/).
    Record(record::RecordArgs),
    /// Run the fuzz targets of fuzz/ (cargo-fuzz, nightly) for a bounded time each
    /// (docs/fuzzing.md).
    ///
    /// Exit status: 0 when nothing was found, 1 when a target found a failing input
    /// (left in fuzz/artifacts/TARGET/), 2 when nightly Rust or cargo-fuzz is missing,
    /// TARGET is unknown, or a run failed without a finding (a build error, a full disk).
    #[command(
        after_help = "Examples:\n  cargo xtask fuzz --time 10\n  cargo xtask fuzz stream --time 600"
    )]
    Fuzz(fuzz::FuzzArgs),
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

/// Runs the subcommand in the project's root, wherever xtask was started.
fn run(cli: Cli) -> Result<ExitCode> {
    let sh = Shell::new()?;
    sh.change_dir(xtask::project_root());
    match cli.command {
        Command::Build(args) => args.run(&sh),
        Command::Run(boot) => boot.run(&sh),
        Command::Trace(args) => args.run(&sh),
        Command::Debug(args) => args.run(&sh),
        Command::Test => test::run(&sh),
        Command::Lint => lint::run(&sh),
        Command::Bench(args) => args.run(&sh),
        Command::Census(args) => args.run(&sh),
        Command::Record(args) => args.run(&sh),
        Command::Fuzz(args) => args.run(),
    }
}
