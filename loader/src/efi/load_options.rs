//! The loaded image's `LoadOptions` as the kernel's command line.
//!
//! OVMF hands a `-kernel` image QEMU's `-append` text as NUL-terminated UCS-2, one
//! character per byte of the text (so UTF-8 arrives as one character per byte:
//! `é` as U+00C3 U+00A9), and appends ` initrd=initrd` when QEMU got an `-initrd`
//! (only `initrd=initrd` without `-append`). A boot manager may pass anything,
//! including binary data (EDK2 marks the boot options it creates by itself with a
//! GUID there). So:
//!
//! - characters up to U+00FF are taken as the bytes of the original text (and read
//!   as UTF-8 when they form it), larger ones as themselves;
//! - options that are not text (an odd length, no NUL terminator, control
//!   characters, unpaired surrogates) are no command line at all, said so by
//!   [`LoadOptions::Binary`];
//! - a last word `initrd=PATH` is taken off: it is the loader's, never the kernel's
//!   (Hermit kernels know no such argument, kernels 0.6–0.10 warn about it), and
//!   its path names the application file where the firmware offers no initrd
//!   through LoadFile2.

use alloc::string::String;
use alloc::vec::Vec;

/// The longest command line the loader takes from `LoadOptions`, in characters.
pub const MAX_CHARACTERS: usize = 4096;

/// What `LoadOptions` held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadOptions {
    /// None (a NULL pointer or 0 bytes).
    Absent,
    /// Not text: ignored.
    Binary,
    /// Text: the command line, and the path of a trailing `initrd=` word.
    Text {
        command_line: String,
        initrd: Option<String>,
    },
}

/// The word OVMF appends, and the prefix of any such word.
const INITRD_WORD: &str = "initrd=";

/// Reads `bytes` (the whole `LoadOptions` buffer).
pub fn decode(bytes: &[u8]) -> LoadOptions {
    if bytes.is_empty() {
        return LoadOptions::Absent;
    }
    if !bytes.len().is_multiple_of(2) {
        return LoadOptions::Binary;
    }
    let all = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
    let Some(length) = all.clone().position(|unit| unit == 0) else {
        // Text is NUL-terminated; a GUID or other binary data need not be.
        return LoadOptions::Binary;
    };
    if length > MAX_CHARACTERS {
        return LoadOptions::Binary;
    }
    let units: Vec<u16> = all.take(length).collect();
    let Some(text) = text_of(&units) else {
        return LoadOptions::Binary;
    };
    let (command_line, initrd) = split_initrd(&text);
    LoadOptions::Text {
        command_line: String::from(command_line),
        initrd: initrd.map(String::from),
    }
}

/// The text the units spell, or `None` when they are not text.
fn text_of(units: &[u16]) -> Option<String> {
    let printable = |c: char| c == '\t' || !c.is_control();
    if units.iter().all(|&u| u <= 0xff) {
        // One character per byte of the original text, as OVMF passes `-append`.
        let bytes: Vec<u8> = units.iter().map(|&u| u as u8).collect();
        if let Ok(text) = core::str::from_utf8(&bytes) {
            return text.chars().all(printable).then(|| String::from(text));
        }
    }
    let text: String = char::decode_utf16(units.iter().copied())
        .collect::<Result<_, _>>()
        .ok()?;
    text.chars().all(printable).then_some(text)
}

/// The command line without a last word `initrd=PATH`, and the path.
fn split_initrd(text: &str) -> (&str, Option<&str>) {
    let trimmed = text.trim_end_matches(' ');
    let word_start = trimmed.rfind(' ').map_or(0, |space| space + 1);
    match trimmed[word_start..].strip_prefix(INITRD_WORD) {
        Some(path) if !path.is_empty() => (trimmed[..word_start].trim_end_matches(' '), Some(path)),
        _ => (text, None),
    }
}

/// The path of the file named `name` in the directory of the image's own file path
/// (a UEFI file path, `\` separated: `\EFI\BOOT\BOOTX64.EFI`, or QEMU's `kernel`).
pub fn sibling_path(image_path: &str, name: &str) -> String {
    let directory = image_path
        .rfind(['\\', '/'])
        .map_or("", |at| &image_path[..=at]);
    let mut path = String::from(directory);
    path.push_str(name);
    path.replace('/', "\\")
}

/// `text` as NUL-terminated UCS-2, for a file name to open; `None` when a character
/// lies outside the basic plane.
pub fn to_ucs2(text: &str) -> Option<Vec<u16>> {
    let mut out = Vec::with_capacity(text.len() + 1);
    for c in text.chars() {
        out.push(
            u16::try_from(u32::from(c))
                .ok()
                .filter(|u| !(0xd800..0xe000).contains(u))?,
        );
    }
    out.push(0);
    Some(out)
}

