//! Building the bare-metal binaries (the loader and the test kernels) on the host
//! target, the only one the toolchain has (no `x86_64-unknown-none`, no `rust-src`
//! for `-Zbuild-std`), as freestanding binaries: explicit `--target` so the
//! rustflags reach only the target crates and not build scripts or proc-macros,
//! `panic = abort` through the profile environment, and a target directory per
//! flavour so their flags never thrash each other's cache.
//!
//! This file is the one definition of those flags; the test kernels' `Cargo.toml`
//! and docs point here. It is also `cargo xtask build` ([`BuildArgs`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::project_root;

/// `cargo xtask build`: the options.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// Optimised build (what users time).
    #[arg(long)]
    release: bool,
    /// Trace verbosity compiled into the loader (`off`: no trace, only the
    /// fatal-error line).
    #[arg(long, value_enum, default_value = "info")]
    trace_level: TraceLevel,
}

impl BuildArgs {
    /// `cargo xtask build`: builds the loader and the test kernels, and says where
    /// they are.
    pub fn run(self, sh: &Shell) -> Result<ExitCode> {
        let profile = Profile::from_release(self.release);
        let loader = build_loader(sh, profile, self.trace_level)?;
        let kernels = build_test_kernels(sh, profile)?;
        println!("loader:       {}", loader.image.display());
        println!("loader (ELF): {}", loader.elf.display());
        for kernel in kernels.all() {
            println!("test kernel:  {}", kernel.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The only target these machines have; bare-metal code is built for it freestanding.
pub const HOST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Debug or release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    /// The profile a `--release` flag chooses.
    pub fn from_release(release: bool) -> Profile {
        if release {
            Profile::Release
        } else {
            Profile::Debug
        }
    }

    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// How much the loader traces: a defmt level (`DEFMT_LOG`), or no tracing at all
/// (only the fatal-error text line; for overhead comparisons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl TraceLevel {
    /// The `DEFMT_LOG` value of this level (`off` builds without defmt).
    pub fn defmt_log(self) -> &'static str {
        match self {
            TraceLevel::Off | TraceLevel::Error => "error",
            TraceLevel::Warn => "warn",
            TraceLevel::Info => "info",
            TraceLevel::Debug => "debug",
            TraceLevel::Trace => "trace",
        }
    }
}

/// The loader's build outputs.
#[derive(Clone, Debug)]
pub struct LoaderArtifacts {
    /// The 32-bit ELF that QEMU boots with `-kernel`.
    pub image: PathBuf,
    /// The unstripped 64-bit ELF with symbols, debug info and the defmt table.
    pub elf: PathBuf,
}

impl LoaderArtifacts {
    /// The EFI application beside the image (`rusty-loader.efi`): the EFI stub
    /// carrying the loader image (see `efi_image.rs`).
    pub fn efi(&self) -> PathBuf {
        self.image.with_extension("efi")
    }
}

/// Where `cargo xtask build` puts the loader: `target/x86_64/<profile>/rusty-loader`
/// and the 64-bit ELF beside it as `rusty-loader.elf`.
/// The build without tracing goes beside it as `rusty-loader-notrace(.elf)`.
pub fn loader_artifacts(profile: Profile, trace: TraceLevel) -> LoaderArtifacts {
    let dir = project_root()
        .join("target/x86_64")
        .join(profile.dir_name());
    let name = if trace == TraceLevel::Off {
        "rusty-loader-notrace"
    } else {
        "rusty-loader"
    };
    LoaderArtifacts {
        image: dir.join(name),
        elf: dir.join(format!("{name}.elf")),
    }
}

/// Where `cargo xtask run --inject` puts the loader built with fault injection (the
/// feature `faults`, traced at the default level): beside the others, as
/// `rusty-loader-faults(.elf)`.
pub fn fault_loader_artifacts(profile: Profile) -> LoaderArtifacts {
    let normal = loader_artifacts(profile, TraceLevel::Info);
    LoaderArtifacts {
        image: normal.image.with_file_name("rusty-loader-faults"),
        elf: normal.elf.with_file_name("rusty-loader-faults.elf"),
    }
}

/// Where the tests keep the debug loader built at another trace level than `info`
/// and `off` (`error`, `debug`), beside the default one.
pub fn level_artifacts(level: TraceLevel) -> LoaderArtifacts {
    let dir = project_root()
        .join("target/x86_64/debug/levels")
        .join(level.defmt_log());
    LoaderArtifacts {
        image: dir.join("rusty-loader"),
        elf: dir.join("rusty-loader.elf"),
    }
}

/// Rustflags shared by every freestanding binary.
pub(crate) const FREESTANDING_FLAGS: &[&str] = &[
    "-C target-feature=+crt-static",
    "-C link-arg=-nostartfiles",
    "-C link-arg=-nostdlib",
    "-C link-arg=-Wl,--build-id=none",
];

/// The EFI stub's flags on top of the freestanding ones (see `efi_image.rs`): a
/// static PIE (its only relocations are `R_X86_64_RELATIVE`, which become PE base
/// relocations), each segment on pages of its own (PE sections are page aligned),
/// RELRO folded into the data (one section fewer: four fit before the Linux
/// header), `efi_main` as the entry.
pub(crate) const EFI_STUB_FLAGS: &[&str] = &[
    "-C relocation-model=pie",
    "-C link-arg=-Wl,-z,separate-loadable-segments",
    "-C link-arg=-Wl,-z,norelro",
    "-C link-arg=-Wl,-e,efi_main",
];

/// What cargo does with a bare-metal crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Build,
    /// `cargo clippy -- -D warnings` with the same flags and features.
    Clippy,
}

pub(crate) struct CargoBuild<'a> {
    pub action: Action,
    pub package: &'a str,
    pub bins: &'a [&'a str],
    pub features: &'a str,
    pub profile: Profile,
    pub target_dir: &'a Path,
    pub rustflags: &'a [&'a str],
    pub defmt_log: &'a str,
    /// Settings of the release profile for this build (`CARGO_PROFILE_RELEASE_*`).
    pub release_profile: &'a [(&'a str, &'a str)],
}

