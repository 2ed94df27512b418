//! Shared checks of the test kernels.
#![cfg_attr(not(test), no_std)]