/// A UCS-2 string (a device path's file name) as text; unpaired surrogates become
/// U+FFFD.
pub fn from_ucs2(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied().take_while(|&u| u != 0))
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ucs2(text: &str) -> Vec<u8> {
        let mut out: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        out.extend_from_slice(&[0, 0]);
        out
    }

    /// What OVMF passes: one character per byte of the `-append` text.
    fn ovmf(append: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = append.iter().flat_map(|&b| [b, 0]).collect();
        out.extend_from_slice(&[0, 0]);
        out
    }

    fn text(command_line: &str, initrd: Option<&str>) -> LoadOptions {
        LoadOptions::Text {
            command_line: command_line.into(),
            initrd: initrd.map(String::from),
        }
    }

    #[test]
    fn takes_off_the_initrd_word_ovmf_appends() {
        assert_eq!(
            decode(&ovmf(b"-freq 2000 -- a b initrd=initrd")),
            text("-freq 2000 -- a b", Some("initrd"))
        );
        assert_eq!(decode(&ovmf(b"initrd=initrd")), text("", Some("initrd")));
        assert_eq!(decode(&ovmf(b"-- hello")), text("-- hello", None));
        // Only a last word counts, and only a non-empty path.
        assert_eq!(decode(&ovmf(b"initrd=x -- y")), text("initrd=x -- y", None));
        assert_eq!(decode(&ovmf(b"-- y initrd=")), text("-- y initrd=", None));
        assert_eq!(
            decode(&ucs2("-- app initrd=\\EFI\\hermit\\app.elf")),
            text("-- app", Some("\\EFI\\hermit\\app.elf"))
        );
    }

    #[test]
    fn recovers_utf8_that_arrived_one_byte_per_character() {
        assert_eq!(decode(&ovmf("-- é".as_bytes())), text("-- é", None));
        // Real UCS-2 (a boot entry's options) reads as itself.
        assert_eq!(decode(&ucs2("-- ☃")), text("-- ☃", None));
        // Latin-1 that is not UTF-8 is taken character by character.
        assert_eq!(decode(&ovmf(b"-- \xe9")), text("-- é", None));
    }

    #[test]
    fn binary_options_are_no_command_line() {
        assert_eq!(decode(&[]), LoadOptions::Absent);
        assert_eq!(decode(&[0x41]), LoadOptions::Binary, "odd length");
        // EDK2's marker of a boot option it created by itself: a GUID
        // (8108ac4e-9f11-4d59-850e-e21a522c59b2), printable as UCS-2 but unterminated.
        let guid = [
            0x4e, 0xac, 0x08, 0x81, 0x11, 0x9f, 0x59, 0x4d, 0x85, 0x0e, 0xe2, 0x1a, 0x52, 0x2c,
            0x59, 0xb2,
        ];
        assert_eq!(decode(&guid), LoadOptions::Binary);
        assert_eq!(
            decode(&[0x41, 0, 0x42, 0]),
            LoadOptions::Binary,
            "unterminated"
        );
        assert_eq!(decode(&ovmf(b"a\x01b")), LoadOptions::Binary);
        // An unpaired surrogate is not text.
        assert_eq!(decode(&[0x00, 0xd8, 0x41, 0x00]), LoadOptions::Binary);
        // Too long to be a command line.
        assert_eq!(
            decode(&ovmf(&[b'a'; MAX_CHARACTERS + 1])),
            LoadOptions::Binary
        );
        assert!(matches!(
            decode(&ovmf(&[b'a'; MAX_CHARACTERS])),
            LoadOptions::Text { .. }
        ));
        // Text ends at the first NUL; a NUL right away is an empty line.
        assert_eq!(decode(&[0, 0, 0x41, 0]), text("", None));
    }

    #[test]
    fn names_files_next_to_the_image() {
        assert_eq!(
            sibling_path("\\EFI\\BOOT\\BOOTX64.EFI", "initrd"),
            "\\EFI\\BOOT\\initrd"
        );
        assert_eq!(sibling_path("kernel", "initrd"), "initrd");
        assert_eq!(sibling_path("/a/b", "c/d"), "\\a\\c\\d");
        assert_eq!(to_ucs2("ab").unwrap(), [0x61, 0x62, 0]);
        assert_eq!(to_ucs2("😀"), None);
        assert_eq!(from_ucs2(&[0x6b, 0xd800, 0x6b, 0, 0x6b]), "k\u{fffd}k");
    }

    proptest::proptest! {
        /// Any load options decode without a panic; text never keeps a trailing
        /// `initrd=` word.
        #[test]
        fn any_options_decode(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            if let LoadOptions::Text { command_line, initrd } = decode(&raw) {
                if initrd.is_some() {
                    let last = command_line.rsplit(' ').next().unwrap_or("");
                    proptest::prop_assert!(!last.starts_with("initrd=") || last == "initrd=");
                }
            }
        }
    }
}
