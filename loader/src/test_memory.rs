//! Physical memory for the tests of the boot-data readers (`multiboot`, `pvh`): bytes
//! placed at a base address, nothing elsewhere, and writers of little-endian fields.

use crate::memory::PhysicalMemory;

/// `bytes` placed at `base`; every other address is unmapped.
pub struct Buffer {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl<'m> PhysicalMemory<'m> for &'m Buffer {
    fn bytes(&self, addr: u64, len: u64) -> Option<&'m [u8]> {
        let end = addr.checked_add(len)?;
        if addr < self.base || end > self.base + self.bytes.len() as u64 {
            return None;
        }
        let from = (addr - self.base) as usize;
        Some(&self.bytes[from..from + len as usize])
    }
}

pub fn put32(memory: &mut Buffer, at: u64, value: u32) {
    put_bytes(memory, at, &value.to_le_bytes());
}

pub fn put64(memory: &mut Buffer, at: u64, value: u64) {
    put_bytes(memory, at, &value.to_le_bytes());
}

pub fn put_bytes(memory: &mut Buffer, at: u64, bytes: &[u8]) {
    let i = (at - memory.base) as usize;
    memory.bytes[i..i + bytes.len()].copy_from_slice(bytes);
}
