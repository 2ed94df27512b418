//! A loader ELF's defmt table: the `.defmt` symbols, each a JSON record (its tag:
//! a log level, the timestamp, an interned string...) whose value is its index on
//! the wire.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use goblin::elf::Elf;

/// The kind of a table entry (`defmt_info`, `defmt_str`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// A log statement of a level.
    Level(rusty_loader::wire::Level),
    /// The timestamp's format.
    Timestamp,
    /// An interned string (`{=istr}` values, element formats).
    Str,
    /// Anything else (`defmt_write`, `defmt_derived`, ...): a format used inside
    /// others.
    Other,
}

/// One entry of the table.
#[derive(Clone, Debug)]
pub struct Entry {
    pub tag: Tag,
    /// The format string, or the interned string.
    pub string: String,
}

/// The `.defmt` table of a loader ELF.
#[derive(Clone, Debug, Default)]
pub struct Table {
    entries: BTreeMap<u16, Entry>,
    timestamp: Option<String>,
}

impl Table {
    /// Reads the table from the ELF's `.defmt` symbols (each symbol's name is a JSON
    /// record, its value the index on the wire).
    pub fn from_elf(elf_bytes: &[u8]) -> Result<Table> {
        let elf = Elf::parse(elf_bytes).context("not an ELF file")?;
        let section = elf
            .section_headers
            .iter()
            .position(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".defmt"))
            .context("the ELF has no defmt table: not a loader built with tracing")?;
        let mut table = Table::default();
        let mut encoding = None;
        for symbol in elf.syms.iter().filter(|s| s.st_shndx == section) {
            let Some(name) = elf.strtab.get_at(symbol.st_name) else {
                continue;
            };
            if let Some(value) = name.strip_prefix("_defmt_encoding_ = ") {
                encoding = Some(value.to_string());
                continue;
            }
            if name.starts_with("_defmt_version_") {
                continue;
            }
            let Ok(record) = serde_json::from_str::<serde_json::Value>(name) else {
                continue;
            };
            let (Some(tag), Some(data)) = (record["tag"].as_str(), record["data"].as_str()) else {
                continue;
            };
            let Ok(index) = u16::try_from(symbol.st_value) else {
                continue;
            };
            let tag = match tag {
                "defmt_timestamp" => Tag::Timestamp,
                "defmt_str" => Tag::Str,
                other => level(other).map_or(Tag::Other, Tag::Level),
            };
            if tag == Tag::Timestamp {
                table.timestamp = Some(data.to_string());
            }
            table.entries.insert(
                index,
                Entry {
                    tag,
                    string: data.to_string(),
                },
            );
        }
        if table.entries.is_empty() {
            bail!("the .defmt section has no symbols: the ELF was stripped");
        }
        if let Some(encoding) = encoding.filter(|e| e != "rzcobs") {
            bail!("the loader's defmt frames are encoded as {encoding}; this decoder reads rzcobs");
        }
        Ok(table)
    }

    /// A table from entries, for tests that need no ELF.
    pub fn from_entries(timestamp: Option<&str>, entries: &[(u16, Tag, &str)]) -> Table {
        Table {
            entries: entries
                .iter()
                .map(|&(index, tag, string)| {
                    (
                        index,
                        Entry {
                            tag,
                            string: string.to_string(),
                        },
                    )
                })
                .collect(),
            timestamp: timestamp.map(str::to_string),
        }
    }

    /// The entry at `index`.
    pub fn get(&self, index: u16) -> Option<&Entry> {
        self.entries.get(&index)
    }

    /// Every entry with its index, in index order.
    pub fn entries(&self) -> impl Iterator<Item = (u16, &Entry)> {
        self.entries.iter().map(|(&i, e)| (i, e))
    }

    /// The timestamp's format string, if the loader sends one.
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }
}

fn level(tag: &str) -> Option<rusty_loader::wire::Level> {
    use rusty_loader::wire::Level;
    Some(match tag {
        "defmt_error" => Level::Error,
        "defmt_warn" => Level::Warn,
        "defmt_info" => Level::Info,
        "defmt_debug" => Level::Debug,
        "defmt_trace" => Level::Trace,
        _ => return None,
    })
}
