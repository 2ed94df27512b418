//! The one place that builds QEMU command lines and runs QEMU. Everything that boots
//! the loader (`cargo xtask run`, `trace`, `bench`, `record`, the integration tests)
//! goes through `QemuConfig`, so the standard command line from the README is defined
//! once, and through [`run`], so that spawning, reading the serial output as it
//! arrives, QEMU's own messages and the timeout are handled once.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use trace_decoder::host::pump::{read_live, Arrival, InputEnd};

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
    /// `q35` (ICH9, PCIe): with UEFI, the machine OVMF is mostly run on.
    Q35,
}

/// How QEMU boots the loader (`-kernel`): the two entries of one loader build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BootProtocol {
    /// The 32-bit image (`rusty-loader`), through Multiboot 1.
    #[default]
    Multiboot,
    /// The 64-bit ELF beside it (`rusty-loader.elf`), through PVH (its Xen note).
    Pvh,
    /// The EFI application beside it (`rusty-loader.efi`), started by UEFI firmware
    /// (OVMF, given with `-bios`).
    Uefi,
}

/// Where Debian's `ovmf` package installs the one-image OVMF firmware.
pub const DEFAULT_OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// One boot of the loader with an application.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    pub qemu: PathBuf,
    pub machine: Machine,
    pub memory: String,
    pub smp: u32,
    pub kvm: bool,
    /// The loader's 32-bit image, as `cargo xtask build` writes it; a PVH boot gives
    /// QEMU the 64-bit ELF beside it (`<image>.elf`).
    pub loader: PathBuf,
    /// Which of the loader's entries QEMU uses.
    pub boot: BootProtocol,
    /// The application, given with `-initrd`; None boots without a module.
    pub app: Option<PathBuf>,
    /// The loader's own options, after the application's file name in `-initrd`
    /// (`keep-cmdline`).
    pub loader_options: Vec<String>,
    /// The `-append` text (kernel arguments, then `-- app args`); None: no `-append`.
    pub append: Option<String>,
    /// Deterministic timing (`-icount shift=0,sleep=off`): every guest instruction
    /// takes one nanosecond of virtual time, so the TSC counts instructions and every
    /// figure repeats exactly, whatever the host is doing. For budgets and baselines;
    /// much slower than TCG's normal mode.
    pub deterministic: bool,
    /// Ask QEMU, not the guest, how a boot ended: `-no-shutdown` and a QMP socket,
    /// so that a guest that resets (a triple fault, stopped by `-no-reboot`) or
    /// powers off is paused and its registers can be read, and a guest still
    /// running at the timeout is stopped and read the same way
    /// ([`Finished::stop`]); under TCG also `-d cpu_reset` to a log, where QEMU says
    /// "Triple fault" when that is what reset the guest.
    pub monitor: bool,
    /// A gdb stub on this Unix socket (`-gdb unix:...`), with the CPU held before its
    /// first instruction (`-S`) until a debugger continues it (`cargo xtask debug`).
    /// A socket rather than a TCP port: sessions running side by side never
    /// collide. QEMU then runs in a process group of its own, so that Ctrl-C at the
    /// debugger's prompt interrupts the guest through the debugger instead of ending
    /// QEMU.
    pub gdb_socket: Option<PathBuf>,
    /// The fault a loader built with fault injection breaks the hand-over with
    /// (`rusty_loader::faults`): its name goes to the loader in the fw_cfg file
    /// `opt/rusty-loader/fault`. None: no such file (a normal loader ignores it).
    pub fault: Option<String>,
    /// The UEFI firmware for `-bios` under [`BootProtocol::Uefi`] (default
    /// [`DEFAULT_OVMF`]).
    pub firmware: Option<PathBuf>,
    /// Under [`BootProtocol::Uefi`]: boot from this directory as an EFI system
    /// partition (QEMU's `fat:rw:` drive; the firmware starts
    /// `EFI/BOOT/BOOTX64.EFI` on it) instead of `-kernel`/`-initrd`/`-append`.
    pub efi_system_partition: Option<PathBuf>,
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
            boot: BootProtocol::Multiboot,
            app: Some(app.into()),
            loader_options: Vec::new(),
            append: None,
            deterministic: false,
            monitor: false,
            gdb_socket: None,
            fault: None,
            firmware: None,
            efi_system_partition: None,
            extra_args: Vec::new(),
            working_dir: None,
        }
    }

    /// The arguments after the QEMU binary's name, with the run's directory shown as
    /// `<run>` ([`run`] makes one for each run: the monitor's socket and log, and
    /// the links of [`QemuConfig::staged_files`]).
    pub fn args(&self) -> Vec<OsString> {
        self.args_in(Path::new(RUN_DIR_SHOWN))
    }

    /// The arguments, with the run's files in `run_dir`.
    fn args_in(&self, run_dir: &Path) -> Vec<OsString> {
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
        if self.deterministic {
            push("-icount");
            push("shift=0,sleep=off");
        }
        if self.machine == Machine::Microvm {
            push("-M");
            push("microvm,x-option-roms=off,pit=off,pic=off,rtc=on,auto-kernel-cmdline=off,ioapic2=off");
            push("-nodefaults");
            push("-no-user-config");
        }
        if self.machine == Machine::Q35 {
            push("-M");
            push("q35");
        }
        if self.boot == BootProtocol::Uefi {
            args.push("-bios".into());
            args.push(
                self.firmware
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_OVMF))
                    .into(),
            );
            // Without S3 (suspend to RAM) OVMF keeps no memory at 8 MiB for its
            // resume path (ACPI NVS at 0x800000-0x900000 otherwise), where ET_EXEC
            // Hermit kernels are linked. Hermit never suspends.
            args.push("-global".into());
            args.push(
                match self.machine {
                    Machine::Q35 => "ICH9-LPC.disable_s3=1",
                    _ => "PIIX4_PM.disable_s3=1",
                }
                .into(),
            );
            if let Some(esp) = &self.efi_system_partition {
                args.push("-drive".into());
                let mut drive = OsString::from("format=raw,file=fat:rw:");
                drive.push(esp);
                args.push(drive);
                args.extend(self.extra_args.iter().cloned());
                return args;
            }
        }
        if self.monitor {
            let (socket, log) = monitor_paths(run_dir);
            args.push("-no-shutdown".into());
            args.push("-qmp".into());
            // A chardev's options: a comma in the path is written twice.
            let mut qmp = OsString::from("unix:");
            qmp.push(escape_commas(socket.as_os_str()));
            qmp.push(",server=on,wait=off");
            args.push(qmp);
            if !self.kvm {
                args.push("-d".into());
                args.push("cpu_reset".into());
                args.push("-D".into());
                args.push(log.into());
            }
        }
        if let Some(socket) = &self.gdb_socket {
            args.push("-S".into());
            args.push("-gdb".into());
            let mut stub = OsString::from("unix:");
            stub.push(socket);
            stub.push(",server=on,wait=off");
            args.push(stub);
        }
        let staged = self.staged_files();
        let given = |path: PathBuf| match staged.iter().find(|s| s.original == path) {
            Some(staged) => run_dir.join(&staged.name).into_os_string(),
            None => path.into_os_string(),
        };
        args.push("-kernel".into());
        args.push(given(self.kernel_file()));
        if let Some(app) = &self.app {
            args.push("-initrd".into());
            args.push(self.module_string(given(app.clone())));
        }
        if let Some(append) = &self.append {
            args.push("-append".into());
            args.push(append.into());
        }
        if let Some(fault) = &self.fault {
            args.push("-fw_cfg".into());
            args.push(format!("name={},string={fault}", rusty_loader::faults::FW_CFG_FILE).into());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// The `-initrd` text: the application's file name `app`, then the loader's
    /// options, which QEMU's Multiboot loader passes on as the module's string.
    fn module_string(&self, app: OsString) -> OsString {
        let mut module = app;
        for option in &self.loader_options {
            module.push(" ");
            module.push(option);
        }
        module
    }

    /// The length of the `-initrd` text, in bytes, files as given.
    pub fn module_string_len(&self) -> usize {
        self.app.as_ref().map_or(0, |app| {
            self.module_string(app.clone().into_os_string()).len()
        })
    }

    /// The files QEMU would misread under their own names, each given to it as a
    /// link under a plain name in the run's directory instead:
    ///
    /// - QEMU's Multiboot loader splits `-initrd` at commas (a module each; `,,`
    ///   is a comma) and ends each file name at the first space (the rest is the
    ///   module's string), while its PVH loader opens the whole text as one name, so
    ///   no one escaping serves both;
    /// - the `-kernel` file's name starts the Multiboot command line, which the
    ///   kernel splits into words at spaces.
    ///
    /// A quote or a non-ASCII character is read differently by different
    /// kernels' command-line parsers, so only names of letters, digits and
    /// `-_./+@` are given as they are.
    pub fn staged_files(&self) -> Vec<Staged> {
        let mut staged: Vec<Staged> = Vec::new();
        let files = std::iter::once(self.kernel_file()).chain(self.app.clone());
        for original in files {
            if is_plain(original.as_os_str()) || staged.iter().any(|s| s.original == original) {
                continue;
            }
            let mut name = plain_name(&original);
            if staged.iter().any(|s| s.name == name) {
                name = format!("{}-{name}", staged.len() + 1);
            }
            staged.push(Staged { original, name });
        }
        staged
    }

    /// Lines saying which files are given to QEMU under another name, for `-v`.
    pub fn staging_notes(&self) -> Vec<String> {
        self.staged_files()
            .iter()
            .map(|staged| {
                format!(
                    "note: {} goes to QEMU as a link, {RUN_DIR_SHOWN}/{}: QEMU's options and the kernel's command line would split its name",
                    shell_quote(&staged.original.to_string_lossy()),
                    staged.name
                )
            })
            .collect()
    }

    /// The command, ready to spawn, with the run's files in `run_dir`. QEMU ends
    /// when the thread that spawns it does, whatever ends it (a second Ctrl-C, a
    /// kill): [`run_until`] never returns before QEMU has ended, so this is only a
    /// safety net. With a monitor, QEMU starts with Ctrl-C held back
    /// ([`in_the_child`]).
    fn command(&self, run_dir: &Path) -> Result<Command> {
        for staged in self.staged_files() {
            let target = match &self.working_dir {
                Some(dir) => dir.join(&staged.original),
                None => std::path::absolute(&staged.original)?,
            };
            let link = run_dir.join(&staged.name);
            std::os::unix::fs::symlink(&target, &link).with_context(|| {
                format!(
                    "linking {} as {} for QEMU",
                    target.display(),
                    link.display()
                )
            })?;
        }
        let mut command = Command::new(&self.qemu);
        command.args(self.args_in(run_dir));
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        if self.gdb_socket.is_some() {
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        let hold_back_ctrl_c = self.monitor && self.gdb_socket.is_none();
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed: it makes two system calls
        // (prctl, sigprocmask) on values built on its stack, and allocates nothing.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                in_the_child(hold_back_ctrl_c)
            });
        }
        Ok(command)
    }

    /// The command line as a shell would show it (for `-v` and error messages).
    pub fn display(&self) -> String {
        std::iter::once(self.qemu.as_os_str().to_owned())
            .chain(self.args())
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The file QEMU boots with `-kernel`: the 32-bit image (Multiboot), the 64-bit
    /// ELF beside it (PVH) or the EFI application beside it (UEFI).
    pub fn kernel_file(&self) -> PathBuf {
        let beside = |extension: &str| {
            let mut file = self.loader.clone().into_os_string();
            file.push(extension);
            PathBuf::from(file)
        };
        match self.boot {
            BootProtocol::Multiboot => self.loader.clone(),
            BootProtocol::Pvh => beside(".elf"),
            BootProtocol::Uefi => beside(".efi"),
        }
    }

    /// How the guest's time runs, for a profile's context
    /// (`trace_decoder::report::profile::TIME_BASES`): `wall`, or `instructions
    /// (-icount <options>)` when QEMU counts instructions (`deterministic`, or an
    /// `-icount` among the extra arguments, the last one QEMU takes).
    pub fn time_base(&self) -> String {
        let mut icount = self.deterministic.then(|| "shift=0,sleep=off".to_string());
        let mut args = self.extra_args.iter();
        while let Some(arg) = args.next() {
            if arg == "-icount" {
                icount = Some(
                    args.next()
                        .map_or(String::new(), |a| a.to_string_lossy().into_owned()),
                );
            }
        }
        match icount {
            Some(options) => format!("instructions (-icount {options})"),
            None => "wall".to_string(),
        }
    }

    /// The machine type's name (`pc`, `q35`, `microvm`).
    pub fn machine_name(&self) -> &'static str {
        match self.machine {
            Machine::Pc => "pc",
            Machine::Q35 => "q35",
            Machine::Microvm => "microvm",
        }
    }

    /// The command line QEMU hands the loader: through Multiboot
    /// `"<kernel file> <append>"`, through PVH the `-append` text alone.
    pub fn command_line(&self) -> String {
        let append = self.append.as_deref().unwrap_or("");
        match self.boot {
            BootProtocol::Multiboot => format!("{} {append}", self.kernel_file().display()),
            // UEFI: the load options without the `initrd=initrd` OVMF appends.
            BootProtocol::Pvh | BootProtocol::Uefi => append.to_string(),
        }
    }
}

