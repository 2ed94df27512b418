//! The bulk that makes `big-dyn` the size of a real Hermit application: 576 KiB of
//! initialised read-only data and a table of 2304 references into it, which the
//! static PIE carries as 2304 `R_X86_64_RELATIVE` relocations (a Hermit 0.6.9
//! hello world: ~870 KB file, ~570 KB copied, ~2245 relocations).
//!
//! Both are built at compile time by `const fn`s, so the source stays small, and
//! [`word`] is the one definition of the data: the compiler evaluates it to fill
//! the file, and the kernel evaluates it again at run time to check every word the
//! loader copied. The statics are linked only into the kernel whose check refers to
//! them.

#![forbid(unsafe_code)]

/// Words of bulk data (576 KiB).
pub const WORDS: usize = 73_728;
/// References in the table: one every [`STRIDE`] words.
pub const POINTERS: usize = 2_304;
/// Words between two referenced words.
pub const STRIDE: usize = WORDS / POINTERS;

// The sizes are the point of this module: a change that shrinks them below a real
// application's, or leaves part of the data unreferenced, fails the build.
const _: () = assert!(WORDS * 8 >= 500_000 && POINTERS >= 2000 && STRIDE * POINTERS == WORDS);

/// The bulk data: word `i` holds [`word`]`(i)`.
pub static BULK_WORDS: [u64; WORDS] = words();

/// References to every [`STRIDE`]th word of [`BULK_WORDS`]: entry `i` refers to
/// word `i * STRIDE`. Each is a relocation in the static PIE.
pub static BULK_POINTERS: [&u64; POINTERS] = pointers(&BULK_WORDS);

/// Word `i` of the bulk data. A bijection of the index (multiplication by an odd
/// constant, a rotation and an XOR), so no two words are equal and data copied to
/// the wrong offset, or not at all, cannot match.
pub const fn word(i: usize) -> u64 {
    (i as u64 + 1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(17)
        ^ 0x6269_672d_6479_6e00
}

const fn words() -> [u64; WORDS] {
    let mut all = [0; WORDS];
    let mut i = 0;
    while i < WORDS {
        all[i] = word(i);
        i += 1;
    }
    all
}

const fn pointers(words: &'static [u64; WORDS]) -> [&'static u64; POINTERS] {
    let mut table = [&words[0]; POINTERS];
    let mut i = 0;
    while i < POINTERS {
        table[i] = &words[i * STRIDE];
        i += 1;
    }
    table
}

/// The first word of `words` that is not [`word`] of its index: (index, value).
pub fn first_wrong_word(words: impl Iterator<Item = u64>) -> Option<(usize, u64)> {
    words.enumerate().find(|&(i, w)| w != word(i))
}

/// The first reference of `table` that does not point at word `i * STRIDE` of the
/// data at `base`, or whose target does not hold that word: (index, where it points).
pub fn first_wrong_pointer(
    base: u64,
    table: impl Iterator<Item = (u64, u64)>,
) -> Option<(usize, u64)> {
    table.enumerate().find_map(|(i, (address, target))| {
        let want = base + (i * STRIDE * 8) as u64;
        (address != want || target != word(i * STRIDE)).then_some((i, address))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_data_is_the_function_and_has_no_repeats() {
        assert_eq!(first_wrong_word(BULK_WORDS.iter().copied()), None);
        let distinct: HashSet<u64> = BULK_WORDS.iter().copied().collect();
        assert_eq!(distinct.len(), WORDS);
        assert!(!distinct.contains(&0), "a zero word could pass for .bss");
    }

    #[test]
    fn the_table_points_at_every_strideth_word() {
        let base = BULK_WORDS.as_ptr() as u64;
        let table = BULK_POINTERS.iter().map(|r| (*r as *const u64 as u64, **r));
        assert_eq!(first_wrong_pointer(base, table), None);
    }

    #[test]
    fn wrong_data_and_pointers_are_found() {
        let mut words = BULK_WORDS.to_vec();
        words[4097] ^= 1;
        assert_eq!(
            first_wrong_word(words.iter().copied()),
            Some((4097, word(4097) ^ 1))
        );
        // A copy shifted by one word fails at once.
        assert_eq!(
            first_wrong_word(BULK_WORDS[1..].iter().copied()).map(|(i, _)| i),
            Some(0)
        );

        let base = 0x20_0000u64;
        let right = |i: usize| (base + (i * STRIDE * 8) as u64, word(i * STRIDE));
        let mut table: Vec<(u64, u64)> = (0..POINTERS).map(right).collect();
        assert_eq!(first_wrong_pointer(base, table.iter().copied()), None);
        // An unrelocated entry holds the link-time address (the addend alone).
        table[7].0 -= base;
        assert_eq!(
            first_wrong_pointer(base, table.iter().copied()),
            Some((7, table[7].0))
        );
        let mut table: Vec<(u64, u64)> = (0..POINTERS).map(right).collect();
        table[POINTERS - 1].1 = 0;
        assert_eq!(
            first_wrong_pointer(base, table.iter().copied()).map(|(i, _)| i),
            Some(POINTERS - 1)
        );
    }
}
