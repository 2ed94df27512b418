//! The one place that builds QEMU command lines. Everything that boots the loader
//! (`cargo xtask run`, `cargo xtask trace`, the integration tests) goes through
//! `QemuConfig`, so the standard command line from the README is defined once.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// The CPU model Hermit kernels need (FSGSBASE, RDTSCP, XSAVE...).
pub const CPU: &str = "qemu64,apic,fsgsbase,fxsr,rdrand,rdtscp,xsave,xsaveopt";

/// The QEMU machine type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// The default `pc` machine with its BIOS.
    Pc,
    /// `microvm` without option ROMs, PIT or PIC. `ioapic2=off` keeps Hermit 0.6
    /// kernels from panicking on the second IOAPIC under QEMU 7.2.
    Microvm,
}

/// One boot of the loader with an application.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    pub qemu: PathBuf,
    pub machine: Machine,
    pub memory: String,
    pub smp: u32,
    pub kvm: bool,
    pub loader: PathBuf,
    /// The application, given with `-initrd`; None boots without a module.
    pub app: Option<PathBuf>,
    /// The `-append` text (kernel arguments, then `-- app args`); None: no `-append`.
    pub append: Option<String>,
    /// Anything else, appended last.
    pub extra_args: Vec<OsString>,
    /// Where QEMU runs (relative paths above are relative to it); None: here.
    pub working_dir: Option<PathBuf>,
}

impl QemuConfig {
    /// The standard boot: `pc`, 64 MiB, one CPU, TCG.
    pub fn new(loader: impl Into<PathBuf>, app: impl Into<PathBuf>) -> Self {
        QemuConfig {
            qemu: PathBuf::from("qemu-system-x86_64"),
            machine: Machine::Pc,
            memory: "64M".to_string(),
            smp: 1,
            kvm: false,
            loader: loader.into(),
            app: Some(app.into()),
            append: None,
            extra_args: Vec::new(),
            working_dir: None,
        }
    }

    /// The arguments after the QEMU binary's name.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |s: &str| args.push(s.into());
        if self.kvm {
            push("-enable-kvm");
            push("-cpu");
            push("host,-arch-capabilities");
        } else {
            push("-cpu");
            push(CPU);
        }
        push("-smp");
        push(&self.smp.to_string());
        push("-m");
        push(&self.memory);
        push("-device");
        push("isa-debug-exit,iobase=0xf4,iosize=0x04");
        push("-display");
        push("none");
        push("-serial");
        push("stdio");
        // A triple fault must end the run, not loop through resets.
        push("-no-reboot");
        if self.machine == Machine::Microvm {
            push("-M");
            push("microvm,x-option-roms=off,pit=off,pic=off,rtc=on,auto-kernel-cmdline=off,ioapic2=off");
            push("-nodefaults");
            push("-no-user-config");
        }
        args.push("-kernel".into());
        args.push(self.loader.clone().into_os_string());
        if let Some(app) = &self.app {
            args.push("-initrd".into());
            args.push(app.clone().into_os_string());
        }
        if let Some(append) = &self.append {
            args.push("-append".into());
            args.push(append.into());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// The command, ready to spawn.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.qemu);
        command.args(self.args());
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        command
    }

    /// The command line as a shell would show it (for `-v` and error messages).
    pub fn display(&self) -> String {
        std::iter::once(self.qemu.as_os_str().to_owned())
            .chain(self.args())
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The Multiboot command line QEMU hands the loader: `"<kernel file> <append>"`.
    pub fn multiboot_command_line(&self) -> String {
        format!(
            "{} {}",
            self.loader.display(),
            self.append.as_deref().unwrap_or("")
        )
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What QEMU's isa-debug-exit status means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Status 3: the kernel wrote 1 (success).
    KernelSuccess,
    /// Status 1: the kernel wrote 0 (Hermit's failure) — or QEMU itself failed.
    KernelFailure,
    /// Any other odd status: the value `(status - 1) / 2` written to port 0xf4.
    Exited { value: u8 },
    /// QEMU ended without an exit status (killed by a signal, or timed out).
    NoStatus,
}

impl Outcome {
    pub fn from_status(status: Option<i32>) -> Outcome {
        match status {
            Some(3) => Outcome::KernelSuccess,
            Some(1) => Outcome::KernelFailure,
            Some(s) if s % 2 == 1 && (0..=255).contains(&s) => Outcome::Exited {
                value: (s >> 1) as u8,
            },
            _ => Outcome::NoStatus,
        }
    }
}

/// The result of a captured run.
#[derive(Debug)]
pub struct Captured {
    pub status: Option<i32>,
    pub serial: Vec<u8>,
    pub stderr: String,
    pub timed_out: bool,
    pub wall: Duration,
}

impl Captured {
    /// The serial output without the loader's trace frames.
    pub fn serial_text(&self) -> String {
        String::from_utf8_lossy(&trace_decoder::stream::text_only(&self.serial)).into_owned()
    }
}

/// Runs QEMU to completion (or `timeout`), capturing serial output and stderr.
pub fn run_captured(config: &QemuConfig, timeout: Duration) -> Result<Captured> {
    let start = Instant::now();
    let mut child = config
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", config.qemu.display()))?;
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let (status, timed_out) = wait_with_timeout(&mut child, timeout)?;
    let wall = start.elapsed();
    let serial = stdout.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
    Ok(Captured {
        status: status.and_then(|s| s.code()),
        serial,
        stderr,
        timed_out,
        wall,
    })
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = pipe.read_to_end(&mut buffer);
        buffer
    })
}

/// Waits for the child, killing it after `timeout`.
pub fn wait_with_timeout(
    child: &mut Child,
    timeout: Duration,
) -> Result<(Option<ExitStatus>, bool)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((Some(status), false));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok((None, true));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Finds QEMU or explains how to install it.
pub fn find_qemu(explicit: Option<&Path>) -> Result<PathBuf> {
    let qemu = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"));
    match Command::new(&qemu).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => Ok(qemu),
        _ => anyhow::bail!(
            "{} not found. Install QEMU first:\n  Debian/Ubuntu: sudo apt-get install qemu-system-x86\n  Fedora:        sudo dnf install qemu-system-x86\n  macOS:         brew install qemu",
            qemu.display()
        ),
    }
}

/// Runs QEMU showing its serial output live, without the trace frames (which are
/// binary). Returns the exit status and whether the run timed out.
pub fn run_text_only(config: &QemuConfig, timeout: Duration) -> Result<(Option<i32>, bool)> {
    use std::io::Write;
    use trace_decoder::stream::{Demux, Piece};

    let mut child = config
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", config.display()))?;
    let mut serial = child.stdout.take().expect("stdout is piped");
    let printer = std::thread::spawn(move || {
        let mut demux = Demux::new();
        let stdout = std::io::stdout();
        let mut show = |piece: Piece| {
            if let Piece::Text(text) = piece {
                let mut out = stdout.lock();
                let _ = out.write_all(&text);
                let _ = out.flush();
            }
        };
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = serial.read(&mut buffer) {
            demux.feed(&buffer[..n], &mut show);
        }
        demux.finish(&mut show);
    });
    let (status, timed_out) = wait_with_timeout(&mut child, timeout)?;
    let _ = printer.join();
    Ok((status.and_then(|s| s.code()), timed_out))
}
