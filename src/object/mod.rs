//! object (work in progress).
