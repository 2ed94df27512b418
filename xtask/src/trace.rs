//! `cargo xtask run` and `cargo xtask trace`: one boot, from the command line to the
//! exit status, in one flow. Both take [`BootOptions`] and go the same way:
//!
//! 1. `Prepared::new`: the arguments and the files checked first (a mistake costs
//!    no build, [`crate::preflight`]), then QEMU found, the loader built, `-m`
//!    checked against it, the application found or built, and QEMU's command line
//!    put together ([`crate::qemu`]);
//! 2. [`traced_boot::boot`]: QEMU runs, its serial output shown as it arrives;
//! 3. `trace` only: the reports of the boot, or with `--runs`/`--baseline`/
//!    `--save-profile` the per-stage statistics (`profile_verdict`);
//! 4. `finish`: how the boot ended ([`trace_decoder::report::ending`]) as one line and the exit
//!    status, the same under both commands.
//!
//! A new boot option is a field of [`BootOptions`] and its use in `Prepared::new`.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use rusty_loader::faults::Fault;
use trace_decoder::decode::TraceTable;
use trace_decoder::host::color::ColorChoice;
use trace_decoder::host::outputs::{write_file, ReportFiles};
use trace_decoder::host::profile::{profile_boots, ProfileVerdict};
use trace_decoder::report::profile::{Baseline, RunContext, StageTimes};
use trace_decoder::report::symbols::AppSymbols;
use trace_decoder::report::Report;
use xshell::Shell;

use crate::build::{self, Profile, TraceLevel};
use crate::memory_plan::Guest;
use crate::preflight;
use crate::qemu::{self, BootProtocol, Machine, QemuConfig};
use crate::traced_boot::{self, Live, TracedRun};
use trace_decoder::report::ending::{help_table, Ending, EndingKind};

pub const RUN_EXAMPLES: &str = "\
Examples:
  cargo xtask run
  cargo xtask run target/test-kernels/debug/hello-dyn --append \"-freq 2800\" -- hello world
  cargo xtask run app.elf --microvm -m 1G --qemu-arg=-s
  cargo xtask run app.elf --boot uefi --q35 -m 256M";

pub const TRACE_EXAMPLES: &str = "\
Examples:
  cargo xtask trace
  cargo xtask trace target/test-kernels/debug/legacy-dyn --microvm -- hello world
  cargo xtask trace --release --runs 10 --save-profile profile.json
  cargo xtask trace --release --runs 5 --baseline profile.json --max-regression 10%";

/// A `--help` text's end: the examples, then the exit statuses.
pub fn after_help(examples: &str) -> String {
    format!("{examples}\n\n{}", help_table())
}

/// The options of one boot, the same for `run` and `trace`.
#[derive(clap::Args)]
pub struct BootOptions {
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
    #[arg(long, conflicts_with = "q35")]
    microvm: bool,
    /// Use the q35 machine type instead of pc.
    #[arg(long)]
    q35: bool,
    /// How QEMU boots the loader: the 32-bit image through Multiboot, the 64-bit ELF
    /// through PVH (as Cloud Hypervisor and Firecracker would), or the EFI
    /// application `rusty-loader.efi` through UEFI firmware (OVMF; pc or q35; S3 off,
    /// see the README).
    #[arg(long, value_enum, default_value = "multiboot")]
    boot: BootProtocol,
    /// The UEFI firmware for --boot uefi (one image, given to QEMU with -bios).
    #[arg(long, value_name = "PATH", default_value = qemu::DEFAULT_OVMF)]
    firmware: PathBuf,
    /// Guest memory, in QEMU's -m syntax (64M, 1.5G, size=1G,maxmem=2G); too little
    /// for the application is refused before the boot, with the least size that boots.
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
    /// Boot a loader built with fault injection (target/x86_64/<profile>/rusty-loader-faults)
    /// that breaks the hand-over as FAULT says: a test kernel then ends with the status
    /// of the check group that caught it (5-31) and names the check; the last three
    /// make the loader end with the exit code they name. Default APP: the demo app,
    /// or legacy-dyn for the two faults only it checks (recursive-entry-missing,
    /// relocation-left-out).
    #[arg(long, value_name = "FAULT", value_parser = fault_parser())]
    inject: Option<Fault>,
}

