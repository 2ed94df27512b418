//! The ELF notes that mark a Hermit kernel: the HERMIT entry-version note and the
//! optional GNU ABI tag carrying the kernel version.
//!
//! The note bytes are built by `const fn`s (so host tests can check them) and placed
//! by the macros into one allocated section, `.note.hermit`, which the linker turns
//! into a single `PT_NOTE` (upstream loaders scan only the first one).

#![forbid(unsafe_code)]

/// Note type of the HERMIT entry-version note.
pub const NT_HERMIT_ENTRY_VERSION: u32 = 0x5a00;
/// The entry ABI version the kernels declare unless they say otherwise (kernels 0.7
/// and later).
pub const ENTRY_VERSION: u8 = 4;
/// Note type of the GNU ABI tag.
pub const NT_GNU_ABI_TAG: u32 = 1;
/// The ABI tag's OS value for Hermit.
pub const ELF_NOTE_OS_HERMIT: u32 = 6;

/// A note's bytes, 4-byte aligned as ELF notes must be.
#[repr(C, align(4))]
pub struct Note<const N: usize>(pub [u8; N]);

/// Bytes of the HERMIT entry-version note.
pub const HERMIT_NOTE_LEN: usize = 24;
/// Bytes of the GNU ABI tag note.
pub const ABI_TAG_NOTE_LEN: usize = 32;

const fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    let b = v.to_le_bytes();
    let mut i = 0;
    while i < 4 {
        bytes[at + i] = b[i];
        i += 1;
    }
}

/// The HERMIT note: namesz 7, descsz 1, type 0x5a00, `"HERMIT\0"` padded to 8, then
/// the version byte padded to 4.
pub const fn hermit_entry_note(version: u8) -> Note<HERMIT_NOTE_LEN> {
    let mut b = [0u8; HERMIT_NOTE_LEN];
    put_u32(&mut b, 0, 7);
    put_u32(&mut b, 4, 1);
    put_u32(&mut b, 8, NT_HERMIT_ENTRY_VERSION);
    let name = b"HERMIT";
    let mut i = 0;
    while i < name.len() {
        b[12 + i] = name[i];
        i += 1;
    }
    b[20] = version;
    Note(b)
}

/// The GNU ABI tag: namesz 4, descsz 16, type 1, `"GNU\0"`, then
/// `{6 (Hermit), major, minor, patch}` as u32.
pub const fn abi_tag_note(major: u32, minor: u32, patch: u32) -> Note<ABI_TAG_NOTE_LEN> {
    let mut b = [0u8; ABI_TAG_NOTE_LEN];
    put_u32(&mut b, 0, 4);
    put_u32(&mut b, 4, 16);
    put_u32(&mut b, 8, NT_GNU_ABI_TAG);
    b[12] = b'G';
    b[13] = b'N';
    b[14] = b'U';
    put_u32(&mut b, 16, ELF_NOTE_OS_HERMIT);
    put_u32(&mut b, 20, major);
    put_u32(&mut b, 24, minor);
    put_u32(&mut b, 28, patch);
    Note(b)
}

/// Places the HERMIT entry-version note in the kernel: version [`ENTRY_VERSION`], or
/// the one given (`hermit_note!(2)`).
#[macro_export]
macro_rules! hermit_note {
    () => {
        $crate::hermit_note!($crate::notes::ENTRY_VERSION);
    };
    ($version:expr) => {
        #[link_section = ".note.hermit"]
        #[used]
        static HERMIT_ENTRY_VERSION_NOTE: $crate::notes::Note<{ $crate::notes::HERMIT_NOTE_LEN }> =
            $crate::notes::hermit_entry_note($version);
    };
}

/// Places a GNU ABI tag note with the given kernel version in the kernel.
#[macro_export]
macro_rules! abi_tag_note {
    ($major:expr, $minor:expr, $patch:expr) => {
        #[link_section = ".note.hermit"]
        #[used]
        static GNU_ABI_TAG_NOTE: $crate::notes::Note<{ $crate::notes::ABI_TAG_NOTE_LEN }> =
            $crate::notes::abi_tag_note($major, $minor, $patch);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a note back the way a loader does: header, name padded to 4, descriptor.
    fn read(bytes: &[u8]) -> (u32, &[u8], &[u8]) {
        let u = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let (namesz, descsz, kind) = (u(0) as usize, u(4) as usize, u(8));
        let name = &bytes[12..12 + namesz];
        let desc_at = 12 + namesz.div_ceil(4) * 4;
        let desc = &bytes[desc_at..desc_at + descsz];
        assert_eq!(bytes.len(), desc_at + descsz.div_ceil(4) * 4, "padded to 4");
        (kind, name, desc)
    }

    #[test]
    fn hermit_note_layout() {
        let note = hermit_entry_note(4);
        let (kind, name, desc) = read(&note.0);
        assert_eq!(kind, 0x5a00);
        assert_eq!(name, b"HERMIT\0");
        assert_eq!(desc, [4]);
        assert_eq!(core::mem::align_of_val(&note), 4);
    }

    #[test]
    fn abi_tag_layout() {
        let note = abi_tag_note(0, 13, 0);
        let (kind, name, desc) = read(&note.0);
        assert_eq!(kind, 1);
        assert_eq!(name, b"GNU\0");
        let words: std::vec::Vec<u32> = desc
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(words, [6, 0, 13, 0]);
    }
}
