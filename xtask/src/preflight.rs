//! What `cargo xtask run` and `trace` check before they boot, so that a mistake in
//! the command line is a usage error (status 2) with its own message, not a failed
//! boot that looks like the application's: the application file, the files to
//! write, and `-m` against the memory the loader itself occupies.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The application file must exist and be a readable regular file. Whether it is a
/// Hermit application is the loader's to say: it boots and explains its refusal.
pub fn check_app(app: &Path) -> Result<()> {
    let shown = app.display();
    let metadata =
        std::fs::metadata(app).with_context(|| format!("cannot read the application {shown}"))?;
    if metadata.is_dir() {
        bail!("the application {shown} is a directory: give the Hermit application's ELF file");
    }
    std::fs::File::open(app).with_context(|| format!("cannot read the application {shown}"))?;
    Ok(())
}

/// A file to write (`flag` names the option) must be writable where it is asked
/// for: its directory must exist, and it must not be a directory itself. Checked
/// before the boot, so that a typo does not cost a boot and lose its results.
pub fn check_output(flag: &str, path: &Path) -> Result<()> {
    let shown = path.display();
    if path.is_dir() {
        bail!("{flag} {shown}: it is a directory, not a file");
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "{flag} {shown}: the directory {} does not exist",
            dir.display()
        );
    }
    Ok(())
}

/// The guest RAM a QEMU `-m` value asks for, in bytes: `[size=]N[unit][,...]`,
/// where N may have decimals and the unit is B, K, M (the default), G or T, in either
/// case. None for anything else, which is then left to QEMU to judge.
pub fn memory_bytes(value: &str) -> Option<u64> {
    let size = value.split(',').next()?;
    let size = size.strip_prefix("size=").unwrap_or(size).trim();
    let digits = size
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(size.len());
    let (number, unit) = size.split_at(digits);
    let number: f64 = number.parse().ok()?;
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "B" => 1,
        "K" => 1 << 10,
        "" | "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    let bytes = number * scale as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// QEMU loads the loader at its addresses (`loader` is its image, from 1 MiB up): a
/// machine whose RAM ends inside it would run into memory that is not there, and
/// the boot would hang or reset before the loader could say anything.
pub fn check_memory(value: &str, loader: (u64, u64)) -> Result<()> {
    let Some(bytes) = memory_bytes(value) else {
        return Ok(());
    };
    let (start, end) = loader;
    if bytes < end {
        let at_least = end.div_ceil(1 << 20);
        bail!(
            "-m {value} is too small: QEMU loads the loader itself at [{start:#x}, {end:#x}), and the machine's RAM would end before that; give at least -m {at_least}M (an application needs more; the default is 64M)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_read_as_qemu_reads_them() {
        assert_eq!(memory_bytes("64M"), Some(64 << 20));
        assert_eq!(memory_bytes("64"), Some(64 << 20));
        assert_eq!(memory_bytes("1K"), Some(1024));
        assert_eq!(memory_bytes("1k"), Some(1024));
        assert_eq!(memory_bytes("1.5G"), Some(3 << 29));
        assert_eq!(memory_bytes("size=2G,slots=2,maxmem=4G"), Some(2 << 30));
        assert_eq!(memory_bytes("4096B"), Some(4096));
        assert_eq!(memory_bytes("lots"), None);
        assert_eq!(memory_bytes("1X"), None);
    }

    #[test]
    fn memory_below_the_loader_is_refused() {
        let loader = (0x10_0000, 0x24_d000);
        for value in ["1K", "1M", "2M", "2.2M"] {
            let error = check_memory(value, loader).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!(
                    "-m {value} is too small: QEMU loads the loader itself at [0x100000, 0x24d000)"
                )),
                "{error}"
            );
            assert!(error.contains("give at least -m 3M"), "{error}");
        }
        for value in ["3M", "64M", "1G", "unknown"] {
            assert!(check_memory(value, loader).is_ok(), "{value}");
        }
    }

    #[test]
    fn files_are_checked_before_the_boot() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app.elf");
        std::fs::write(&app, b"\x7fELF").unwrap();
        assert!(check_app(&app).is_ok());
        let missing = dir.path().join("missing.elf");
        let error = format!("{:#}", check_app(&missing).unwrap_err());
        assert!(
            error.starts_with(&format!(
                "cannot read the application {}: ",
                missing.display()
            )),
            "{error}"
        );
        let error = check_app(dir.path()).unwrap_err().to_string();
        assert!(
            error.ends_with("is a directory: give the Hermit application's ELF file"),
            "{error}"
        );

        assert!(check_output("--json", &dir.path().join("report.json")).is_ok());
        assert!(check_output("--json", Path::new("report.json")).is_ok());
        let nowhere = dir.path().join("no/such/dir/x.json");
        let error = check_output("--json", &nowhere).unwrap_err().to_string();
        assert!(error.ends_with("/no/such/dir does not exist"), "{error}");
        let error = check_output("--svg", dir.path()).unwrap_err().to_string();
        assert!(error.ends_with("it is a directory, not a file"), "{error}");
    }
}
