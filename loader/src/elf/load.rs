//! Loading: copying each `PT_LOAD` segment's file bytes into the kernel image,
//! zeroing the rest of its memory size, and zeroing the gaps between segments.
//!
//! The image is a byte slice the caller provides; its first byte holds the kernel's
//! `vaddr_start`. Where a segment lands in it does not depend on the load bias, so
//! nothing here takes one.

use super::{file_len, file_slice, image_slice, malformed, Kernel, Segment};
use crate::error::LoadError;

/// Time spent loading one segment, in ticks of the caller's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentTicks {
    /// Copying the file bytes.
    pub copy: u64,
    /// Zeroing the rest up to `p_memsz`.
    pub zero: u64,
}

impl Kernel<'_> {
    /// Copies `segment`'s file bytes into `image` and zeroes the rest of its memory
    /// size, measuring both with `clock` (the loader passes the TSC; the pure code here
    /// cannot read it).
    ///
    /// `image` is the memory the kernel occupies, as a slice; its first byte holds
    /// `vaddr_start`.
    pub fn load_segment_timed(
        &self,
        segment: &Segment,
        image: &mut [u8],
        mut clock: impl FnMut() -> u64,
    ) -> Result<SegmentTicks, LoadError> {
        let file_bytes = file_slice(self.bytes, segment.file_offset, segment.file_size).ok_or(
            LoadError::SegmentOutsideFile {
                index: segment.index,
                offset: segment.file_offset,
                size: segment.file_size,
                file_len: file_len(self.bytes),
            },
        )?;
        let memory = segment
            .vaddr
            .checked_sub(self.vaddr_start)
            .and_then(|start| image_slice(image, start, segment.mem_size))
            .ok_or(malformed("a PT_LOAD segment lies outside the kernel image"))?;
        let (initialised, zeroed) = memory.split_at_mut_checked(file_bytes.len()).ok_or(
            LoadError::FileSizeAboveMemorySize {
                index: segment.index,
                segment_type: "PT_LOAD",
                file_size: segment.file_size,
                mem_size: segment.mem_size,
            },
        )?;
        let start = clock();
        initialised.copy_from_slice(file_bytes);
        let copied = clock();
        zeroed.fill(0);
        let zeroed = clock();
        Ok(SegmentTicks {
            copy: copied.wrapping_sub(start),
            zero: zeroed.wrapping_sub(copied),
        })
    }

    /// Zeroes every byte of `image` that no segment covers, so the whole image is defined.
    ///
    /// Segments are in ascending address order and do not overlap ([`super::inspect`]
    /// checks this), so one walk from the start of the image finds every gap.
    pub fn zero_gaps(&self, image: &mut [u8]) {
        let image_len = file_len(image);
        let mut cursor = 0_u64;
        for segment in &self.segments {
            let start = segment
                .vaddr
                .saturating_sub(self.vaddr_start)
                .min(image_len);
            let end = start.saturating_add(segment.mem_size).min(image_len);
            if let Some(gap) = image_slice(image, cursor, start.saturating_sub(cursor)) {
                gap.fill(0);
            }
            cursor = cursor.max(end);
        }
        if let Some(tail) = image_slice(image, cursor, image_len.saturating_sub(cursor)) {
            tail.fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::super::inspect;
    use super::super::test_elf::*;
    use super::*;

    #[test]
    fn segments_are_copied_and_their_tails_zeroed() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        let mut image = vec![0xaa_u8; IMAGE_SIZE as usize];
        for segment in &kernel.segments {
            kernel
                .load_segment_timed(segment, &mut image, || 0)
                .unwrap();
        }
        assert_eq!(image[..RODATA_SIZE], bytes[..RODATA_SIZE]);
        assert_eq!(
            image[TEXT_OFFSET..TEXT_OFFSET + TEXT_SIZE],
            bytes[TEXT_OFFSET..TEXT_OFFSET + TEXT_SIZE]
        );
        let data = DATA_VADDR as usize;
        assert_eq!(image[data..data + DATA_FILE_SIZE], bytes[DATA_OFFSET..]);
        let bss = data + DATA_FILE_SIZE..data + DATA_MEM_SIZE as usize;
        assert!(image[bss].iter().all(|&byte| byte == 0));
        // The gaps are not touched by loading segments.
        assert!(image[TEXT_OFFSET + TEXT_SIZE..data]
            .iter()
            .all(|&byte| byte == 0xaa));
        assert!(image[data + DATA_MEM_SIZE as usize..]
            .iter()
            .all(|&byte| byte == 0xaa));
    }

    #[test]
    fn gaps_are_zeroed_and_segments_left_alone() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        let mut image = vec![0xaa_u8; IMAGE_SIZE as usize];
        kernel.zero_gaps(&mut image);
        let data_end = (DATA_VADDR + DATA_MEM_SIZE) as usize;
        let covered = |offset: usize| {
            offset < TEXT_OFFSET + TEXT_SIZE || (DATA_VADDR as usize..data_end).contains(&offset)
        };
        for (offset, &byte) in image.iter().enumerate() {
            let expected = if covered(offset) { 0xaa } else { 0 };
            assert_eq!(byte, expected, "image offset {offset:#x}");
        }
    }

    #[test]
    fn loading_gives_the_whole_image() {
        let bytes = test_exec().build();
        let kernel = inspect(&bytes).unwrap();
        let (image, _) = load(&kernel, 0).unwrap();
        let mut expected = vec![0_u8; IMAGE_SIZE as usize];
        expected[..TEXT_OFFSET + TEXT_SIZE].copy_from_slice(&bytes[..TEXT_OFFSET + TEXT_SIZE]);
        expected[DATA_VADDR as usize..][..DATA_FILE_SIZE].copy_from_slice(&bytes[DATA_OFFSET..]);
        assert!(image == expected);
    }

    #[test]
    fn load_segment_refuses_what_does_not_fit() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        let data = kernel.segments[2];
        let mut short_image = vec![0_u8; 0x4000];
        assert_eq!(
            kernel.load_segment_timed(&data, &mut short_image, || 0),
            Err(malformed("a PT_LOAD segment lies outside the kernel image"))
        );
        let mut image = vec![0_u8; IMAGE_SIZE as usize];
        let beyond_file = Segment {
            file_offset: 0x2040,
            ..data
        };
        assert_eq!(
            kernel.load_segment_timed(&beyond_file, &mut image, || 0),
            Err(LoadError::SegmentOutsideFile {
                index: DATA_INDEX,
                offset: 0x2040,
                size: DATA_FILE_SIZE as u64,
                file_len: FILE_SIZE as u64,
            })
        );
        let too_much_file = Segment {
            mem_size: 0x10,
            ..data
        };
        assert_eq!(
            kernel.load_segment_timed(&too_much_file, &mut image, || 0),
            Err(LoadError::FileSizeAboveMemorySize {
                index: DATA_INDEX,
                segment_type: "PT_LOAD",
                file_size: DATA_FILE_SIZE as u64,
                mem_size: 0x10,
            })
        );
    }

    #[test]
    fn the_copy_and_the_zeroing_are_timed_with_the_callers_clock() {
        let bytes = test_dyn().build();
        let kernel = inspect(&bytes).unwrap();
        let mut image = vec![0_u8; IMAGE_SIZE as usize];
        let mut readings = [100_u64, 105, 112].into_iter();
        let ticks = kernel
            .load_segment_timed(&kernel.segments[2], &mut image, || readings.next().unwrap())
            .unwrap();
        assert_eq!(ticks, SegmentTicks { copy: 5, zero: 7 });
        assert_eq!(readings.next(), None, "the clock is read three times");
    }
}
