//! Boot profiles on the host: a baseline read from its file.

use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::report::profile::Baseline;

impl Baseline {
    /// Reads a profile file as a baseline, naming the file in errors.
    pub fn read(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read the baseline {}: {e}", path.display()))?;
        Baseline::parse(&text)
            .with_context(|| format!("{} is not a usable baseline", path.display()))
    }
}
