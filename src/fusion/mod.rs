//! fusion (work in progress).
