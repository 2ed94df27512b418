//! The loader ELF a stream needs, chosen in one place: finding the candidates
//! (`target/x86_64/*/rusty-loader.elf`, newest first), reading their defmt tables
//! with an error that says what is wrong with an unusable one (missing, not an ELF,
//! stripped, not a rusty-loader, built without tracing) and what to use instead,
//! and [`LoaderElfs`], rusty-trace's choice among them: the one `--elf` gives, or
//! the one whose build the stream's first frame names ([`BuildMatch`]), read live
//! into a [`LiveConsumer`].

use std::fmt::Write as _;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use rusty_loader::wire::LoaderEvent;

use super::consumer::{Console, Consumed, LiveConsumer};
use super::pump::{read_live, Arrival, InputEnd};
use super::Failure;
use crate::decode::build_id::BUILD_ID_SYMBOL;
use crate::decode::stream::{Demux, Piece};
use crate::decode::{BootRecord, Session, TraceStatus, TraceTable};

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

/// The loader ELFs a stream may need, with their tables: the one given with
/// `--elf`, or those found (newest first), among which the stream names its own.
pub struct LoaderElfs {
    paths: Vec<PathBuf>,
    tables: Vec<TraceTable>,
    /// `--elf` chose it: nothing to choose or announce.
    given: bool,
}

/// What [`LoaderElfs::consume`] leaves: the ELF used, how the input ended, and the
/// consumer's results.
pub struct LiveRead<O: io::Write, E: io::Write> {
    /// The index of the ELF (and table) that decoded the stream.
    pub chosen: usize,
    /// The input starts with the ELF magic: it is an ELF file, not a serial stream,
    /// and nothing of it was decoded or shown.
    pub elf_file: bool,
    pub end: InputEnd,
    pub consumed: Consumed<O, E>,
}