/// `--inject`'s values: every fault, each with what it breaks.
fn fault_parser() -> impl clap::builder::TypedValueParser<Value = Fault> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        Fault::ALL
            .iter()
            .map(|f| PossibleValue::new(f.name()).help(f.description())),
    )
    .map(|name| Fault::from_name(&name).expect("a listed fault"))
}

/// The options of `trace`: those of a boot, and what to do with its trace.
#[derive(clap::Args)]
pub struct TraceArgs {
    #[command(flatten)]
    boot: BootOptions,
    /// Use KVM when it can run the loader here (otherwise a warning saying why, and
    /// TCG: also when the host's KVM is PVM, which runs only PVM-aware guests).
    #[arg(long)]
    kvm: bool,
    /// Write the report of the boot as JSON (schema "rusty-trace/report",
    /// docs/report-schema.md).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a Chrome/Perfetto trace (open it in ui.perfetto.dev).
    #[arg(long, value_name = "FILE")]
    chrome_trace: Option<PathBuf>,
    /// Write an SVG boot chart and memory-layout picture.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Keep the raw serial stream, for `rusty-trace FILE` later, and how QEMU ended
    /// beside it (FILE with the extension .status): rusty-trace replays the boot
    /// and ends with its exit status.
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// Boot N times and print per-stage min/median/max.
    #[arg(long, value_name = "N", default_value_t = 1)]
    runs: usize,
    /// Write the per-stage statistics of the boots as a boot profile (schema
    /// "rusty-loader/boot-profile", docs/report-schema.md), for --baseline later; as
    /// `rusty-trace --save-profile` does.
    #[arg(long, value_name = "FILE")]
    save_profile: Option<PathBuf>,
    /// Compare per-stage times with an earlier --save-profile; fail on regressions.
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
    trace_decoder::report::profile::parse_percent(text).map_err(|e| e.to_string())
}

impl BootOptions {
    /// `cargo xtask run`: boots once, shows the application's text.
    pub fn run(&self, sh: &Shell) -> Result<ExitCode> {
        // Ctrl-C stops the boot (QEMU, which does not get it, is stopped through its
        // monitor), and the ending says so; before the boot, nothing booted.
        trace_decoder::host::pump::stop_on_ctrl_c();
        let prepared = match prepare(|| Prepared::new(sh, self, &[], false))? {
            Ok(prepared) => prepared,
            Err(interrupted) => return Ok(interrupted),
        };
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let run = prepared.boot(Some(Live {
            out: &mut out,
            style: Default::default(),
            events: false,
        }))?;
        drop(out);
        let said = run.qemu_said(prepared.symbols.as_ref());
        Ok(finish(&run.ending(), said.as_deref()))
    }
}

impl TraceArgs {
    /// `cargo xtask trace`: boots once with the trace shown live and the reports
    /// after it, or, with `--runs` or `--baseline`, N times for the statistics.
    pub fn run(self, sh: &Shell) -> Result<ExitCode> {
        anyhow::ensure!(self.runs >= 1, "--runs must be at least 1");
        anyhow::ensure!(
            self.boot.trace_level != TraceLevel::Off,
            "--trace-level off builds a loader without a trace: use `cargo xtask run`"
        );
        let profiling = self.runs > 1 || self.baseline.is_some() || self.save_profile.is_some();
        if profiling {
            // A profile is statistics over boots, not the report of one: its own
            // schema, its own option.
            for (flag, given) in [
                ("--json", self.json.is_some()),
                ("--chrome-trace", self.chrome_trace.is_some()),
                ("--svg", self.svg.is_some()),
                ("--save", self.save.is_some()),
            ] {
                anyhow::ensure!(
                    !given,
                    "{flag} writes the report of one boot; with --runs, --baseline or --save-profile the result is a boot profile: give --save-profile FILE"
                );
            }
        }
        // A bad baseline is refused before anything is built or booted.
        let baseline = self.baseline.as_deref().map(Baseline::read).transpose()?;
        let kvm = self.kvm && traced_boot::kvm_or_warn();
        // Ctrl-C stops the boot (QEMU, which does not get it, is stopped through its
        // monitor, which says where the CPU was); the report of what arrived is
        // still printed, and a second Ctrl-C ends xtask at once. Before the boot,
        // nothing booted.
        trace_decoder::host::pump::stop_on_ctrl_c();
        let prepared = match prepare(|| {
            Prepared::new(
                sh,
                &self.boot,
                &[
                    ("--json", self.json.as_deref()),
                    ("--chrome-trace", self.chrome_trace.as_deref()),
                    ("--svg", self.svg.as_deref()),
                    ("--save", self.save.as_deref()),
                    ("--save-profile", self.save_profile.as_deref()),
                ],
                kvm,
            )
        })? {
            Ok(prepared) => prepared,
            Err(interrupted) => return Ok(interrupted),
        };
        if !profiling {
            self.trace_once(&prepared)
        } else {
            self.profile_runs(&prepared, baseline.as_ref())
        }
    }

