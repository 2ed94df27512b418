//! Finding the ACPI RSDP as Hermit kernels 0.6–0.10 do (and 0.11+ without a
//! `/hermit,rsdp` in the device tree): the EBDA's segment from the word at 0x40E,
//! used when the address is above 0x400, its first KiB scanned 16 bytes at a time,
//! then 0xE0000–0xFFFFF; a candidate counts when its signature, its checksum and
//! (revision 2 and later) its extended checksum are right. Those kernels panic
//! without one ("Hermit requires an ACPI-compliant system"). Pure: the bytes come
//! from `arch::low_memory`.

/// Where the BIOS data area holds the EBDA's segment.
pub const EBDA_POINTER: u64 = 0x40e;
/// The EBDA window the kernels scan.
pub const EBDA_WINDOW: u64 = 1024;
/// The BIOS area the kernels scan next.
pub const BIOS_AREA: (u64, u64) = (0xe_0000, 0x10_0000);
const EBDA_MINIMUM: u64 = 0x400;
const SIGNATURE: &[u8; 8] = b"RSD PTR ";

/// A valid RSDP found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// Where it is.
    pub address: u64,
    /// Its revision (0: ACPI 1.0, 2: 2.0 and later).
    pub revision: u8,
    /// `"ebda"` or `"bios-area"`.
    pub source: &'static str,
}

fn sums_to_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b)) == 0
}

/// Whether `bytes` (at least 20, 36 for revision 2+) start with a valid RSDP; its
/// revision.
pub fn valid_rsdp(bytes: &[u8]) -> Option<u8> {
    let v1 = bytes.get(..20)?;
    if &v1[..8] != SIGNATURE || !sums_to_zero(v1) {
        return None;
    }
    let revision = v1[15];
    if revision >= 2 && !sums_to_zero(bytes.get(..36)?) {
        return None;
    }
    Some(revision)
}

/// The first valid RSDP in `window` (starting at physical `base`), 16 bytes at a
/// time.
fn scan(window: &[u8], base: u64) -> Option<(u64, u8)> {
    (0..window.len())
        .step_by(16)
        .find_map(|at| valid_rsdp(&window[at..]).map(|revision| (base + at as u64, revision)))
}

/// The EBDA's address from the BIOS data area's pointer, when kernels use it.
pub fn ebda(pointer: u16) -> Option<u64> {
    let address = u64::from(pointer) << 4;
    (address > EBDA_MINIMUM).then_some(address)
}

/// The RSDP as the kernels find it: in `ebda_window` (the EBDA's first KiB, at
/// `ebda`), else in `bios_area` (0xE0000–0xFFFFF).
pub fn find(ebda_window: Option<(u64, &[u8])>, bios_area: &[u8]) -> Option<Found> {
    if let Some((base, window)) = ebda_window {
        if let Some((address, revision)) = scan(window, base) {
            return Some(Found {
                address,
                revision,
                source: "ebda",
            });
        }
    }
    scan(bios_area, BIOS_AREA.0).map(|(address, revision)| Found {
        address,
        revision,
        source: "bios-area",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsdp(revision: u8) -> [u8; 36] {
        let mut r = [0u8; 36];
        r[..8].copy_from_slice(SIGNATURE);
        r[15] = revision;
        r[20] = 36;
        let fix = |b: &[u8]| 0u8.wrapping_sub(b.iter().fold(0u8, |s, &x| s.wrapping_add(x)));
        r[8] = fix(&r[..20]);
        r[32] = fix(&r[..36]);
        r
    }

    #[test]
    fn finds_the_rsdp_where_old_kernels_look() {
        let mut window = [0u8; 1024];
        window[0x40..0x40 + 36].copy_from_slice(&rsdp(2));
        let bios = [0u8; 0x2_0000];
        assert_eq!(
            find(Some((0x9_fc00, &window)), &bios),
            Some(Found {
                address: 0x9_fc40,
                revision: 2,
                source: "ebda"
            })
        );
        // Not on a 16-byte boundary: not found.
        let mut odd = [0u8; 1024];
        odd[0x48..0x48 + 36].copy_from_slice(&rsdp(2));
        assert_eq!(find(Some((0x9_fc00, &odd)), &bios), None);
        // The BIOS area next (SeaBIOS puts it there).
        let mut bios = [0u8; 0x2_0000];
        bios[0x1_5a30..0x1_5a30 + 20].copy_from_slice(&rsdp(0)[..20]);
        bios[0x1_5a30 + 8] = rsdp(0)[8];
        assert_eq!(
            find(None, &bios),
            Some(Found {
                address: 0xf_5a30,
                revision: 0,
                source: "bios-area"
            })
        );
    }

    #[test]
    fn checksums_and_the_ebda_minimum_count() {
        let mut bad = rsdp(2);
        bad[30] ^= 1;
        assert_eq!(valid_rsdp(&bad), None, "extended checksum");
        bad = rsdp(2);
        bad[9] ^= 1;
        assert_eq!(valid_rsdp(&bad), None, "checksum");
        assert_eq!(valid_rsdp(&rsdp(2)), Some(2));
        assert_eq!(ebda(0), None);
        assert_eq!(ebda(0x40), None, "0x400 is not above the minimum");
        assert_eq!(ebda(0x9fc0), Some(0x9_fc00));
    }
}
