//! `cargo xtask record`: boots the test kernels and keeps their raw serial streams,
//! with the loader ELF that produced them, as test data for the decoder
//! (`trace-decoder/tests/recordings/`). Run it again whenever the trace format or the
//! loader changes; the decoder's snapshot tests then show what changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::build::{self, Profile, TraceLevel};
use crate::project_root;
use crate::qemu::{self, Machine, QemuConfig};

/// Where recordings live.
/// `cargo xtask record`'s options.
#[derive(clap::Args)]
pub struct RecordArgs {
    /// Write them here instead (a directory, made if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl RecordArgs {
    /// `cargo xtask record`: into the decoder's recordings, or `--out`.
    pub fn run(self, sh: &Shell) -> Result<std::process::ExitCode> {
        // Absolute: the files are written here and by tools run from the root.
        let dir = match self.out {
            Some(dir) => std::path::absolute(&dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?,
            None => recordings_dir(),
        };
        record(sh, &dir)?;
        Ok(std::process::ExitCode::SUCCESS)
    }
}

pub fn recordings_dir() -> PathBuf {
    project_root().join("trace-decoder/tests/recordings")
}

/// One recording: a name, the kernel, the machine, the `-append` text.
struct Case {
    name: &'static str,
    kernel: PathBuf,
    machine: Machine,
    append: Option<&'static str>,
}

/// Records every case into `dir` ([`recordings_dir`] for the decoder's tests).
pub fn record(sh: &Shell, dir: &Path) -> Result<()> {
    let loader = build::build_loader(sh, Profile::Release, TraceLevel::Info)?;
    let kernels = build::build_test_kernels(sh, Profile::Release)?;
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let not_elf = dir.join("not-an-elf.txt");
    std::fs::write(&not_elf, "this is not a Hermit application\n")?;
    let cases = [
        Case {
            name: "hello-dyn-pc",
            kernel: kernels.hello_dyn.clone(),
            machine: Machine::Pc,
            append: Some("-freq 2800 -- first second"),
        },
        Case {
            name: "legacy-dyn-microvm",
            kernel: kernels.legacy_dyn.clone(),
            machine: Machine::Microvm,
            append: Some("-freq 2800"),
        },
        Case {
            name: "hello-exec-pc",
            kernel: kernels.hello_exec.clone(),
            machine: Machine::Pc,
            append: None,
        },
        // No -freq for a kernel of 0.6-0.10: the loader measures the frequency and
        // inserts it into the command line (CommandLineEdited).
        Case {
            name: "legacy-dyn-pc-measured",
            kernel: kernels.legacy_dyn.clone(),
            machine: Machine::Pc,
            append: Some("-- app"),
        },
        Case {
            name: "not-an-elf",
            kernel: not_elf.clone(),
            machine: Machine::Pc,
            append: None,
        },
    ];
    for case in cases {
        let mut config = QemuConfig::new(&loader.image, &case.kernel);
        config.machine = case.machine;
        config.append = case.append.map(str::to_string);
        // Keep paths out of the recorded command line, so recordings do not depend on
        // where the repository was checked out.
        config.working_dir = loader.image.parent().map(PathBuf::from);
        config.loader = PathBuf::from("rusty-loader");
        let run = qemu::run_captured(&config, Duration::from_secs(60))?;
        if run.timed_out {
            bail!("{} timed out", case.name);
        }
        std::fs::write(dir.join(format!("{}.bin", case.name)), &run.serial)?;
        std::fs::write(
            dir.join(format!("{}.status", case.name)),
            format!("{}\n", run.status.unwrap_or(-1)),
        )?;
        println!(
            "recorded {} ({} bytes, {})",
            case.name,
            run.serial.len(),
            qemu::describe_status(run.status)
        );
    }
    // The decoder needs the table and symbols, not the debug info.
    let elf = dir.join("rusty-loader.elf");
    let objcopy = build::find_objcopy(sh)?;
    let source = &loader.elf;
    cmd!(sh, "{objcopy} --strip-debug {source} {elf}")
        .run()
        .context("stripping the loader ELF")?;
    println!("wrote {}", dir.display());
    Ok(())
}