    /// One boot, its text and events shown as they arrive, then the reports.
    fn trace_once(&self, prepared: &Prepared) -> Result<ExitCode> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let run = prepared.boot(Some(Live {
            out: &mut out,
            style: trace_decoder::host::consumer::line_style(self.color, stdout.is_terminal()),
            events: true,
        }))?;
        drop(out);
        if let Some(path) = &self.save {
            save(path, &run, &prepared.run_context)?;
        }
        let record = run.record.as_ref().expect("a traced boot has a record");
        let report = Report::build_with_app(record, prepared.symbols.as_ref());
        println!();
        print!(
            "{}",
            report.render_text(self.color.enabled_for(&std::io::stdout()))
        );
        let files = ReportFiles {
            json: self.json.clone(),
            chrome_trace: self.chrome_trace.clone(),
            svg: self.svg.clone(),
        };
        for path in files.write(&report)? {
            wrote(&path);
        }
        let said = report.stop.as_ref().map(|stop| stop.message.clone());
        Ok(finish(&run.ending(), said.as_deref()))
    }

    /// `--runs N` and `--baseline`: boots quietly N times (the first boot that does
    /// not end with the application's success ends it all), then the profile flow.
    fn profile_runs(&self, prepared: &Prepared, baseline: Option<&Baseline>) -> Result<ExitCode> {
        // Progress on a terminal only, on one line rewritten in place.
        let progress = std::io::stderr().is_terminal();
        let mut boots = Vec::new();
        for i in 0..self.runs {
            if progress {
                eprint!("\rboot {}/{}...", i + 1, self.runs);
            }
            let run = prepared.boot(None)?;
            let ending = run.ending();
            let record = run.record.as_ref().expect("a traced boot has a record");
            if ending.kind != EndingKind::AppSucceeded {
                if progress {
                    eprintln!();
                }
                eprintln!(
                    "error: boot {} of {}: {} (run without --runs to see the boot); exit status {}",
                    i + 1,
                    self.runs,
                    ending.reason,
                    ending.status
                );
                return Ok(ExitCode::from(ending.status));
            }
            boots.push(StageTimes::of(&Report::build(record)).with_run(&prepared.run_context));
        }
        if progress {
            eprintln!("\r{} boots done.     ", self.runs);
        }
        profile_verdict(
            &boots,
            self.save_profile.as_deref(),
            baseline,
            self.max_regression,
        )
    }
}

/// The profile flow, rusty-trace's own (`--save-profile`/`--baseline`): the
/// per-stage statistics of `boots` printed, kept in `save`
/// (`--save-profile`), and compared with
/// `baseline`, a stage slower by more than `max_regression` (and the noise floor)
/// being a regression; the exit status says whether there was one.
fn profile_verdict(
    boots: &[StageTimes],
    save: Option<&Path>,
    baseline: Option<&Baseline>,
    max_regression: f64,
) -> Result<ExitCode> {
    let verdict = profile_boots(
        boots,
        save,
        baseline.map(|baseline| (baseline, max_regression)),
        &mut std::io::stdout(),
        &mut |path| wrote(path),
    )?;
    Ok(match verdict {
        ProfileVerdict::Regressed(verdict) => finish(&Ending::regression(verdict), None),
        ProfileVerdict::NotCompared | ProfileVerdict::Within => ExitCode::SUCCESS,
    })
}

