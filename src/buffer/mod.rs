//! buffer (work in progress).
