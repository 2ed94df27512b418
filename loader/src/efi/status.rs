//! EFI status codes: the few a loader meets, by their specification names.

/// The high bit of an error status (on x86_64).
const ERROR_BIT: u64 = 1 << 63;

/// `EFI_SUCCESS`.
pub const SUCCESS: u64 = 0;
/// `EFI_INVALID_PARAMETER`: what `ExitBootServices` returns for a stale map key.
pub const INVALID_PARAMETER: u64 = ERROR_BIT | 2;
/// `EFI_UNSUPPORTED`: a handle without the protocol asked for.
pub const UNSUPPORTED: u64 = ERROR_BIT | 3;
/// `EFI_BAD_BUFFER_SIZE`.
pub const BAD_BUFFER_SIZE: u64 = ERROR_BIT | 4;
/// `EFI_BUFFER_TOO_SMALL`: what a size query returns, with the size.
pub const BUFFER_TOO_SMALL: u64 = ERROR_BIT | 5;
/// `EFI_NOT_FOUND`.
pub const NOT_FOUND: u64 = ERROR_BIT | 14;

/// The specification's name of a status, or `None` for one this table lacks.
pub const fn name(status: u64) -> Option<&'static str> {
    Some(match status {
        SUCCESS => "EFI_SUCCESS",
        s if s == ERROR_BIT | 1 => "EFI_LOAD_ERROR",
        INVALID_PARAMETER => "EFI_INVALID_PARAMETER",
        UNSUPPORTED => "EFI_UNSUPPORTED",
        BAD_BUFFER_SIZE => "EFI_BAD_BUFFER_SIZE",
        BUFFER_TOO_SMALL => "EFI_BUFFER_TOO_SMALL",
        s if s == ERROR_BIT | 6 => "EFI_NOT_READY",
        s if s == ERROR_BIT | 7 => "EFI_DEVICE_ERROR",
        s if s == ERROR_BIT | 8 => "EFI_WRITE_PROTECTED",
        s if s == ERROR_BIT | 9 => "EFI_OUT_OF_RESOURCES",
        s if s == ERROR_BIT | 12 => "EFI_NO_MEDIA",
        NOT_FOUND => "EFI_NOT_FOUND",
        s if s == ERROR_BIT | 15 => "EFI_ACCESS_DENIED",
        s if s == ERROR_BIT | 21 => "EFI_ABORTED",
        s if s == ERROR_BIT | 26 => "EFI_SECURITY_VIOLATION",
        _ => return None,
    })
}

/// A status as the refusal lines show it: its name and value, or the value alone.
pub struct Shown(pub u64);

impl core::fmt::Display for Shown {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match name(self.0) {
            Some(name) => write!(f, "{name} ({:#x})", self.0),
            None => write!(f, "status {:#x}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_statuses_a_loader_meets() {
        assert_eq!(name(0), Some("EFI_SUCCESS"));
        assert_eq!(name(0x8000_0000_0000_000e), Some("EFI_NOT_FOUND"));
        assert_eq!(
            alloc::format!("{}", Shown(INVALID_PARAMETER)),
            "EFI_INVALID_PARAMETER (0x8000000000000002)"
        );
        assert_eq!(
            alloc::format!("{}", Shown(0x8000_0000_0000_0063)),
            "status 0x8000000000000063"
        );
    }
}