impl LoaderElfs {
    /// The given ELF's table, or the tables of the ELFs found. Found ELFs that are
    /// unusable are skipped while one is usable; otherwise the newest one's problem
    /// is the error.
    pub fn load(given: Option<&Path>) -> Result<LoaderElfs, Failure> {
        if let Some(path) = given {
            let table = load_table(path).map_err(Failure::setup)?;
            return Ok(LoaderElfs {
                paths: vec![path.to_path_buf()],
                tables: vec![table],
                given: true,
            });
        }
        let here = std::env::current_dir()
            .map_err(|e| Failure::Setup(format!("cannot read the current directory: {e}")))?;
        let found = find_loader_elfs(&here).map_err(Failure::setup)?;
        let mut elfs = LoaderElfs {
            paths: Vec::new(),
            tables: Vec::new(),
            given: false,
        };
        let mut first_error = None;
        for path in found {
            match load_table(&path) {
                Ok(table) => {
                    elfs.paths.push(path);
                    elfs.tables.push(table);
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) if elfs.tables.is_empty() => Err(Failure::setup(error)),
            _ => Ok(elfs),
        }
    }

    /// Reads `reader` live into a consumer showing on `console`. With several ELFs
    /// the stream's first bytes are held until its first frame names its build, and
    /// the ELF of that build decodes it (the newest when none matches).
    pub fn consume<O: io::Write, E: io::Write>(
        &self,
        reader: impl io::Read + Send + 'static,
        console: Console<O, E>,
        exit_status: Option<i32>,
    ) -> LiveRead<O, E> {
        // Host times count from the start of reading, also for held bytes.
        let start = Instant::now();
        let mut matcher = BuildMatch::new(&self.tables);
        let mut held = Vec::new();
        let mut console = Some(console);
        let mut chosen = 0;
        let mut start_consumer = |index: usize, matched: Option<bool>, held: &mut Vec<u8>| {
            chosen = index;
            // `None`: nothing to announce (an ELF file given as the stream).
            if let Some(matched) = matched {
                self.announce(index, matched);
            }
            let console = console.take().expect("the consumer starts once");
            let mut started =
                LiveConsumer::new(Session::with_start(&self.tables[index], start), console);
            let flow = started.take(Arrival::Bytes(held));
            *held = Vec::new();
            (started, flow)
        };
        let mut consumer = None;
        let mut elf_file = false;
        let end = read_live(reader, |arrival| {
            if let Some(consumer) = consumer.as_mut() {
                return LiveConsumer::take(consumer, arrival);
            }
            let decided = match arrival {
                Arrival::Bytes(bytes) => {
                    held.extend_from_slice(bytes);
                    // No serial stream starts with an ELF header (the firmware's
                    // text or the loader's first frame come first): an ELF file
                    // given by mistake is neither decoded nor shown.
                    match starts_as_elf(&held) {
                        Some(true) => {
                            elf_file = true;
                            return ControlFlow::Break(());
                        }
                        None => return ControlFlow::Continue(()),
                        Some(false) => {}
                    }
                    if self.tables.len() == 1 {
                        Some(Some(0))
                    } else {
                        matcher.feed(bytes)
                    }
                }
                // Text is not held back from a live reader: a stream that pauses
                // after text, before its first frame, is decoded with the newest
                // ELF. Before anything arrived (the firmware is still busy) there is
                // nothing to show, and the choice waits.
                Arrival::Stalled if !held.is_empty() => Some(None),
                Arrival::Stalled => None,
                Arrival::CaughtUp => None,
            };
            let Some(choice) = decided else {
                return ControlFlow::Continue(());
            };
            let stalled = matches!(arrival, Arrival::Stalled);
            let (mut started, flow) =
                start_consumer(choice.unwrap_or(0), Some(choice.is_some()), &mut held);
            if stalled {
                let _ = started.take(Arrival::Stalled);
            }
            consumer = Some(started);
            flow
        });
        let consumer = match consumer {
            Some(consumer) => consumer,
            None if elf_file => {
                held.clear();
                start_consumer(0, None, &mut held).0
            }
            None => start_consumer(0, Some(false), &mut held).0,
        };
        LiveRead {
            chosen,
            elf_file,
            end,
            consumed: consumer.finish(exit_status),
        }
    }

    /// Says which ELF was found and used, unless `--elf` gave it.
    fn announce(&self, index: usize, matched: bool) {
        if self.given {
            return;
        }
        let why = if matched && self.tables.len() > 1 {
            format!(
                "its build {:#010x} is the stream's",
                self.tables[index].build_id()
            )
        } else {
            "the newest loader ELF found".to_string()
        };
        eprintln!(
            "rusty-trace: using {} ({why}; --elf chooses another)",
            self.paths[index].display()
        );
    }

    /// Whether the session found a trace; if not, why, as the failure to stop with:
    /// an ELF file given as the stream (`elf_file`) is a usage error.
    pub fn check_found(
        &self,
        chosen: usize,
        elf_file: bool,
        status: TraceStatus,
        record: &BootRecord,
        input: &str,
    ) -> Result<(), Failure> {
        if elf_file {
            let file = if input == "standard input" {
                "FILE"
            } else {
                input
            };
            return Err(Failure::Setup(format!(
                "{input} is an ELF file, not a serial stream; to boot it: cargo xtask trace {file}; to use it for symbols: --elf (the loader's ELF) or --app (the application's)"
            )));
        }
        match status {
            // A few frames decoded by chance among many that did not, none of them a
            // `LoaderStart`: random bytes, not a trace.
            TraceStatus::Decoded { verified: false }
                if record.malformed_frames > record.events.len() =>
            {
                Err(Failure::Input(self.no_trace_message(chosen, record, input)))
            }
            TraceStatus::Decoded { .. } => Ok(()),
            TraceStatus::OtherBuild { stream, elf } => Err(Failure::Input(format!(
                "the trace in {input} comes from another loader build: the stream says build {stream:#010x}, {} is build {elf:#010x}; pass the ELF of the loader that produced it with --elf",
                self.paths[chosen].display()
            ))),
            TraceStatus::NotFound => Err(Failure::Input(self.no_trace_message(chosen, record, input))),
        }
    }

    /// Why no trace was found, with what would help.
    fn no_trace_message(&self, chosen: usize, record: &BootRecord, input: &str) -> String {
        let mut message = format!(
            "no boot trace found in {input} ({} bytes of text passed through; decoded with {}, build {:#010x})",
            record.text_bytes,
            self.paths[chosen].display(),
            self.tables[chosen].build_id()
        );
        let frames = record.frames;
        if frames.candidates > 0 {
            let decoded = frames.candidates.saturating_sub(record.malformed_frames);
            let _ = write!(
                message,
                ": of its {} candidate frames (a frame marker FF 00 up to the next 00), ",
                frames.candidates
            );
            if decoded == 0 {
                message.push_str("none decodes");
            } else {
                let _ = write!(
                    message,
                    "{decoded} decoded as events by chance, none a LoaderStart, and the others do not"
                );
            }
            let _ = write!(
                message,
                " ({} broken encoding, {} naming no log statement of this ELF, {} with arguments that do not fit); random or damaged bytes, or the trace of a loader build whose ELF this is not",
                frames.broken, frames.unknown_index, frames.other
            );
        } else if record.text_bytes > 0 {
            message.push_str(
                ": the loader was built without tracing (--trace-level off), or this is not rusty-loader's serial output",
            );
        } else {
            message.push_str(": the input is empty");
        }
        message
    }
}

/// Whether `bytes`, the start of an input, is the start of an ELF file: `None`
/// while too few bytes arrived to tell.
fn starts_as_elf(bytes: &[u8]) -> Option<bool> {
    const MAGIC: &[u8] = b"\x7fELF";
    let known = bytes.len().min(MAGIC.len());
    if bytes[..known] != MAGIC[..known] {
        Some(false)
    } else if known < MAGIC.len() {
        None
    } else {
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_elf_file_is_told_by_its_first_bytes() {
        assert_eq!(starts_as_elf(b"\x7fELF\x02\x01"), Some(true));
        assert_eq!(starts_as_elf(b"\x7fEL"), None);
        assert_eq!(starts_as_elf(b"\x7fX"), Some(false));
        assert_eq!(starts_as_elf(b"SeaBIOS"), Some(false));
    }

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
