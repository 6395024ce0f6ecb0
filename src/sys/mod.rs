//! The syscall boundary (work in progress).
