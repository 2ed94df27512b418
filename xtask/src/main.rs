//! `cargo xtask`: builds the loader and the test kernels, boots apps in QEMU and
//! runs the tests. See `cargo xtask --help`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
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
    /// Build everything and run all tests (host unit tests and QEMU boots).
    Test,
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
        Command::Test => {
            build::build_loader(&sh, Profile::Debug, TraceLevel::Info)?;
            build::build_loader(&sh, Profile::Debug, TraceLevel::Off)?;
            build::build_test_kernels(&sh, Profile::Debug)?;
            xshell::cmd!(sh, "cargo test --workspace").run()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