/// Prepares a boot with `prepare`; `Err` the exit of a Ctrl-C that came meanwhile
/// (the builds it stopped fail for that reason, not their own).
fn prepare(prepare: impl FnOnce() -> Result<Prepared>) -> Result<Result<Prepared, ExitCode>> {
    let prepared = prepare();
    if trace_decoder::host::pump::interrupted() {
        return Ok(Err(finish(&Ending::interrupted_before_boot(), None)));
    }
    prepared.map(Ok)
}

/// A boot made ready: QEMU's command line and the loader's trace table.
pub struct Prepared {
    pub config: QemuConfig,
    /// None for a loader built without tracing.
    pub table: Option<TraceTable>,
    pub timeout: Duration,
    /// The application's symbols, to name a crash's code addresses (None when its
    /// ELF cannot be read for them: the report then gives addresses only).
    pub symbols: Option<AppSymbols>,
    /// The loader's 64-bit ELF, with its symbols.
    pub loader_elf: PathBuf,
    /// How the boots run, as far as the trace does not say it: the time base,
    /// the loader's profile, the application, the machine and QEMU's version.
    pub run_context: RunContext,
}

impl Prepared {
    /// Everything before a boot: the arguments and files checked first (a mistake
    /// costs no build; `outputs` are the files to write, each with its option), then
    /// QEMU found, the loader built, `-m` checked against it, the default
    /// application built, and the QEMU command line put together.
    pub fn new(
        sh: &Shell,
        boot: &BootOptions,
        outputs: &[(&str, Option<&Path>)],
        kvm: bool,
    ) -> Result<Prepared> {
        if let Some(app) = &boot.app {
            preflight::check_app(app)?;
        }
        if boot.boot != BootProtocol::Multiboot && boot.keep_cmdline {
            // QEMU's PVH boot opens `-initrd` as one file name and passes no module
            // string, which is where the loader reads its options; neither does UEFI.
            anyhow::bail!(
                "--keep-cmdline needs --boot multiboot: QEMU's PVH and UEFI boots pass no module string for the loader's options"
            );
        }
        if boot.boot == BootProtocol::Uefi {
            if boot.microvm {
                anyhow::bail!("--boot uefi needs the pc or q35 machine type, not microvm");
            }
            if !boot.firmware.is_file() {
                anyhow::bail!(
                    "no UEFI firmware at {}: install OVMF (Debian/Ubuntu: sudo apt-get install ovmf) or give --firmware PATH",
                    boot.firmware.display()
                );
            }
        }
        for (flag, path) in outputs {
            if let Some(path) = path {
                preflight::check_output(flag, path)?;
            }
        }
        preflight::memory_bytes(&boot.memory)?;
        let qemu = qemu::find_qemu(boot.qemu.as_deref())?;
        let profile = Profile::from_release(boot.release);
        if boot.inject.is_some() && boot.trace_level != TraceLevel::Info {
            anyhow::bail!(
                "--inject builds the loader traced at the default level: drop --trace-level"
            );
        }
        let loader = match boot.inject {
            Some(_) => build::build_fault_loader(sh, profile),
            None => build::build_loader(sh, profile, boot.trace_level),
        }
        .context("the loader build failed")?;
        let loader_image = trace_decoder::host::loader_elf::loader_image(&loader.elf)?;
        let table = if boot.trace_level == TraceLevel::Off {
            None
        } else {
            Some(trace_decoder::host::loader_elf::load_table(&loader.elf)?)
        };
        let app = match &boot.app {
            // QEMU runs in the project's root (below): the path must not depend on
            // where xtask was started.
            Some(app) => std::path::absolute(app)
                .with_context(|| format!("cannot resolve {}", app.display()))?,
            None => {
                let kernels = build::build_test_kernels(sh, profile)?;
                // A fault the demo app does not check boots the kernel that does.
                let checking = boot.inject.and_then(Fault::kernel);
                let found = kernels
                    .all()
                    .into_iter()
                    .find(|path| path.file_name().and_then(|n| n.to_str()) == checking)
                    .cloned();
                found.unwrap_or(kernels.hello_dyn)
            }
        };
        // The loader's path is the kernel's file name on the Multiboot command line,
        // which the trace and its reports show: relative to the project's root, it
        // says the same on every machine and gives away no home directory.
        let root = crate::project_root();
        let loader_file = loader
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
                    .strip_prefix(&root)
                    .unwrap_or(&app)
                    .display()
                    .to_string();
                Some(symbols)
            }
            // A file that is not an ELF at all is the loader's to refuse, in one line
            // of its own: no warning before it.
            Err(_) if !is_elf(&app) => None,
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
            } else if boot.q35 {
                Machine::Q35
            } else {
                Machine::Pc
            },
            firmware: (boot.boot == BootProtocol::Uefi).then(|| boot.firmware.clone()),
            memory: boot.memory.clone(),
            smp: boot.smp,
            kvm,
            append: (!append.is_empty()).then_some(append),
            loader_options: loader_options(boot.keep_cmdline),
            boot: boot.boot,
            deterministic: boot.deterministic,
            fault: boot.inject.map(|fault| fault.name().to_string()),
            extra_args: boot.qemu_args.iter().map(OsString::from).collect(),
            working_dir: Some(root),
            ..QemuConfig::new(loader_file, &app)
        };
        let app_bytes =
            std::fs::read(&app).with_context(|| format!("cannot read {}", app.display()))?;
        // Where the model knows QEMU's placement; elsewhere (UEFI, q35) the loader's
        // own refusal names the least RAM.
        if let Some(guest) = Guest::new(&config, loader_image, &app_bytes) {
            preflight::check_memory(&boot.memory, &guest)?;
        }
        if boot.verbose {
            eprintln!("{}", config.display());
            for note in config.staging_notes() {
                eprintln!("{note}");
            }
        }
        let mut run_context = RunContext::default();
        run_context.set("time-base", config.time_base());
        run_context.set("loader-profile", profile.dir_name());
        if let Some(name) = app.file_name() {
            run_context.set("app", name.to_string_lossy());
        }
        run_context.set("machine", config.machine_name());
        if let Some(version) = qemu::qemu_version(&config.qemu) {
            run_context.set("qemu-version", version);
        }
        Ok(Prepared {
            config,
            table,
            timeout: Duration::from_secs(boot.timeout),
            symbols,
            loader_elf: loader.elf,
            run_context,
        })
    }

    /// Boots once ([`traced_boot::boot`]), shown `live` or not at all.
    fn boot(&self, live: Option<Live>) -> Result<TracedRun> {
        traced_boot::boot(&self.config, self.table.as_ref(), self.timeout, live)
    }
}

