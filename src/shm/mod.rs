//! shm (work in progress).