/// The loader's release profile: under emulation every distinct piece of code the
/// loader runs is translated first, which costs far more than running it, so the
/// loader is optimised for size and linked as one unit (measured: 15 % fewer
/// translated blocks than `opt-level = 3` without LTO).
const LOADER_RELEASE_PROFILE: &[(&str, &str)] = &[
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s"),
    ("CARGO_PROFILE_RELEASE_LTO", "fat"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
];

pub(crate) fn cargo_build(sh: &Shell, build: CargoBuild) -> Result<PathBuf> {
    let CargoBuild {
        action,
        package,
        bins,
        features,
        profile,
        target_dir,
        rustflags,
        defmt_log,
        release_profile,
    } = build;
    let flags = FREESTANDING_FLAGS
        .iter()
        .chain(rustflags)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let release = (profile == Profile::Release).then_some("--release");
    let bin_args: Vec<String> = bins
        .iter()
        .flat_map(|b| ["--bin".to_string(), b.to_string()])
        .collect();
    let _env = (
        sh.push_env("RUSTFLAGS", flags),
        sh.push_env("CARGO_PROFILE_DEV_PANIC", "abort"),
        sh.push_env("CARGO_PROFILE_RELEASE_PANIC", "abort"),
        sh.push_env("DEFMT_LOG", defmt_log),
    );
    let _profile: Vec<_> = release_profile
        .iter()
        .map(|(key, value)| sh.push_env(key, value))
        .collect();
    let (verb, deny) = match action {
        Action::Build => ("build", None),
        // Every `unsafe` block of the bare-metal code says why it is sound.
        Action::Clippy => (
            "clippy",
            Some([
                "--",
                "-D",
                "warnings",
                "-D",
                "clippy::undocumented_unsafe_blocks",
            ]),
        ),
    };
    let deny = deny.into_iter().flatten();
    // On a terminal cargo shows its progress (a first build takes minutes); into a
    // pipe it says nothing, so that the output keeps only results; nor inside the
    // tests `cargo xtask test` runs, which built everything first.
    let quiet = (!std::io::stderr().is_terminal()
        || std::env::var_os(crate::test::QUIET_BUILDS).is_some())
    .then_some("--quiet");
    cmd!(
        sh,
        "cargo {verb} {quiet...} -p {package} {bin_args...} --features {features} --target {HOST_TARGET} --target-dir {target_dir} {release...} {deny...}"
    )
    // An outer cargo (e.g. `cargo test` running this) may export encoded flags, which
    // would take precedence over RUSTFLAGS.
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .quiet()
    .run()
    .with_context(|| format!("cargo {verb} of {package} failed"))?;
    Ok(target_dir.join(HOST_TARGET).join(profile.dir_name()))
}

/// Runs cargo on the loader binary with its flags (and with fault injection, the
/// feature `faults`, when `faults` says so); returns the output directory.
fn cargo_loader(
    sh: &Shell,
    profile: Profile,
    trace: TraceLevel,
    faults: bool,
    action: Action,
) -> Result<PathBuf> {
    let root = project_root();
    let traced = trace != TraceLevel::Off;
    let mut rustflags = vec![
        "-C relocation-model=static",
        "-C link-arg=-static",
        "-C link-arg=-no-pie",
        "-C link-arg=-Tlink.ld",
    ];
    if traced {
        rustflags.push("-C link-arg=-Tdefmt.x");
    }
    cargo_build(
        sh,
        CargoBuild {
            action,
            package: "rusty-loader",
            bins: &["rusty-loader"],
            features: match (traced, faults) {
                (true, false) => "bare-metal,trace",
                (false, false) => "bare-metal",
                (true, true) => "bare-metal,trace,faults",
                (false, true) => "bare-metal,faults",
            },
            profile,
            // One target directory per level (and for fault injection): a build of
            // another variant (tests build several) then does not make the next
            // default build start over.
            target_dir: &root.join(format!(
                "{}{}",
                match trace {
                    TraceLevel::Off => "target/bare-metal/loader-notrace".to_string(),
                    TraceLevel::Info => "target/bare-metal/loader".to_string(),
                    other => format!("target/bare-metal/loader-{}", other.defmt_log()),
                },
                if faults { "-faults" } else { "" }
            )),
            rustflags: &rustflags,
            defmt_log: trace.defmt_log(),
            release_profile: LOADER_RELEASE_PROFILE,
        },
    )
}

/// Builds the loader and writes both of its artifacts. With tracing, the build
/// identity (a hash of the defmt table) is stamped into the ELF before the 32-bit
/// copy is made, so both carry it.
pub fn build_loader(sh: &Shell, profile: Profile, trace: TraceLevel) -> Result<LoaderArtifacts> {
    build_loader_to(sh, profile, trace, loader_artifacts(profile, trace))
}

/// [`build_loader`], with the artifacts written to other paths (the tests build
/// several trace levels side by side).
pub fn build_loader_to(
    sh: &Shell,
    profile: Profile,
    trace: TraceLevel,
    artifacts: LoaderArtifacts,
) -> Result<LoaderArtifacts> {
    write_loader(sh, profile, trace, false, artifacts)
}

/// Builds the traced loader with fault injection (`cargo xtask run --inject`,
/// `xtask/tests/faults.rs`) into [`fault_loader_artifacts`].
pub fn build_fault_loader(sh: &Shell, profile: Profile) -> Result<LoaderArtifacts> {
    write_loader(
        sh,
        profile,
        TraceLevel::Info,
        true,
        fault_loader_artifacts(profile),
    )
}

/// Builds a loader and writes its artifacts.
fn write_loader(
    sh: &Shell,
    profile: Profile,
    trace: TraceLevel,
    faults: bool,
    artifacts: LoaderArtifacts,
) -> Result<LoaderArtifacts> {
    let traced = trace != TraceLevel::Off;
    let out = cargo_loader(sh, profile, trace, faults, Action::Build)?;
    let dir = artifacts
        .image
        .parent()
        .expect("artifact paths have a parent");
    std::fs::create_dir_all(dir)?;
    let mut elf = std::fs::read(out.join("rusty-loader")).context("reading the linked loader")?;
    if traced {
        trace_decoder::decode::build_id::stamp_build_id(&mut elf)
            .context("stamping the build identity")?;
    }
    // Built beside the artifacts and renamed into place: a QEMU, objcopy or decoder
    // of another xtask running at the same time (parallel tests do) reads a whole
    // file, the old one or the new one, never one half written.
    let (elf_part, image_part) = (in_progress(&artifacts.elf), in_progress(&artifacts.image));
    std::fs::write(&elf_part, &elf).context("writing the loader ELF")?;
    to_elf32(sh, &elf_part, &image_part)?;
    crate::efi_image::build_efi(sh, profile, faults, &elf, &artifacts.efi())
        .context("building the EFI application")?;
    std::fs::rename(&elf_part, &artifacts.elf).context("writing the loader ELF")?;
    std::fs::rename(&image_part, &artifacts.image).context("writing the loader image")?;
    Ok(artifacts)
}

/// Where `path` is written before it is renamed into place: beside it, named for
/// this process.
pub(crate) fn in_progress(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_os_string());
    let mut part = std::ffi::OsString::from(".");
    part.push(name);
    part.push(format!(".{}.part", std::process::id()));
    path.with_file_name(part)
}

