//! What `cargo xtask run` and `trace` check before they boot, so that a mistake in
//! the command line is a usage error (status 2) with its own message, not a failed
//! boot that looks like the application's: the application file, the files to
//! write, and `-m`: its syntax before the build, then, planned on the host, whether
//! the loader can place the application in that much RAM.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::memory_plan::Guest;

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

/// The guest RAM a QEMU `-m` value asks for, in bytes, read as QEMU 7.2 reads it:
/// `[size=]N[,slots=N][,maxmem=SIZE]`, where the size is a decimal number (with
/// decimals) or `0x` and hex digits, then an optional unit B, K, M, G, T, P or E
/// in either case; without a unit, M ([`parse_size`]). Anything else is refused here, in one line,
/// rather than by QEMU after the build, in three.
pub fn memory_bytes(value: &str) -> Result<u64> {
    let refuse = |why: &str| anyhow::anyhow!("-m {value}: {why}");
    let mut size = None;
    for (index, option) in value.split(',').enumerate() {
        let (key, text) = match option.split_once('=') {
            Some((key, text)) => (key, text),
            // The first option may leave out its key, `size`.
            None if index == 0 => ("size", option),
            None => return Err(refuse(&format!("{option:?} is not KEY=VALUE"))),
        };
        match key {
            "size" => size = Some(parse_size(text).ok_or_else(|| refuse(SIZE_SYNTAX))?),
            "maxmem" => {
                parse_size(text).ok_or_else(|| refuse(SIZE_SYNTAX))?;
            }
            "slots" => {
                text.parse::<u64>()
                    .map_err(|_| refuse("slots takes a whole number"))?;
            }
            _ => {
                return Err(refuse(&format!(
                    "unknown option {key:?} (QEMU's -m knows size, slots and maxmem)"
                )))
            }
        }
    }
    size.ok_or_else(|| refuse("no size given"))
}

/// What QEMU accepts as a size, said once for every refusal.
const SIZE_SYNTAX: &str = "not a size: give a number (decimals allowed, or 0x and hex digits) with an optional unit B, K, M, G, T, P or E, M when there is none, e.g. 64M, 1.5G, 512K";

/// A QEMU `-m` size: a value ending in a digit gets the unit M (QEMU's "legacy
/// suffix-less format"), then it is read as `qemu_strtosz` reads it, where hex
/// digits take in a `B` or `E` (`0x4000000B` is that many bytes) and no unit means
/// bytes. None for anything QEMU refuses, or 2^64 bytes and more.
fn parse_size(text: &str) -> Option<u64> {
    let unit = if text.ends_with(|c: char| c.is_ascii_digit()) {
        1 << 20
    } else {
        1
    };
    // QEMU's number reader skips leading white space, not trailing.
    let text = text.trim_start();
    let (number, suffix) = if let Some(hex) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
        let digits = hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len());
        if digits == 0 {
            return None;
        }
        (
            u64::from_str_radix(&hex[..digits], 16).ok()? as f64,
            &hex[digits..],
        )
    } else {
        let whole = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        if whole == 0 {
            return None;
        }
        let mut end = whole;
        if text[end..].starts_with('.') {
            end += 1;
            end += text[end..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len() - end);
        }
        (text[..end].parse::<f64>().ok()?, &text[end..])
    };
    let scale: u64 = match suffix {
        "" => unit,
        "b" | "B" => 1,
        "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        "t" | "T" => 1 << 40,
        "p" | "P" => 1 << 50,
        "e" | "E" => 1 << 60,
        _ => return None,
    };
    let bytes = number * scale as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Whether `-m` leaves room for this boot: planned on the host as the loader would
/// plan it ([`Guest`]). Too little is refused here with the least size that boots,
/// before QEMU starts; an application the loader refuses for another reason boots
/// all the same, since the loader's refusal is the diagnosis.
pub fn check_memory(value: &str, guest: &Guest) -> Result<()> {
    let bytes = memory_bytes(value)?;
    if guest.plan(bytes).is_ok() {
        return Ok(());
    }
    let (start, end) = (guest.loader.start, guest.loader.end);
    match guest.least_mib() {
        Ok((mib, layout)) if bytes < mib << 20 => {
            let kernel = layout.kernel();
            bail!(
                "-m {value} is too small: this application needs at least -m {mib}M for the loader to place it (its image at [{:#x}, {:#x}), the loader's at [{start:#x}, {end:#x})); the default is 64M",
                kernel.start,
                kernel.end
            )
        }
        Ok(_) => Ok(()),
        // The loader refuses the application whatever the RAM; it says why. QEMU
        // still needs the loader's own image in RAM to get that far.
        Err(_) if bytes < end => {
            let at_least = end.div_ceil(1 << 20);
            bail!(
                "-m {value} is too small: QEMU loads the loader itself at [{start:#x}, {end:#x}), and the machine's RAM would end before that; give at least -m {at_least}M (an application needs more; the default is 64M)"
            )
        }
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_read_as_qemu_reads_them() {
        let ok = |value: &str| memory_bytes(value).unwrap();
        assert_eq!(ok("64M"), 64 << 20);
        assert_eq!(ok("64"), 64 << 20);
        assert_eq!(ok("1K"), 1024);
        assert_eq!(ok("1k"), 1024);
        assert_eq!(ok("1.5G"), 3 << 29);
        // Not ending in a digit: bytes, as QEMU reads it.
        assert_eq!(ok("5."), 5);
        assert_eq!(ok(" 64m"), 64 << 20);
        assert_eq!(ok("0x4000000B"), 0x4000_000b);
        assert_eq!(ok("0x4000000b"), 0x4000_000b);
        assert_eq!(ok("0x40"), 64 << 20);
        assert_eq!(ok("size=2G,slots=2,maxmem=4G"), 2 << 30);
        assert_eq!(ok("4096B"), 4096);
        assert_eq!(ok("4096b"), 4096);
        assert_eq!(ok("1E"), 1 << 60);
        // What QEMU 7.2 refuses, each checked against it by hand.
        for bad in [
            "64Q", "64MB", "64KiB", "64M ", "-1", "1e3", ".5G", "", "lots", "0x", "16E",
        ] {
            let error = memory_bytes(bad).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("-m {bad}: not a size: give a number")),
                "{bad}: {error}"
            );
        }
        let error = memory_bytes("size=64M,foo=1").unwrap_err().to_string();
        assert_eq!(
            error,
            "-m size=64M,foo=1: unknown option \"foo\" (QEMU's -m knows size, slots and maxmem)"
        );
        assert!(memory_bytes("64M,2").is_err());
        assert!(memory_bytes("size=64M,slots=x").is_err());
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
