//! Opening a segment another process created, after checking it is the one we expect.

use super::{GetFlags, Key, Segment, Stat, get};
use rustix::fs::Mode;
use rustix::io::Errno;

/// What a segment must look like before [`open_verified`] trusts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The user that must own and have created the segment (default: the caller's effective uid).
    pub uid: u32,
    /// The permission bits the segment may have at most (default `0o600`: nobody else may read or write).
    pub allowed_mode: Mode,
    /// The smallest acceptable size in bytes.
    pub min_size: usize,
}

impl Expected {
    /// A segment of at least `min_size` bytes, owned and created by the caller's effective user, mode at most
    /// `0600`.
    pub fn new(min_size: usize) -> Self {
        Self {
            uid: rustix::process::geteuid().as_raw(),
            allowed_mode: Mode::RUSR | Mode::WUSR,
            min_size,
        }
    }

    /// Require another owner and creator.
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = uid;
        self
    }

    /// Allow more permission bits (for example `0o640` to share with a group).
    pub fn allowed_mode(mut self, mode: Mode) -> Self {
        self.allowed_mode = mode;
        self
    }
}

/// Why [`open_verified`] refused a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// The system call failed (for example `ENOENT`: no segment has the key).
    Os(Errno),
    /// The segment's owner or creator is not the expected user: possibly a squatter who created the key first.
    Owner {
        /// The owner uid found.
        uid: u32,
        /// The creator uid found.
        creator_uid: u32,
        /// The uid expected for both.
        expected: u32,
    },
    /// The segment grants permissions beyond those allowed (for example world-writable).
    Mode {
        /// The permission bits found.
        found: Mode,
        /// The most that was allowed.
        allowed: Mode,
    },
    /// The segment is smaller than required.
    TooSmall {
        /// The size found.
        size: usize,
        /// The size required.
        required: usize,
    },
}

impl From<Errno> for VerifyError {
    fn from(e: Errno) -> Self {
        VerifyError::Os(e)
    }
}

impl core::error::Error for VerifyError {}

impl core::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VerifyError::Os(e) => write!(f, "{e}"),
            VerifyError::Owner {
                uid,
                creator_uid,
                expected,
            } => {
                write!(
                    f,
                    "segment owned by uid {uid} (creator {creator_uid}), expected {expected}"
                )
            }
            VerifyError::Mode { found, allowed } => {
                write!(
                    f,
                    "segment mode {:o} exceeds allowed {:o}",
                    found.bits(),
                    allowed.bits()
                )
            }
            VerifyError::TooSmall { size, required } => {
                write!(f, "segment has {size} bytes, need {required}")
            }
        }
    }
}

/// Opens the segment for `key` only if it is owned and created by the expected user, grants no more than the
/// allowed permissions, and is large enough: the defence against key squatting.
///
/// Nothing is attached before the checks pass. The status is read by id after the lookup, so a segment removed
/// and re-created in between is either the one checked or reported as gone.
///
/// # Errors
/// [`VerifyError::Os`] for failed calls (`ENOENT`, `EACCES`, ...), or the check that failed.
pub fn open_verified(key: Key, expected: &Expected) -> Result<Segment, VerifyError> {
    // No access is requested in the lookup: `stat` below checks read permission, and the checks decide the rest.
    let id = get(key, 0, GetFlags::empty(), Mode::empty())?;
    let stat = id.stat()?;
    check(&stat, expected)?;
    Ok(Segment::from_id(id)?)
}

/// The checks of [`open_verified`] against a status.
pub(crate) fn check(stat: &Stat, expected: &Expected) -> Result<(), VerifyError> {
    let own = stat.ownership;
    if own.uid != expected.uid || own.creator_uid != expected.uid {
        return Err(VerifyError::Owner {
            uid: own.uid,
            creator_uid: own.creator_uid,
            expected: expected.uid,
        });
    }
    if !expected.allowed_mode.contains(stat.mode) {
        return Err(VerifyError::Mode {
            found: stat.mode,
            allowed: expected.allowed_mode,
        });
    }
    if stat.size < expected.min_size {
        return Err(VerifyError::TooSmall {
            size: stat.size,
            required: expected.min_size,
        });
    }
    Ok(())
}
