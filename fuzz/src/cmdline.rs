//! The `cmdline` target: the loader's reading of the command line against a
//! straightforward reference on `shell_words::split`, which is how Hermit kernels
//! split it; and the device tree that carries the line to kernels 0.11+.
//!
//! Input: four bytes of TSC frequency in kHz, then the command line (UTF-8, invalid
//! bytes replaced).

use rusty_loader::cmdline::{self, KernelFrequency, Shape};
use rusty_loader::fdt;
use rusty_loader::memory::Region;

use super::fdt_reader;
use super::input::{Choices, Input};

/// What a Hermit kernel of 0.6–0.10 takes for `-freq`: it splits the line with
/// shell rules, skips its path (the first word, when the line has one: Multiboot),
/// reads kernel arguments up to `--`, and a `-freq` takes the next word as a `u16`
/// of MHz, the last one winning.
pub fn reference_frequency(text: &str, shape: Shape) -> KernelFrequency {
    let Ok(words) = shell_words::split(text) else {
        return KernelFrequency::Unreadable;
    };
    let mut found = KernelFrequency::Absent;
    let path_words = usize::from(shape == Shape::FileNameFirst);
    let mut arguments = words.iter().skip(path_words);
    while let Some(word) = arguments.next() {
        if word == "--" {
            break;
        }
        if word == "-freq" {
            found = KernelFrequency::Given(arguments.next().and_then(|mhz| mhz.parse().ok()));
        }
    }
    found
}

/// The memory map the device tree is built with.
const RAM: [Region; 2] = [Region::new(0, 0x9fc00), Region::new(0x10_0000, 0x400_0000)];

/// Runs every check on one input; panics on the first that fails.
pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    let khz = input.u32();
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    check_line(&text, khz);
}

/// The checks on one command line and frequency, read as each entry protocol
/// hands it over.
pub fn check_line(text: &str, khz: u32) {
    for shape in [Shape::FileNameFirst, Shape::ArgumentsOnly] {
        check_shape(text, khz, shape);
    }
    check_loader_options(text);
    check_device_tree(text, khz);
}

/// The checks on one command line of one shape.
fn check_shape(text: &str, khz: u32, shape: Shape) {
    let reference = reference_frequency(text, shape);
    assert_eq!(
        cmdline::kernel_frequency(text, shape),
        reference,
        "-freq of {text:?} ({shape:?})"
    );
    let usable = match reference {
        KernelFrequency::Given(Some(mhz)) if mhz > 0 => Some(mhz),
        _ => None,
    };
    assert_eq!(
        cmdline::freq_mhz(text, shape),
        usable,
        "{text:?} ({shape:?})"
    );

    check_insertion(text, khz, shape, reference);

    let split = cmdline::split(text, shape);
    for at in [split.kernel_args_at, split.app_args_at]
        .into_iter()
        .flatten()
    {
        assert!(
            text.is_char_boundary(at) && at < text.len(),
            "{split:?} of {text:?}"
        );
    }
    if let (Some(kernel), Some(app)) = (split.kernel_args_at, split.app_args_at) {
        assert!(kernel < app, "{split:?} of {text:?}");
    }
}

/// The loader's options, read as a module string.
fn check_loader_options(text: &str) {
    // The loader's options, read as a module string (words between delimiters, the
    // first the file name). A refusal leaks the unknown word on purpose (its message
    // outlives the Multiboot information, and the boot ends there), which the leak
    // sanitizer would report: only lines without unknown words are read here, the
    // refusals are unit-tested.
    let options: Vec<&str> = text
        .split([' ', '\t', '\n'])
        .filter(|w| !w.is_empty())
        .skip(1)
        .collect();
    if options.iter().all(|&w| w == cmdline::LOADER_OPTIONS) {
        let read = cmdline::loader_options(text);
        assert_eq!(
            read.map(|o| o.keep_command_line),
            Ok(!options.is_empty()),
            "{text:?}"
        );
    }
}

