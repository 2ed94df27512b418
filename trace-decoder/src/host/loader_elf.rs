//! Finding the loader ELF a stream needs, and reading its defmt table with an error
//! that says what is wrong with an unusable one (missing, not an ELF, stripped, not
//! a rusty-loader, built without tracing) and what to use instead.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use rusty_loader::wire::LoaderEvent;

use crate::decode::build_id::BUILD_ID_SYMBOL;
use crate::decode::stream::{Demux, Piece};
use crate::decode::TraceTable;

/// Finds `target/x86_64/{release,debug}/rusty-loader.elf` in `here` or the nearest
/// parent that has one, newest first (a stream names the one it needs: see
/// [`BuildMatch`]). The paths are relative to `here` when they lie below it, which
/// reads better.
pub fn find_loader_elfs(here: &Path) -> Result<Vec<PathBuf>> {
    for dir in here.ancestors() {
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = ["release", "debug"]
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
            .collect();
        if !found.is_empty() {
            found.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
            return Ok(found
                .into_iter()
                .map(|(_, path)| {
                    path.strip_prefix(here)
                        .map(Path::to_path_buf)
                        .unwrap_or(path)
                })
                .collect());
        }
    }
    bail!(
        "no loader ELF given and none found: no target/x86_64/{{release,debug}}/rusty-loader.elf in {} or its parents; build one with `cargo xtask build`, or pass --elf <path>",
        here.display()
    )
}

/// Which of several loader tables a stream comes from: the one whose build identity
/// the stream's first frame, its `LoaderStart`, carries. Fed the stream's first
/// bytes until that frame is complete.
pub struct BuildMatch<'t> {
    tables: &'t [TraceTable],
    demux: Demux,
}

impl<'t> BuildMatch<'t> {
    pub fn new(tables: &'t [TraceTable]) -> Self {
        BuildMatch {
            tables,
            demux: Demux::new(),
        }
    }

    /// Takes the next bytes of the stream. Returns `None` while the first frame is
    /// incomplete; then `Some(Some(index))` of the table that decodes it as a
    /// `LoaderStart` with the table's own build, or `Some(None)` when no table does
    /// (a stream that starts mid-boot, or from a build not among them).
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Option<usize>> {
        let mut decided = None;
        let tables = self.tables;
        self.demux.feed(bytes, &mut |piece| {
            if decided.is_some() {
                return;
            }
            decided = match piece {
                Piece::Text(_) => None,
                Piece::Oversized(_) => Some(None),
                Piece::Frame(frame) => Some(tables.iter().position(|table| {
                    matches!(
                        table.frame_decoder().decode(&frame).map(|e| e.kind),
                        Ok(LoaderEvent::LoaderStart { build, .. }) if u64::from(build) == table.build_id()
                    )
                })),
            };
        });
        decided
    }
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

/// The loader image `[start, end)` of a loader ELF (traced or not), from its
/// `__loader_start` and `__loader_end` symbols.
pub fn loader_image(path: &Path) -> Result<(u64, u64)> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| anyhow!("cannot read the loader ELF {shown}: {e}"))?;
    crate::decode::trace_table::loader_image(&bytes)
        .ok_or_else(|| anyhow!("{shown} has no __loader_start and __loader_end symbols"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/recordings/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn the_stream_names_its_table() {
        let elf = recorded("rusty-loader.elf");
        let table = || crate::decode::table::Table::from_elf(&elf).unwrap();
        let ours = TraceTable::from_elf(&elf).unwrap().build_id() as u32;
        // Another build: the same table under another identity.
        let tables = [
            TraceTable::new(table(), ours ^ 0x100).unwrap(),
            TraceTable::new(table(), ours).unwrap(),
        ];
        let stream = recorded("hello-dyn-pc.bin");
        for (tables, expected) in [(&tables[..], Some(1)), (&tables[..1], None)] {
            let mut choice = BuildMatch::new(tables);
            // Byte by byte: undecided until the first frame is complete.
            let decided = stream
                .iter()
                .find_map(|byte| choice.feed(std::slice::from_ref(byte)));
            assert_eq!(decided, Some(expected));
        }
        let mut text = BuildMatch::new(&tables);
        assert_eq!(text.feed(b"text without frames"), None);
        assert_eq!(text.feed(&stream), Some(Some(1)));
    }
}