/// What QEMU's process does before it runs QEMU: it asks to be killed when the
/// thread that spawned it ends (`PR_SET_PDEATHSIG`), and with `hold_back_ctrl_c`
/// blocks SIGINT. A terminal's Ctrl-C goes to the whole process group, and QEMU
/// ends on SIGINT whatever `-no-shutdown` says (exiting with status 0, which reads
/// as a reset): blocked, it keeps running, and the runner stops the guest through
/// QMP, reads where the CPU was and ends QEMU, as at a timeout. QEMU keeps the
/// signal mask it inherits (checked by `xtask/tests/trace_command.rs`'s Ctrl-C
/// test); SIGTERM and SIGHUP still end it.
fn in_the_child(hold_back_ctrl_c: bool) -> io::Result<()> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    if hold_back_ctrl_c {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    }
    Ok(())
}

/// The QMP socket and QEMU's log in a monitor directory.
fn monitor_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("qmp.sock"), dir.join("qemu.log"))
}

/// How `-v` shows the run's directory, which [`run`] makes anew for each run.
const RUN_DIR_SHOWN: &str = "<run>";

/// A file given to QEMU as a link under a plain name ([`QemuConfig::staged_files`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    /// The file as the caller named it.
    pub original: PathBuf,
    /// The link's name in the run's directory.
    pub name: String,
}

