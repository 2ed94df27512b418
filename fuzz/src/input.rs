//! Reading a fuzz input as a sequence of choices.
//!
//! Every structured target reads its input through [`Input`]: little-endian integers
//! and byte strings, taken from the front, with zeros once the input is used up. The
//! reading is defined here, once, so that a file of `fuzz/regressions/` means the
//! same input to the fuzz target and to the stable test that replays it, with no
//! dependency (such as `arbitrary`) whose encoding could change under them.

/// The rest of a fuzz input.
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Input { bytes }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = tail;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.bytes.len())
    }

    /// An unsigned little-endian integer of `N` bytes, zero-extended at the end of
    /// the input.
    fn le<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let taken = self.bytes(N);
        out[..taken.len()].copy_from_slice(taken);
        out
    }

    pub fn u8(&mut self) -> u8 {
        self.le::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.le())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.le())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.le())
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.u32() as usize % n
        }
    }

    /// A count of repetitions: mostly below 8, one time in eight up to 4095 (so
    /// that a short input can still ask for thousands of regions or events, without
    /// most inputs being slow to run).
    pub fn count(&mut self) -> usize {
        if self.u8().is_multiple_of(8) {
            self.below(4096)
        } else {
            self.below(8)
        }
    }

    /// An address or size: most often a multiple of 4 KiB below 16 TiB (the scale
    /// of memory maps and ELF segments), sometimes a small number, sometimes any
    /// 64-bit value (the edges: overflow, the top of the address space).
    pub fn address(&mut self) -> u64 {
        match self.u8() % 8 {
            0 => self.u64(),
            1 => u64::from(self.u16()),
            _ => u64::from(self.u32()) << 12,
        }
    }

    /// A string of at most `max` bytes, UTF-8 (invalid bytes replaced).
    pub fn text(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        String::from_utf8_lossy(self.bytes(len)).into_owned()
    }
}

/// How a list is written when its last item may repeat: the items up to the first
/// of the last item's run, and how many times more it comes.
pub fn tail_run<T: PartialEq>(items: &[T]) -> (usize, usize) {
    let Some(last) = items.last() else {
        return (0, 0);
    };
    let run = items.iter().rev().take_while(|item| *item == last).count();
    (items.len() - run + 1, run - 1)
}

/// Writes the choices an [`Input`] reads, to make seed inputs from descriptions.
#[derive(Default)]
pub struct Choices {
    pub bytes: Vec<u8>,
}

impl Choices {
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// What [`Input::below`] reads as `value` (for `value < n`).
    pub fn below(&mut self, value: usize) -> &mut Self {
        self.u32(value as u32)
    }

    /// What [`Input::count`] reads as `value` (below 4096).
    pub fn count(&mut self, value: usize) -> &mut Self {
        self.u8(if value < 8 { 1 } else { 0 }).below(value)
    }

    /// What [`Input::address`] reads as `value` (any value).
    pub fn address(&mut self, value: u64) -> &mut Self {
        self.u8(0).u64(value)
    }

    /// What [`Input::text`] reads as `text` (for `text.len() <= max`).
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.below(text.len());
        self.bytes.extend_from_slice(text.as_bytes());
        self
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }
}
