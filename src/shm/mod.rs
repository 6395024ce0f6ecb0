//! Safe System V shared memory: keys, segments, attachments, status, limits and iteration.
//!
//! A thin, typed layer over `shmget(2)`, `shmat(2)`, `shmdt(2)` and `shmctl(2)`, in the style of rustix: errors
//! are [`Errno`](crate::Errno), flags are `bitflags`, each function's docs name the man page and the errno values
//! the kernel documents for it.
//!
//! Secure by default: [`Options`] creates segments with mode `0600` and, through [`Options::create_exclusive`],
//! never silently adopts a segment somebody else made under the same key. Keys are a flat, guessable namespace
//! (even [`Key::PRIVATE`] ids can be guessed), so the mode bits are the only protection: use
//! [`open_verified`] to open a segment another process created, which checks owner, creator, mode and size before
//! anything is attached.
//!
//! ```
//! use shmfusion::shm::{AttachOptions, Key, Options};
//!
//! # fn main() -> shmfusion::Result<()> {
//! // A private segment of 4 KiB, mode 0600, removed when `guard` drops.
//! let segment = Options::new(4096).create_exclusive(Key::PRIVATE)?;
//! let guard = segment.remove_on_drop();
//! let map = segment.attach(AttachOptions::new())?;
//! map.write(0, b"hello")?;
//! let mut back = [0u8; 5];
//! map.read(0, &mut back)?;
//! assert_eq!(&back, b"hello");
//! let stat = segment.stat()?;
//! assert_eq!(stat.size, 4096);
//! assert_eq!(stat.attach_count, 1);
//! drop(map);
//! drop(guard);
//! # Ok(())
//! # }
//! ```

mod attach;
mod flags;
mod info;
mod iter;
mod key;
mod page;
pub mod raw;
mod segment;
mod stat;
pub(crate) mod verify;

pub use attach::{AttachOptions, Attachment};
pub use flags::{AttachFlags, GetFlags, HugePageSize};
pub use info::{Limits, Usage, limits, usage};
pub use iter::{Segments, segments};
pub use key::Key;
pub use page::page_size;
pub use segment::{Options, RemoveGuard, Segment, ShmId, get};
pub use stat::{Ownership, Stat};
pub use verify::{Expected, VerifyError, open_verified};

/// Permission bits (`S_IRUSR`, ...), as [`Options::mode`], [`Expected::allowed_mode`],
/// [`ObjectOptions::mode`](crate::object::ObjectOptions::mode) and [`Stat::mode`] take and give them: rustix's
/// type, re-exported so that users need no rustix dependency of their own.
pub use rustix::fs::Mode;

/// The attach-address alignment of the running system (the kernel's `SHMLBA`).
///
/// It is the page size from the aux vector (`AT_PAGESZ`: 4, 16 or 64 KiB on aarch64 depending on the kernel), times
/// four on arm, whose kernel enforces 16 KiB alignment for attaches at a chosen address unless
/// [`AttachFlags::RND`] is given. Never a hard-coded 4096.
pub fn shmlba() -> usize {
    let page = page_size();
    if cfg!(target_arch = "arm") { page * 4 } else { page }
}
