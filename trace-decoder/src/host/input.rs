//! Opening what the command lines read: the stream to decode (a file, or standard
//! input, `-` or nothing), telling a recording from a live stream, and how QEMU
//! ended a recording, kept beside it; and the application's ELF for naming a
//! crash's addresses.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::Failure;
use crate::report::ending::QemuEnd;
use crate::report::profile::RunContext;
use crate::report::symbols::AppSymbols;

/// A stream to decode.
pub struct Input {
    pub reader: Box<dyn Read + Send>,
    /// How messages name it: the path, or `standard input`.
    pub name: String,
    /// A regular file (also as redirected standard input): a recording, whose
    /// arrival times say how fast it was read, not when QEMU sent it.
    pub recorded: bool,
    /// Standard input is a terminal: nothing arrives unless someone types (the
    /// command line says so, instead of waiting silently).
    pub terminal: bool,
}

/// Opens `path`; `None` and `-` are standard input.
pub fn open(path: Option<&Path>) -> Result<Input> {
    let Some(path) = path.filter(|p| *p != Path::new("-")) else {
        return Ok(stdin());
    };
    let cannot = |e: io::Error| anyhow!("cannot read {}: {e}", path.display());
    let file = File::open(path).map_err(cannot)?;
    let metadata = file.metadata().map_err(cannot)?;
    if metadata.is_dir() {
        bail!("cannot read {}: it is a directory", path.display());
    }
    Ok(Input {
        reader: Box::new(file),
        name: path.display().to_string(),
        recorded: metadata.is_file(),
        terminal: false,
    })
}

/// How QEMU ended the recording at `path` (its exit status, or an end without one)
/// and its last error line, from the file beside it with the extension `.status`
/// (what `cargo xtask trace --save` and `cargo xtask record` write, or `echo $? >
/// FILE.status`: [`QemuEnd::from_recorded`]), announced on stderr; `None` when
/// there is no such file (or the input is standard input).
pub fn recorded_end(path: Option<&Path>) -> Result<Option<(QemuEnd, Option<String>)>, Failure> {
    let Some(path) = path.filter(|p| *p != Path::new("-")) else {
        return Ok(None);
    };
    let beside = path.with_extension("status");
    if beside == *path || !beside.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&beside)
        .map_err(|e| Failure::Input(format!("cannot read {}: {e}", beside.display())))?;
    let (end, error) = QemuEnd::from_recorded(&text)
        .map_err(|why| Failure::Input(format!("{} {why}", beside.display())))?;
    let said = match &end {
        QemuEnd::Exited(status) => format!("QEMU status {status}"),
        other => format!("QEMU's end ({})", other.to_recorded(None).trim_end()),
    };
    eprintln!(
        "rusty-trace: {said} from {} (--status overrides it)",
        beside.display()
    );
    Ok(Some((end, error)))
}

/// How the recording at `path` ran, as far as the file beside it says (the
/// `key: value` lines of its `.status` file that `cargo xtask trace --save` writes:
/// [`RunContext::from_recorded`]); nothing is known without one.
pub fn recorded_context(path: Option<&Path>) -> RunContext {
    path.filter(|p| *p != Path::new("-"))
        .map(|path| path.with_extension("status"))
        .filter(|beside| Some(beside.as_path()) != path)
        .and_then(|beside| std::fs::read_to_string(beside).ok())
        .map_or_else(RunContext::default, |text| RunContext::from_recorded(&text))
}

impl AppSymbols {
    /// Reads the application ELF at `path`.
    pub fn read(path: &Path) -> Result<AppSymbols, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        AppSymbols::from_bytes(&bytes, &path.display().to_string())
    }
}

fn stdin() -> Input {
    let stdin = io::stdin();
    // A duplicate of the descriptor tells what standard input is without unsafe code.
    let recorded = stdin
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|file| file.metadata())
        .is_ok_and(|m| m.is_file());
    Input {
        terminal: stdin.is_terminal(),
        reader: Box::new(stdin),
        name: "standard input".to_string(),
        recorded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_a_recording_and_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boot.bin");
        std::fs::write(&path, b"text").unwrap();
        let mut input = open(Some(&path)).unwrap();
        assert!(input.recorded);
        assert_eq!(input.name, path.display().to_string());
        let mut bytes = Vec::new();
        input.reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"text");

        let error = open(Some(dir.path())).err().unwrap().to_string();
        assert!(error.ends_with("it is a directory"), "{error}");
        let missing = dir.path().join("missing.bin");
        let error = open(Some(&missing)).err().unwrap().to_string();
        assert!(
            error.starts_with(&format!("cannot read {}: ", missing.display())),
            "{error}"
        );
        assert_eq!(open(Some(Path::new("-"))).unwrap().name, "standard input");
    }
}
