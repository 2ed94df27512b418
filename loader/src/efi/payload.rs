//! The loader image inside the EFI application, and the header that says where it
//! goes.
//!
//! The loader is linked at 1 MiB, where everything the kernel still needs must lie
//! (below the kernel, see `layout.rs`). The firmware loads an EFI application
//! wherever it likes (OVMF: near the top of RAM), so the EFI image is a small
//! position-independent stub that carries the loader's loaded bytes as its payload:
//! it allocates the loader's whole range at its link address, copies the bytes
//! there and jumps to the loader's UEFI entry. xtask writes the payload
//! ([`header`] followed by the bytes), the stub reads it ([`parse`]).

/// The payload's first bytes.
pub const MAGIC: [u8; 8] = *b"RLEFIPL1";
/// Magic, load address, image end, entry: four 8-byte fields.
pub const HEADER_LEN: usize = 32;
const PAGE: u64 = 4096;

/// The loader image as the stub places it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload<'a> {
    /// Where the bytes go: the loader's link address (`__loader_start`).
    pub load_address: u64,
    /// The end of the loader's range, with the parts not in the file (`.bss` and
    /// the buffers in `.noinit`): the stub allocates up to here.
    pub image_end: u64,
    /// The loader's UEFI entry (`uefi_start64`).
    pub entry: u64,
    /// The loaded bytes, from `load_address`.
    pub bytes: &'a [u8],
}

impl Payload<'_> {
    /// The pages the loader's range takes.
    pub fn pages(&self) -> u64 {
        (self.image_end - self.load_address).div_ceil(PAGE)
    }
}

/// The header for a payload of `bytes_len` bytes.
pub fn header(load_address: u64, image_end: u64, entry: u64) -> [u8; HEADER_LEN] {
    let mut out = [0; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    for (i, value) in [load_address, image_end, entry].into_iter().enumerate() {
        out[8 + 8 * i..16 + 8 * i].copy_from_slice(&value.to_le_bytes());
    }
    out
}

/// Reads a payload, checking that it describes a loader image it can place: page
/// aligned, the bytes within the range, the entry among them.
pub fn parse(blob: &[u8]) -> Result<Payload<'_>, &'static str> {
    let header = blob.get(..HEADER_LEN).ok_or("shorter than its header")?;
    if header[..8] != MAGIC {
        return Err("no payload magic");
    }
    let field = |i: usize| {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&header[8 + 8 * i..16 + 8 * i]);
        u64::from_le_bytes(bytes)
    };
    let (load_address, image_end, entry) = (field(0), field(1), field(2));
    let bytes = &blob[HEADER_LEN..];
    if !load_address.is_multiple_of(PAGE) || load_address == 0 {
        return Err("the load address is not a non-zero page address");
    }
    let bytes_end = load_address
        .checked_add(bytes.len() as u64)
        .ok_or("the bytes run past the end of the address space")?;
    if image_end < bytes_end {
        return Err("the image ends before its bytes do");
    }
    if !(load_address..bytes_end).contains(&entry) {
        return Err("the entry lies outside the bytes");
    }
    Ok(Payload {
        load_address,
        image_end,
        entry,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_it_cannot_place() {
        let mut blob = header(0x10_0000, 0x25_8000, 0x10_0040).to_vec();
        blob.extend_from_slice(&[0x90; 0x100]);
        let payload = parse(&blob).unwrap();
        assert_eq!(payload.load_address, 0x10_0000);
        assert_eq!(payload.bytes.len(), 0x100);
        assert_eq!(payload.pages(), 0x158);

        let with = |load, end, entry| {
            let mut b = header(load, end, entry).to_vec();
            b.extend_from_slice(&[0; 0x100]);
            b
        };
        assert!(parse(&with(0x10_0010, 0x20_0000, 0x10_0020)).is_err());
        assert!(parse(&with(0x10_0000, 0x10_0080, 0x10_0000)).is_err());
        assert!(parse(&with(0x10_0000, 0x20_0000, 0x10_0100)).is_err());
        assert!(parse(&blob[..16]).is_err());
        let mut wrong = blob.clone();
        wrong[0] = b'X';
        assert_eq!(parse(&wrong), Err("no payload magic"));
    }
}