/// QEMU boots only 32-bit Multiboot ELFs: convert a copy of the 64-bit one (which
/// QEMU boots through PVH) and give the copy the Multiboot header. The copy keeps
/// its symbols but not the debug information nor the unwinding tables (75 KiB
/// instead of 10 MiB); the 64-bit ELF keeps everything for the decoder and debuggers.
fn to_elf32(sh: &Shell, input: &Path, output: &Path) -> Result<()> {
    let objcopy = find_objcopy(sh)?;
    cmd!(
        sh,
        "{objcopy} -O elf32-i386 --strip-debug --remove-section=.eh_frame {input} {output}"
    )
    .quiet()
    .run()
    .context("objcopy to elf32-i386")?;
    let mut image = std::fs::read(output).context("reading the 32-bit loader image")?;
    place_multiboot_header(&mut image).context("placing the Multiboot header")?;
    std::fs::write(output, image).context("writing the 32-bit loader image")?;
    Ok(())
}

/// How far into a file QEMU looks for the Multiboot header (the last place a
/// 48-byte header can start, 4-aligned, in its first 8 KiB).
pub const MULTIBOOT_SEARCH_END: usize = 8192 - 48;

/// Copies the loader's Multiboot header (its `.multiboot` section, which is not
/// loaded: the 64-bit ELF must not show QEMU a Multiboot header in its first 8 KiB)
/// into the 32-bit image's padding between its program headers and its first
/// segment, where QEMU finds it. The padding must hold only zeros.
pub fn place_multiboot_header(image: &mut [u8]) -> Result<()> {
    let elf = goblin::elf::Elf::parse(image).context("parsing the 32-bit image")?;
    let section = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".multiboot"))
        .context("the loader has no .multiboot section")?;
    let (start, size) = (section.sh_offset as usize, section.sh_size as usize);
    let header = image
        .get(start..start + size)
        .context("the .multiboot section lies outside the file")?
        .to_vec();
    let headers_end = elf.header.e_phoff as usize
        + usize::from(elf.header.e_phnum) * usize::from(elf.header.e_phentsize);
    let at = headers_end.next_multiple_of(4);
    let first_segment = elf
        .program_headers
        .iter()
        .filter(|p| p.p_filesz > 0)
        .map(|p| p.p_offset as usize)
        .min()
        .context("the 32-bit image has no segment")?;
    if at + header.len() > first_segment.min(MULTIBOOT_SEARCH_END) {
        bail!(
            "no room for the Multiboot header between the program headers (end {headers_end:#x}) and the first segment ({first_segment:#x})"
        );
    }
    if image[at..at + header.len()].iter().any(|&b| b != 0) {
        bail!("the bytes before the first segment at {at:#x} are not padding");
    }
    image[at..at + header.len()].copy_from_slice(&header);
    Ok(())
}