/// Whether `path` starts with the ELF magic.
fn is_elf(path: &Path) -> bool {
    let mut magic = [0; 4];
    std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut magic))
        .is_ok_and(|()| magic == *b"\x7fELF")
}

/// The loader's own options, written after the application's file name in `-initrd`.
fn loader_options(keep_cmdline: bool) -> Vec<String> {
    keep_cmdline
        .then(|| "keep-cmdline".to_string())
        .into_iter()
        .collect()
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

/// Writes the raw stream and QEMU's end beside it (`FILE.status`: its exit status,
/// or how it ended without one, then how the boot ran, for a profile of recordings,
/// [`trace_decoder::report::ending::QemuEnd::to_recorded`]), the pair `rusty-trace
/// FILE` replays, ending with this boot's exit status.
fn save(path: &Path, run: &TracedRun, context: &RunContext) -> Result<()> {
    write_file(path, "the raw stream", &run.raw)?;
    wrote(path);
    let status_path = path.with_extension("status");
    let beside = run.qemu.to_recorded(run.qemu_error.as_deref()) + &context.to_recorded();
    write_file(&status_path, "QEMU's end", beside)?;
    wrote(&status_path);
    Ok(())
}

/// Says that a file was written (on stderr, so that stdout keeps the results).
fn wrote(path: &Path) {
    eprintln!("wrote {}", path.display());
}
