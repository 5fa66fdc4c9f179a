//! The worker pool (in progress).