/// Whether QEMU and every kernel read `text` as one plain file name.
fn is_plain(text: &std::ffi::OsStr) -> bool {
    text.as_encoded_bytes()
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-_./+@".contains(&b))
}

/// A plain name for `path`'s file: its name with every other character made `_`.
fn plain_name(path: &Path) -> String {
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.trim_matches('.').is_empty() {
        "app".to_string()
    } else {
        name
    }
}

/// `text` with each comma doubled, as QEMU's option syntax reads a comma in a value.
fn escape_commas(text: &std::ffi::OsStr) -> OsString {
    OsString::from(text.to_string_lossy().replace(',', ",,"))
}

/// A fresh directory for one run's files (the monitor's socket and log, links to
/// files under plain names), removed when dropped. Its own path is plain: under the
/// temporary directory, or under /tmp when that one's name is not.
struct RunDir(PathBuf);

impl RunDir {
    fn new() -> io::Result<RunDir> {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let temp = std::env::temp_dir();
        let base = if is_plain(temp.as_os_str()) {
            temp
        } else {
            PathBuf::from("/tmp")
        };
        let dir = base.join(format!("rusty-loader-qemu-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(RunDir(dir))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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

/// What happens to QEMU's own messages (its standard error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QemuStderr {
    /// Copied to ours as they come, line by line.
    PassOn,
    /// Kept for the caller, in [`Finished::stderr`].
    Capture,
}

/// How a run of QEMU ended.
#[derive(Debug)]
pub struct Finished {
    /// QEMU's exit status; None when it was stopped (timeout, KVM failure, Ctrl-C,
    /// the caller) or ended by a signal.
    pub status: Option<i32>,
    /// QEMU was still running at the timeout and was stopped.
    pub timed_out: bool,
    /// QEMU reported a "KVM internal error" and was stopped: after one it stops the
    /// guest but keeps running, so the run would otherwise sit there until the
    /// timeout.
    pub kvm_failed: bool,
    /// Ctrl-C stopped the reading, and QEMU with it (only once
    /// [`trace_decoder::host::pump::stop_on_ctrl_c`] is in force).
    pub interrupted: bool,
    /// QEMU's standard error, with [`QemuStderr::Capture`] (empty otherwise).
    pub stderr: String,
    /// The last message QEMU wrote to its standard error that is not a warning,
    /// all its lines joined by spaces: why QEMU failed, when it did (kept in both
    /// modes).
    pub error_message: Option<String>,
    /// With [`QemuConfig::monitor`]: how QEMU saw the guest stop (reset, power-off,
    /// or stopped at the timeout) and its registers then.
    pub stop: Option<crate::qmp::MachineStop>,
    /// With [`QemuConfig::monitor`] under TCG: QEMU logged a triple fault.
    pub triple_fault_logged: bool,
    /// From the spawn to QEMU's end.
    pub wall: Duration,
}

/// The one way QEMU is run: spawns it, hands its serial output (its standard
/// output) to `on_serial` as it arrives, with the pauses
/// ([`trace_decoder::host::pump::read_live`]), watches its standard error, and stops it
/// after `timeout`, after a KVM internal error, on Ctrl-C (once
/// [`trace_decoder::host::pump::stop_on_ctrl_c`] is in force) or when `on_serial` breaks.
/// Returns once QEMU has ended and its output has been read to the end.
pub fn run(
    config: &QemuConfig,
    timeout: Duration,
    stderr: QemuStderr,
    on_serial: impl FnMut(Arrival) -> ControlFlow<()>,
) -> Result<Finished> {
    run_until(config, timeout, stderr, Arc::default(), on_serial)
}

/// [`run`], also stopping QEMU as soon as `stop` is set, from any thread (`cargo
/// xtask debug` ends QEMU when its debugger is done, which the serial output does not
/// tell).
pub fn run_until(
    config: &QemuConfig,
    timeout: Duration,
    stderr: QemuStderr,
    stop: Arc<AtomicBool>,
    on_serial: impl FnMut(Arrival) -> ControlFlow<()>,
) -> Result<Finished> {
    let run_dir = RunDir::new().context("creating a directory for this run of QEMU")?;
    let monitor = config.monitor.then_some(&run_dir);
    let start = Instant::now();
    let mut child = config
        .command(&run_dir.0)?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", config.display()))?;
    let serial = child.stdout.take().expect("stdout is piped");
    let qemu_stderr = child.stderr.take().expect("stderr is piped");
    // Set to make the watchdog stop QEMU before its time (`stop`, the caller's flag).
    let kvm_failed = Arc::new(AtomicBool::new(false));
    // Set by the watchdog at the timeout: the monitor stops the guest and reads it.
    let stop_guest = Arc::new(AtomicBool::new(false));
    // Set once QEMU has ended: a monitor still waiting for the socket gives up.
    let qemu_gone = Arc::new(AtomicBool::new(false));
    // Set once the monitor talks to QEMU: only then is it given time at the timeout.
    let monitor_connected = Arc::new(AtomicBool::new(false));
    let stderr_watch = {
        let (stop, kvm_failed) = (stop.clone(), kvm_failed.clone());
        // QEMU starts each message with its program's name.
        let program = config
            .qemu
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        std::thread::spawn(move || watch_stderr(qemu_stderr, stderr, &program, &stop, &kvm_failed))
    };
    let monitor_watch = monitor.as_ref().map(|dir| {
        let (socket, _) = monitor_paths(&dir.0);
        let (stop_guest, qemu_gone) = (stop_guest.clone(), qemu_gone.clone());
        let connected = monitor_connected.clone();
        std::thread::spawn(move || crate::qmp::watch(&socket, &stop_guest, &qemu_gone, &connected))
    });
    let watchdog = {
        let stop = stop.clone();
        let monitor = monitor
            .is_some()
            .then(|| (stop_guest.clone(), monitor_connected.clone()));
        let qemu_gone = qemu_gone.clone();
        std::thread::spawn(move || {
            let monitor = monitor
                .as_ref()
                .map(|(stop, connected)| (&**stop, &**connected));
            let ending = watch(child, start, start + timeout, &stop, monitor);
            qemu_gone.store(true, Ordering::Relaxed);
            ending
        })
    };
    // QEMU's standard output ends when QEMU does, however it ends: the watchdog makes
    // sure it does.
    let end = read_live(serial, on_serial);
    match end {
        InputEnd::Complete => {}
        // Ctrl-C, which QEMU did not get: the guest still runs, and is stopped and
        // read through the monitor as at a timeout (the watchdog gives it the time).
        InputEnd::Interrupted if monitor_connected.load(Ordering::Relaxed) => {
            stop_guest.store(true, Ordering::Relaxed);
        }
        _ => stop.store(true, Ordering::Relaxed),
    }
    let ending = watchdog.join().expect("the watchdog does not panic");
    let (captured, error_message) = stderr_watch
        .join()
        .expect("the stderr watcher does not panic");
    let stop_seen = monitor_watch
        .map(|watch| watch.join().expect("the monitor does not panic"))
        .unwrap_or(None);
    let triple_fault_logged = monitor.as_ref().is_some_and(|dir| {
        let (_, log) = monitor_paths(&dir.0);
        std::fs::read(log)
            .is_ok_and(|log| log.windows(TRIPLE_FAULT.len()).any(|w| w == TRIPLE_FAULT))
    });
    let ending = ending.context("waiting for QEMU")?;
    if let InputEnd::ReadError(error) = end {
        return Err(error).context("reading QEMU's serial output");
    }
    Ok(Finished {
        status: ending.status,
        timed_out: ending.timed_out,
        kvm_failed: kvm_failed.load(Ordering::Relaxed),
        interrupted: matches!(end, InputEnd::Interrupted),
        stderr: String::from_utf8_lossy(&captured).into_owned(),
        error_message,
        stop: stop_seen,
        triple_fault_logged,
        wall: ending.wall,
    })
}

/// What QEMU logs (`-d cpu_reset`, TCG) when a triple fault resets the guest.
const TRIPLE_FAULT: &[u8] = b"Triple fault";

/// How the watchdog saw QEMU end.
struct Ending {
    status: Option<i32>,
    timed_out: bool,
    wall: Duration,
}

/// How long a monitor may take to stop the guest, read it and end QEMU (at the
/// timeout, or on Ctrl-C) before QEMU is killed.
const MONITOR_GRACE: Duration = Duration::from_secs(5);

/// Waits for QEMU to end, stopping it at `deadline` or when `stop` is set. With a
/// monitor that talks to QEMU (`monitor`: the flag that asks it to stop the guest,
/// and whether it is connected), the monitor is asked to stop the guest and end
/// QEMU first, at the deadline or when the runner set that flag itself (Ctrl-C),
/// and given [`MONITOR_GRACE`] to do so.
fn watch(
    mut child: Child,
    start: Instant,
    deadline: Instant,
    stop: &AtomicBool,
    monitor: Option<(&AtomicBool, &AtomicBool)>,
) -> io::Result<Ending> {
    let mut kill_at = None;
    let mut timed_out = false;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Ok(Ending {
                    // Ended by the monitor: no status of the guest's.
                    status: status.code().filter(|_| kill_at.is_none()),
                    timed_out,
                    wall: start.elapsed(),
                });
            }
            Ok(None) => {}
            Err(error) => {
                // QEMU must not outlive the run, whatever went wrong.
                let _ = child.kill();
                return Err(error);
            }
        }
        let now = Instant::now();
        if now >= deadline && !timed_out {
            timed_out = true;
            if let Some((stop_guest, connected)) = monitor {
                if connected.load(Ordering::Relaxed) {
                    stop_guest.store(true, Ordering::Relaxed);
                }
            }
        }
        if let (None, Some((stop_guest, _))) = (kill_at, monitor) {
            if stop_guest.load(Ordering::Relaxed) {
                kill_at = Some(now + MONITOR_GRACE);
            }
        }
        let grace_over = kill_at.is_none_or(|at| now >= at);
        let asked = timed_out || kill_at.is_some();
        if (asked && grace_over) || stop.load(Ordering::Relaxed) {
            let _ = child.kill();
            child.wait()?;
            return Ok(Ending {
                status: None,
                timed_out,
                wall: start.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads QEMU's standard error line by line, passing it on or keeping it, and stops
/// the run after a KVM internal error. Returns what it kept and the last message
/// that is not a warning: a message starts with `<program>: ` and goes on over the
/// lines that do not (QEMU explains a bad size in three lines).
fn watch_stderr(
    qemu_stderr: impl Read,
    mode: QemuStderr,
    program: &str,
    stop: &AtomicBool,
    kvm_failed: &AtomicBool,
) -> (Vec<u8>, Option<String>) {
    let mut captured = Vec::new();
    let mut message: Option<String> = None;
    // Whether the message at hand is a warning, whose further lines are left out.
    let mut in_warning = false;
    let starts_message = format!("{program}: ");
    let mut lines = BufReader::new(qemu_stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return (captured, message),
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            // Nothing to keep.
        } else if text.contains(": warning: ") {
            // QEMU writes `<program>: warning: ...` for what it goes on after.
            in_warning = true;
        } else if text.starts_with(&starts_message) {
            message = Some(text.to_string());
            in_warning = false;
        } else if in_warning {
            // The rest of a warning.
        } else if let Some(message) = &mut message {
            message.push(' ');
            message.push_str(text.trim_start());
        } else {
            message = Some(text.to_string());
        }
        match mode {
            QemuStderr::PassOn => {
                let mut ours = io::stderr().lock();
                let _ = ours.write_all(&line).and_then(|()| ours.flush());
            }
            QemuStderr::Capture => captured.extend_from_slice(&line),
        }
        if line.windows(KVM_ERROR.len()).any(|w| w == KVM_ERROR) {
            kvm_failed.store(true, Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// What QEMU prints when KVM cannot run the guest on (and then waits).
const KVM_ERROR: &[u8] = b"KVM internal error";

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
        String::from_utf8_lossy(&trace_decoder::decode::stream::text_only(&self.serial))
            .into_owned()
    }
}

/// Runs QEMU to completion (or `timeout`), capturing serial output and stderr.
pub fn run_captured(config: &QemuConfig, timeout: Duration) -> Result<Captured> {
    let mut serial = Vec::new();
    let finished = run(config, timeout, QemuStderr::Capture, |arrival| {
        if let Arrival::Bytes(bytes) = arrival {
            serial.extend_from_slice(bytes);
        }
        ControlFlow::Continue(())
    })?;
    Ok(Captured {
        status: finished.status,
        serial,
        stderr: finished.stderr,
        timed_out: finished.timed_out,
        wall: finished.wall,
    })
}

/// QEMU's exit status for a message: `QEMU status 3`, or why there is none.
pub fn describe_status(status: Option<i32>) -> String {
    match status {
        Some(status) => format!("QEMU status {status}"),
        None => "no QEMU status (QEMU was stopped or killed)".to_string(),
    }
}

/// QEMU's version as `qemu --version` says it (`7.2.19`), for a profile's context;
/// `None` when it does not say.
pub fn qemu_version(qemu: &Path) -> Option<String> {
    let output = Command::new(qemu)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().next()?;
    let version = line.split("version ").nth(1)?.split_whitespace().next()?;
    Some(version.to_string())
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
