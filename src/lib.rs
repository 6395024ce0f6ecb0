//! # shmfusion
//!
//! `#![no_std]`, libc-free System V shared memory for Linux, and lock-free sensor-fusion buffers that live in it.
//!
//! Floors, each using only the ones below it:
//!
//! - [`sys`](crate) (private): the raw `shmget`/`shmat`/`shmdt`/`shmctl` syscalls per architecture and the kernel ABI structs;
//! - [`shm`]: the safe, typed System V shared-memory API (keys, segments, attachments, stat, limits, iteration);
//! - [`object`]: typed shared objects with a validated header, race-free open-or-create and leak-free lifecycles;
//! - [`buffer`]: lock-free rings, latest-value slots, broadcast rings and blocking waits inside shared objects;
//! - [`fusion`]: timestamped samples, time-indexed reads and multi-channel synchronisers;
//! - `rt` (feature `rt`): a minimal runtime for static, libc-free programs (entry point, `mem*`, panic, exit).
//!
//! [`process`] (pid + start-time identities, libc-free fork) serves the floors above `shm`.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
// `--cfg loom` builds only the buffers' models: the tests that use the layout helpers and accessors are left out.
#![cfg_attr(loom, allow(dead_code))]

#[cfg(test)]
extern crate std;

pub(crate) mod sys;

pub mod liveness;
pub mod process;

pub mod buffer;
pub mod fusion;
pub mod object;
pub mod shm;

#[cfg(feature = "rt")]
pub mod rt;

pub use rustix::io::{Errno, Result};

/// Types that may be placed in shared memory and read by another, untrusted process.
///
/// A `Shareable` type has a fixed layout, contains no pointers and no padding bytes, and every bit pattern is a
/// valid value ([`bytemuck::Pod`]), so a value written by a buggy or hostile peer, or a torn copy, can never be
/// undefined behaviour in the reader. Derive it with `#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]`
/// on a `#[repr(C)]` struct.
pub trait Shareable: bytemuck::Pod + Send + Sync {}
impl<T: bytemuck::Pod + Send + Sync> Shareable for T {}

pub use bytemuck;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
