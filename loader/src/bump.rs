//! The arithmetic of the loader's bump allocator: blocks are handed out upwards from
//! the start of an area and never freed; the last block may grow in place. The
//! binary's `heap.rs` applies it to its heap area.

use core::alloc::Layout;

/// A block for `layout` at or after `next`, ending at or before `end`: its address
/// and the new `next`. `None` when it does not fit (or `next` is 0: not set up).
pub fn allocate(next: usize, end: usize, layout: Layout) -> Option<(usize, usize)> {
    if next == 0 {
        return None;
    }
    let block = next.checked_next_multiple_of(layout.align())?;
    let block_end = block.checked_add(layout.size())?;
    (block_end <= end).then_some((block, block_end))
}

/// The new `next` when the block at `block` of `old_size` bytes is the last one
/// handed out (it ends at `next`) and can grow to `new_size` before `end`.
pub fn grow_in_place(
    block: usize,
    old_size: usize,
    new_size: usize,
    next: usize,
    end: usize,
) -> Option<usize> {
    let block_end = block.checked_add(old_size)?;
    let new_end = block.checked_add(new_size)?;
    (block_end == next && new_end <= end).then_some(new_end.max(block_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn hands_out_aligned_disjoint_blocks_until_full() {
        let (a, next) = allocate(0x1000, 0x1100, layout(3, 1)).unwrap();
        assert_eq!((a, next), (0x1000, 0x1003));
        let (b, next) = allocate(next, 0x1100, layout(16, 16)).unwrap();
        assert_eq!((b, next), (0x1010, 0x1020), "aligned up, past the first");
        assert_eq!(
            allocate(next, 0x1100, layout(0xe1, 1)),
            None,
            "one byte too many"
        );
        assert_eq!(
            allocate(next, 0x1100, layout(0xe0, 1)),
            Some((0x1020, 0x1100))
        );
        assert_eq!(allocate(0, 0x1100, layout(1, 1)), None, "not set up");
        assert_eq!(
            allocate(usize::MAX - 1, usize::MAX, layout(8, 8)),
            None,
            "no overflow"
        );
    }

    #[test]
    fn only_the_last_block_grows_in_place() {
        assert_eq!(
            grow_in_place(0x1010, 0x10, 0x40, 0x1020, 0x1100),
            Some(0x1050)
        );
        assert_eq!(
            grow_in_place(0x1000, 0x3, 0x40, 0x1020, 0x1100),
            None,
            "not last"
        );
        assert_eq!(
            grow_in_place(0x1010, 0x10, 0x100, 0x1020, 0x1100),
            None,
            "too big"
        );
        assert_eq!(
            grow_in_place(0x1010, 0x10, 0x8, 0x1020, 0x1100),
            Some(0x1020),
            "shrinks keep"
        );
    }
}