pub fn find_objcopy(sh: &Shell) -> Result<PathBuf> {
    let sysroot = cmd!(sh, "rustc --print sysroot").read()?;
    let llvm = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(HOST_TARGET)
        .join("bin/rust-objcopy");
    if llvm.exists() {
        return Ok(llvm);
    }
    if cmd!(sh, "objcopy --version")
        .quiet()
        .ignore_stdout()
        .run()
        .is_ok()
    {
        return Ok(PathBuf::from("objcopy"));
    }
    bail!("no objcopy found: install binutils or the llvm-tools rustup component")
}

/// The built test kernels (see `test-kernels/`).
#[derive(Clone, Debug)]
pub struct TestKernels {
    /// Newer generation (ABI tag 0.13), ET_DYN with relocations and TLS; the demo app.
    pub hello_dyn: PathBuf,
    /// Older generation (no ABI tag), ET_DYN.
    pub legacy_dyn: PathBuf,
    /// Entry ABI version 2 (kernel 0.6.0: boot info without device tree), ET_DYN
    /// with TLS.
    pub legacy_v2: PathBuf,
    /// ET_EXEC linked at 0x800000.
    pub hello_exec: PathBuf,
    /// hello-dyn plus the bulk of a real application (576 KiB of data, 2304 more
    /// RELATIVE relocations), checked from inside.
    pub big_dyn: PathBuf,
    /// Older generation, entry version 3, ET_DYN with TLS: finds its TSC frequency
    /// like Hermit 0.6–0.10 (`-freq`, else the PIT, else a guess).
    pub calibrating: PathBuf,
    /// Older generation, ET_DYN: fails on purpose after the hand-over as its first
    /// application argument says (`-- page-fault`, `-- triple-fault`, `-- hang`...).
    pub crashing: PathBuf,
}

impl TestKernels {
    /// The kernels that check the hand-over and exit with success when it is right:
    /// all but `crashing`.
    pub fn checking(&self) -> [&PathBuf; 6] {
        [
            &self.hello_dyn,
            &self.legacy_dyn,
            &self.legacy_v2,
            &self.hello_exec,
            &self.big_dyn,
            &self.calibrating,
        ]
    }

