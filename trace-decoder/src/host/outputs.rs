//! Writing what the command lines produce to files (the report as JSON, Chrome trace
//! and SVG, a profile, a raw stream), each error naming what could not be written
//! and where.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use crate::report::Report;

/// Writes `contents` to `path`; `what` names it in the error ("the SVG timeline").
pub fn write_file(path: &Path, what: &str, contents: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, contents)
        .map_err(|e| anyhow!("cannot write {what} to {}: {e}", path.display()))
}

/// The files a report goes to besides the terminal, each optional.
#[derive(Clone, Debug, Default)]
pub struct ReportFiles {
    /// The report as JSON (docs/report-schema.json).
    pub json: Option<PathBuf>,
    /// The timeline in Chrome's trace event format.
    pub chrome_trace: Option<PathBuf>,
    /// The timeline and memory layout as an SVG picture.
    pub svg: Option<PathBuf>,
}

impl ReportFiles {
    /// Whether any file is asked for.
    pub fn any(&self) -> bool {
        self.json.is_some() || self.chrome_trace.is_some() || self.svg.is_some()
    }

    /// Writes every file asked for; stops at the first that cannot be written.
    /// Returns the files written, in order, for the command lines to confirm.
    pub fn write(&self, report: &Report) -> Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        if let Some(path) = &self.json {
            write_file(path, "the JSON report", report.to_json())?;
            written.push(path.clone());
        }
        if let Some(path) = &self.chrome_trace {
            write_file(path, "the Chrome trace", report.to_chrome_trace())?;
            written.push(path.clone());
        }
        if let Some(path) = &self.svg {
            write_file(path, "the SVG timeline", report.to_svg())?;
            written.push(path.clone());
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::BootRecord;

    #[test]
    fn writes_each_file_asked_for_and_names_the_one_that_fails() {
        let dir = tempfile::tempdir().unwrap();
        let report = Report::build(&BootRecord::default());
        let files = ReportFiles {
            json: Some(dir.path().join("report.json")),
            chrome_trace: None,
            svg: Some(dir.path().join("boot.svg")),
        };
        assert!(files.any());
        assert_eq!(
            files.write(&report).unwrap(),
            [dir.path().join("report.json"), dir.path().join("boot.svg")]
        );
        assert!(dir.path().join("report.json").is_file());
        assert!(!dir.path().join("chrome.json").exists());
        assert!(std::fs::read_to_string(dir.path().join("boot.svg"))
            .unwrap()
            .contains("<svg"));

        let missing = dir.path().join("no/such/dir/boot.svg");
        let error = ReportFiles {
            svg: Some(missing.clone()),
            ..ReportFiles::default()
        }
        .write(&report)
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(&format!(
                "cannot write the SVG timeline to {}: ",
                missing.display()
            )),
            "{error}"
        );
        assert!(!ReportFiles::default().any());
    }
}
