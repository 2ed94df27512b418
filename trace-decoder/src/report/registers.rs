//! The registers of QEMU's `info registers` text (a [`QemuStop`]'s), for the
//! report: the ones a diagnosis uses, and never one QEMU did not print.
//!
//! [`QemuStop`]: crate::decode::QemuStop

use serde::Serialize;

use super::format::ser_opt_hex;

/// The registers a diagnosis uses, as QEMU printed them (`None` where it did not).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Registers {
    #[serde(serialize_with = "ser_opt_hex")]
    pub rip: Option<u64>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub rsp: Option<u64>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub rflags: Option<u64>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub cr0: Option<u64>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub cr2: Option<u64>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub cr3: Option<u64>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub cr4: Option<u64>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub efer: Option<u64>,
    /// The IDT's base and limit.
    #[serde(serialize_with = "ser_opt_hex")]
    pub idt_base: Option<u64>,
    #[serde(serialize_with = "ser_opt_hex")]
    pub idt_limit: Option<u64>,
    /// `HLT=1`: the CPU was halted.
    pub halted: Option<bool>,
}

impl Registers {
    /// Reads QEMU's `info registers` text (x86_64, as QEMU 7 and later print it).
    pub fn parse(text: &str) -> Registers {
        let hex_after = |key: &str| -> Option<u64> {
            text.split(|c: char| c.is_whitespace()).find_map(|word| {
                let value = word.strip_prefix(key)?.strip_prefix('=')?;
                u64::from_str_radix(value, 16).ok()
            })
        };
        // `IDT=     <base> <limit>`: the values are the next two words.
        let idt: Vec<u64> = text
            .lines()
            .find_map(|line| line.trim_start().strip_prefix("IDT="))
            .map(|rest| {
                rest.split_whitespace()
                    .take(2)
                    .filter_map(|w| u64::from_str_radix(w, 16).ok())
                    .collect()
            })
            .unwrap_or_default();
        Registers {
            rip: hex_after("RIP"),
            rsp: hex_after("RSP"),
            rflags: hex_after("RFL"),
            cr0: hex_after("CR0"),
            cr2: hex_after("CR2"),
            cr3: hex_after("CR3"),
            cr4: hex_after("CR4"),
            efer: hex_after("EFER"),
            idt_base: idt.first().copied(),
            idt_limit: idt.get(1).copied(),
            halted: hex_after("HLT").map(|v| v == 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 7.2's `info registers` after a triple fault of the `crashing` kernel.
    const TRIPLE_FAULT: &str = "
CPU#0
RAX=000000000020be48 RBX=0000000000009500 RCX=00000000000062be RDX=0000000000810f38
RSI=00000000008027b1 RDI=000000000020bf2e RBP=0000000000000000 RSP=000000000020be68
R8 =0000000000000003 R9 =0000000000000000 R10=0000000000800000 R11=00000000001735c8
R12=0000000000000000 R13=0000000000000000 R14=0000000000000000 R15=0000000000000000
RIP=000000000080d766 RFL=00000012 [----A--] CPL=0 II=0 A20=1 SMM=0 HLT=0
ES =0010 0000000000000000 ffffffff 00cf9300 DPL=0 DS   [-WA]
CS =0008 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]
TR =0018 0000000000169f08 00000067 00008900 DPL=0 TSS64-avl
GDT=     0000000000169ee0 00000027
IDT=     0000000000000000 00000000
CR0=80000013 CR2=0000000000000000 CR3=0000000000210000 CR4=00000620
DR0=0000000000000000 DR1=0000000000000000 DR2=0000000000000000 DR3=0000000000000000
EFER=0000000000000500
";

    #[test]
    fn reads_the_registers_qemu_prints() {
        let r = Registers::parse(TRIPLE_FAULT);
        assert_eq!(r.rip, Some(0x80_d766));
        assert_eq!(r.rsp, Some(0x20_be68));
        assert_eq!(r.rflags, Some(0x12));
        assert_eq!(r.cr3, Some(0x21_0000));
        assert_eq!(r.cr2, Some(0));
        assert_eq!(r.efer, Some(0x500));
        assert_eq!((r.idt_base, r.idt_limit), (Some(0), Some(0)));
        assert_eq!(r.halted, Some(false));
    }

    #[test]
    fn what_is_not_printed_stays_unknown() {
        assert_eq!(Registers::parse("nonsense"), Registers::default());
        assert_eq!(Registers::parse("RIP=zz").rip, None);
    }
}