    pub fn all(&self) -> [&PathBuf; 7] {
        [
            &self.hello_dyn,
            &self.legacy_dyn,
            &self.legacy_v2,
            &self.hello_exec,
            &self.big_dyn,
            &self.calibrating,
            &self.crashing,
        ]
    }
}

/// Where the test kernels end up: `target/test-kernels/<profile>/<name>`.
pub fn test_kernel_dir(profile: Profile) -> PathBuf {
    project_root()
        .join("target/test-kernels")
        .join(profile.dir_name())
}

/// Runs cargo on the test kernels, both flavours; returns their output directories.
fn cargo_kernels(sh: &Shell, profile: Profile, action: Action) -> Result<(PathBuf, PathBuf)> {
    let root = project_root();
    let pie = cargo_build(
        sh,
        CargoBuild {
            action,
            package: "test-kernels",
            bins: &[
                "hello-dyn",
                "legacy-dyn",
                "legacy-v2",
                "big-dyn",
                "calibrating",
                "crashing",
            ],
            features: "bare-metal",
            profile,
            target_dir: &root.join("target/bare-metal/kernels-pie"),
            rustflags: &["-C relocation-model=pie"],
            defmt_log: "error",
            release_profile: &[],
        },
    )?;
    let exec = cargo_build(
        sh,
        CargoBuild {
            action,
            package: "test-kernels",
            bins: &["hello-exec"],
            features: "bare-metal",
            profile,
            target_dir: &root.join("target/bare-metal/kernels-exec"),
            rustflags: &[
                "-C relocation-model=static",
                "-C link-arg=-static",
                "-C link-arg=-no-pie",
                "-C link-arg=-Wl,--image-base=0x800000",
            ],
            defmt_log: "error",
            release_profile: &[],
        },
    )?;
    Ok((pie, exec))
}

/// Clippy with `-D warnings` on every bare-metal binary, with the flags and features
/// of its real builds (the host `cargo clippy --workspace` cannot see them).
pub fn lint_bare_metal(sh: &Shell) -> Result<()> {
    for trace in [TraceLevel::Info, TraceLevel::Off] {
        cargo_loader(sh, Profile::Debug, trace, false, Action::Clippy)?;
    }
    cargo_loader(sh, Profile::Debug, TraceLevel::Info, true, Action::Clippy)?;
    crate::efi_image::lint_stub(sh)?;
    cargo_kernels(sh, Profile::Debug, Action::Clippy)?;
    Ok(())
}

/// Builds the test kernels: the ET_DYN ones as static PIEs, the ET_EXEC one at
/// 0x800000, then marks each as a standalone (Hermit) ELF.
pub fn build_test_kernels(sh: &Shell, profile: Profile) -> Result<TestKernels> {
    let (pie, exec) = cargo_kernels(sh, profile, Action::Build)?;
    let out = test_kernel_dir(profile);
    std::fs::create_dir_all(&out)?;
    let install = |from: &Path, name: &str| -> Result<PathBuf> {
        let mut bytes =
            std::fs::read(from.join(name)).with_context(|| format!("reading {name}"))?;
        mark_standalone(&mut bytes)?;
        let path = out.join(name);
        // As the loader: whole files only, for a QEMU of another xtask.
        let part = in_progress(&path);
        std::fs::write(&part, bytes)?;
        std::fs::rename(&part, &path)?;
        Ok(path)
    };
    Ok(TestKernels {
        hello_dyn: install(&pie, "hello-dyn")?,
        legacy_dyn: install(&pie, "legacy-dyn")?,
        legacy_v2: install(&pie, "legacy-v2")?,
        hello_exec: install(&exec, "hello-exec")?,
        big_dyn: install(&pie, "big-dyn")?,
        calibrating: install(&pie, "calibrating")?,
        crashing: install(&pie, "crashing")?,
    })
}

/// ELF `EI_OSABI` byte and the value real Hermit apps carry (standalone).
const EI_OSABI: usize = 7;
const ELFOSABI_STANDALONE: u8 = 0xff;

/// No linker flag sets EI_OSABI, so patch it after linking, as real Hermit builds do.
pub fn mark_standalone(elf: &mut [u8]) -> Result<()> {
    if elf.len() <= EI_OSABI || &elf[..4] != b"\x7fELF" {
        bail!("not an ELF file");
    }
    elf[EI_OSABI] = ELFOSABI_STANDALONE;
    Ok(())
}
