//! Building the bare-metal binaries (the loader and the test kernels) on the host
//! target, following `shared/docs/bare-metal-build.md`: explicit `--target` so the
//! rustflags reach only the target crates, `panic = abort` through the profile
//! environment, and a target directory per flavour so their flags never thrash each
//! other's cache.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::project_root;

/// The only target these machines have; bare-metal code is built for it freestanding.
pub const HOST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Debug or release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
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

/// Where `cargo xtask build` puts the loader: `target/x86_64/<profile>/rusty-loader`
/// and the 64-bit ELF beside it as `rusty-loader.elf`.
pub fn loader_artifacts(profile: Profile) -> LoaderArtifacts {
    let dir = project_root().join("target/x86_64").join(profile.dir_name());
    LoaderArtifacts { image: dir.join("rusty-loader"), elf: dir.join("rusty-loader.elf") }
}

/// Rustflags shared by every freestanding binary.
const FREESTANDING_FLAGS: &[&str] = &[
    "-C target-feature=+crt-static",
    "-C link-arg=-nostartfiles",
    "-C link-arg=-nostdlib",
    "-C link-arg=-Wl,--build-id=none",
];

fn cargo_build(
    sh: &Shell,
    package: &str,
    bins: &[&str],
    profile: Profile,
    target_dir: &Path,
    rustflags: &[&str],
) -> Result<PathBuf> {
    let flags = FREESTANDING_FLAGS.iter().chain(rustflags).copied().collect::<Vec<_>>().join(" ");
    let release = (profile == Profile::Release).then_some("--release");
    let bin_args: Vec<String> = bins.iter().flat_map(|b| ["--bin".to_string(), b.to_string()]).collect();
    let _env = (
        sh.push_env("RUSTFLAGS", flags),
        sh.push_env("CARGO_PROFILE_DEV_PANIC", "abort"),
        sh.push_env("CARGO_PROFILE_RELEASE_PANIC", "abort"),
    );
    cmd!(
        sh,
        "cargo build --quiet -p {package} {bin_args...} --features bare-metal --target {HOST_TARGET} --target-dir {target_dir} {release...}"
    )
    // An outer cargo (e.g. `cargo test` running this) may export encoded flags, which
    // would take precedence over RUSTFLAGS.
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .run()
    .with_context(|| format!("building {package} failed"))?;
    Ok(target_dir.join(HOST_TARGET).join(profile.dir_name()))
}

/// Builds the loader and writes both of its artifacts.
pub fn build_loader(sh: &Shell, profile: Profile) -> Result<LoaderArtifacts> {
    let root = project_root();
    let out = cargo_build(
        sh,
        "rusty-loader",
        &["rusty-loader"],
        profile,
        &root.join("target/bare-metal/loader"),
        &[
            "-C relocation-model=static",
            "-C link-arg=-static",
            "-C link-arg=-no-pie",
            "-C link-arg=-Tlink.ld",
        ],
    )?;
    let artifacts = loader_artifacts(profile);
    let dir = artifacts.image.parent().expect("artifact paths have a parent");
    std::fs::create_dir_all(dir)?;
    std::fs::copy(out.join("rusty-loader"), &artifacts.elf)
        .context("copying the loader ELF")?;
    to_elf32(sh, &artifacts.elf, &artifacts.image)?;
    Ok(artifacts)
}

/// QEMU boots only 32-bit Multiboot ELFs: convert a copy of the 64-bit one.
fn to_elf32(sh: &Shell, input: &Path, output: &Path) -> Result<()> {
    let objcopy = find_objcopy(sh)?;
    cmd!(sh, "{objcopy} -O elf32-i386 {input} {output}").run().context("objcopy to elf32-i386")?;
    Ok(())
}

fn find_objcopy(sh: &Shell) -> Result<PathBuf> {
    let sysroot = cmd!(sh, "rustc --print sysroot").read()?;
    let llvm = Path::new(&sysroot).join("lib/rustlib").join(HOST_TARGET).join("bin/rust-objcopy");
    if llvm.exists() {
        return Ok(llvm);
    }
    if cmd!(sh, "objcopy --version").quiet().ignore_stdout().run().is_ok() {
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
    /// ET_EXEC linked at 0x800000.
    pub hello_exec: PathBuf,
}

impl TestKernels {
    pub fn all(&self) -> [&PathBuf; 3] {
        [&self.hello_dyn, &self.legacy_dyn, &self.hello_exec]
    }
}

/// Where the test kernels end up: `target/test-kernels/<profile>/<name>`.
pub fn test_kernel_dir(profile: Profile) -> PathBuf {
    project_root().join("target/test-kernels").join(profile.dir_name())
}

/// Builds the test kernels: the ET_DYN ones as static PIEs, the ET_EXEC one at
/// 0x800000, then marks each as a standalone (Hermit) ELF.
pub fn build_test_kernels(sh: &Shell, profile: Profile) -> Result<TestKernels> {
    let root = project_root();
    let pie = cargo_build(
        sh,
        "test-kernels",
        &["hello-dyn", "legacy-dyn"],
        profile,
        &root.join("target/bare-metal/kernels-pie"),
        &["-C relocation-model=pie"],
    )?;
    let exec = cargo_build(
        sh,
        "test-kernels",
        &["hello-exec"],
        profile,
        &root.join("target/bare-metal/kernels-exec"),
        &[
            "-C relocation-model=static",
            "-C link-arg=-static",
            "-C link-arg=-no-pie",
            "-C link-arg=-Wl,--image-base=0x800000",
        ],
    )?;
    let out = test_kernel_dir(profile);
    std::fs::create_dir_all(&out)?;
    let install = |from: &Path, name: &str| -> Result<PathBuf> {
        let mut bytes = std::fs::read(from.join(name)).with_context(|| format!("reading {name}"))?;
        mark_standalone(&mut bytes)?;
        let path = out.join(name);
        std::fs::write(&path, bytes)?;
        Ok(path)
    };
    Ok(TestKernels {
        hello_dyn: install(&pie, "hello-dyn")?,
        legacy_dyn: install(&pie, "legacy-dyn")?,
        hello_exec: install(&exec, "hello-exec")?,
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