/// `insert_frequency` against what the kernel will read from the line it makes.
fn check_insertion(text: &str, khz: u32, shape: Shape, reference: KernelFrequency) {
    let inserted = cmdline::insert_frequency(text, khz, shape);
    let mhz = u16::try_from((u64::from(khz) + 500) / 1000)
        .ok()
        .filter(|&m| m > 0);
    let words = shell_words::split(text).ok();
    // Inserting is right when the user gave no -freq, the frequency makes a valid
    // one, and (Multiboot) there is a file name to insert it after (a kernel reads
    // the first word as its path).
    let insertable = reference == KernelFrequency::Absent
        && mhz.is_some()
        && words
            .as_ref()
            .is_some_and(|w| shape == Shape::ArgumentsOnly || !w.is_empty());
    let Some(inserted) = inserted else {
        // Leaving the line alone is always safe; it is wrong only where the kernel
        // would then measure the frequency although it could be told. The one line
        // that cannot take an insertion is a single word that text appended to
        // would join (it ends in a backslash).
        let single = words.as_ref().is_some_and(|w| w.len() == 1);
        let appended = shell_words::split(&format!("{text} x")).ok();
        let joins = words
            .as_ref()
            .map(|w| [w.as_slice(), &["x".to_string()]].concat())
            != appended;
        assert!(
            !insertable || (single && joins),
            "no -freq inserted into {text:?} for {khz} kHz"
        );
        return;
    };
    assert!(insertable, "-freq inserted into {text:?}: {inserted:?}");
    let mhz = mhz.unwrap();
    match shape {
        Shape::FileNameFirst => assert_eq!(inserted.inserted, format!(" -freq {mhz}")),
        Shape::ArgumentsOnly => assert_eq!(
            inserted.inserted.trim_end(),
            format!("-freq {mhz}"),
            "{text:?}"
        ),
    }
    // Only an insertion: the rest of the line is unchanged.
    assert_eq!(
        format!(
            "{}{}{}",
            &text[..inserted.at],
            inserted.inserted,
            &text[inserted.at..]
        ),
        inserted.text
    );
    // The kernel reads its path (if the line has one), then -freq, then everything
    // it read before.
    let mut expected = words.unwrap();
    let after = usize::from(shape == Shape::FileNameFirst);
    expected.splice(after..after, ["-freq".to_string(), mhz.to_string()]);
    assert_eq!(
        shell_words::split(&inserted.text).ok(),
        Some(expected),
        "{text:?} became {:?}",
        inserted.text
    );
    assert_eq!(
        cmdline::kernel_frequency(&inserted.text, shape),
        KernelFrequency::Given(Some(mhz))
    );
}

/// The device tree carries the line unchanged, the RAM and the frequency.
fn check_device_tree(text: &str, khz: u32) {
    let tsc = (khz > 0).then_some(khz);
    let blob = match fdt::build_fdt(&RAM, text, tsc, None) {
        Ok(blob) => blob,
        Err(error) => {
            assert!(text.contains('\0'), "build_fdt refused {text:?}: {error:?}");
            return;
        }
    };
    assert!(!text.contains('\0'), "a NUL in bootargs: {text:?}");
    let properties = fdt_reader::properties(&blob).unwrap_or_else(|e| panic!("FDT: {e}"));
    let bootargs = fdt_reader::property(&properties, "/chosen", "bootargs");
    assert_eq!(bootargs, Some([text.as_bytes(), b"\0"].concat().as_slice()));
    let khz_property = fdt_reader::property(&properties, "/hermit,tsc", "khz");
    assert_eq!(
        khz_property,
        tsc.map(|k| k.to_be_bytes()).as_ref().map(|b| b.as_slice())
    );
    let memory_nodes = properties
        .iter()
        .filter(|p| p.name == "reg" && p.node.starts_with("/memory@"))
        .count();
    assert_eq!(memory_nodes, RAM.len());
}

/// Seed inputs: command lines of the kinds QEMU passes.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    [
        ("plain", 2_800_000, "/x/rusty-loader -- app"),
        (
            "given",
            1_000_000,
            "/x/rusty-loader -freq 2800 -ip 10.0.5.3 -- a b",
        ),
        (
            "quoted",
            2_000_000,
            "'/x/my loader' -ip \"10.0.5.3\" -- 'a b'",
        ),
        ("comment", 3_000_000, "loader # -freq 5\n-- x"),
        ("empty", 2_000_000, ""),
    ]
    .into_iter()
    .map(|(name, khz, text)| {
        let mut choices = Choices::default();
        choices.u32(khz).raw(text.as_bytes());
        (name, choices.bytes)
    })
    .collect()
}
