//! Finding the loader ELF a stream needs, and reading its defmt table with an error
//! that says what is wrong with an unusable one (missing, not an ELF, stripped, not
//! a rusty-loader, built without tracing) and what to use instead.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::build_id::BUILD_ID_SYMBOL;
use crate::decode::TraceTable;

/// Finds `target/x86_64/{release,debug}/rusty-loader.elf` in `here` or the nearest
/// parent that has one, and picks the newer of the two. The path is relative to
/// `here` when it lies below it, which reads better.
pub fn find_loader_elf(here: &Path) -> Result<PathBuf> {
    for dir in here.ancestors() {
        let newest = ["release", "debug"]
            .iter()
            .map(|profile| {
                dir.join("target/x86_64")
                    .join(profile)
                    .join("rusty-loader.elf")
            })
            .filter_map(|path| {
                let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
                Some((modified, path))
            })
            .max_by_key(|(modified, _)| *modified);
        if let Some((_, path)) = newest {
            return Ok(path
                .strip_prefix(here)
                .map(Path::to_path_buf)
                .unwrap_or(path));
        }
    }
    bail!(
        "no loader ELF given and none found: no target/x86_64/{{release,debug}}/rusty-loader.elf in {} or its parents; build one with `cargo xtask build`, or pass --elf <path>",
        here.display()
    )
}

/// Reads the loader ELF's defmt table, explaining every way an ELF can be unusable.
pub fn load_table(path: &Path) -> Result<TraceTable> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| anyhow!("cannot read the loader ELF {shown}: {e}"))?;
    if !bytes.starts_with(b"\x7fELF") {
        bail!(
            "{shown} is not an ELF file: pass the loader ELF, target/x86_64/<profile>/rusty-loader.elf"
        );
    }
    let elf = goblin::elf::Elf::parse(&bytes)
        .map_err(|e| anyhow!("{shown} is not a readable ELF file: {e}"))?;
    let defmt = elf
        .section_headers
        .iter()
        .position(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".defmt"));
    let has_symbol = |name: &str| {
        elf.syms
            .iter()
            .any(|s| elf.strtab.get_at(s.st_name) == Some(name))
    };
    let defmt_symbols = defmt.map_or(0, |index| {
        elf.syms.iter().filter(|s| s.st_shndx == index).count()
    });
    if defmt.is_some() && defmt_symbols == 0 {
        bail!(
            "{shown} is stripped: its defmt table (.defmt) is there but the symbols that name its entries are gone; use the unstripped target/x86_64/<profile>/rusty-loader.elf that `cargo xtask build` writes"
        );
    }
    if !has_symbol(BUILD_ID_SYMBOL) {
        if elf.syms.is_empty() {
            bail!("{shown} has no symbols and no defmt table: not an unstripped rusty-loader ELF");
        }
        bail!("{shown} is not a rusty-loader ELF (it has no {BUILD_ID_SYMBOL} symbol)");
    }
    if defmt.is_none() {
        bail!(
            "{shown} is a loader built without tracing (--trace-level off): it sends no trace to decode"
        );
    }
    TraceTable::from_elf(&bytes).map_err(|e| anyhow!("{shown}: cannot read its defmt table: {e:#}"))
}
