//! System V IPC keys.

use core::ffi::CStr;
use rustix::io::Result;

/// A System V IPC key (`key_t`): the name under which processes find a segment.
///
/// Keys are a flat 32-bit namespace shared by every user of the IPC namespace, and predictable: treat a key as a
/// rendezvous, never as a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(i32);

impl Key {
    /// `IPC_PRIVATE`: every `shmget` with it creates a new segment that only its id names. The id is guessable,
    /// so the mode bits still matter.
    pub const PRIVATE: Key = Key(0);

    /// A key from its raw value.
    pub const fn from_raw(raw: i32) -> Self {
        Key(raw)
    }

    /// The raw `key_t` value.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// Whether this is [`Key::PRIVATE`].
    pub const fn is_private(self) -> bool {
        self.0 == 0
    }

    /// The key `ftok(3)` computes for `path` and `proj_id`: `(st_ino & 0xffff) | ((st_dev & 0xff) << 16) |
    /// (proj_id << 24)`, with `stat` following symlinks, as glibc and musl do, so C programs calling `ftok` agree.
    ///
    /// Keys from different files can collide (16 bits of inode, 8 of device), and hard links share a key.
    ///
    /// # Errors
    /// Whatever `stat(2)` returns for `path` (`ENOENT`, `EACCES`, ...).
    pub fn from_path(path: &CStr, proj_id: u8) -> Result<Key> {
        let st = rustix::fs::stat(path)?;
        Ok(Self::from_file_ids(st.st_ino as u64, st.st_dev as u64, proj_id))
    }

    /// The ftok formula over an inode and device number.
    pub(crate) const fn from_file_ids(ino: u64, dev: u64, proj_id: u8) -> Key {
        Key(((ino & 0xffff) | ((dev & 0xff) << 16) | ((proj_id as u64) << 24)) as u32 as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftok_formula_matches_libc() {
        assert_eq!(Key::from_file_ids(0x1234_5678, 0x0803, 0x41).as_raw(), 0x4103_5678);
        // proj_id >= 0x80 makes the key negative, as key_t is signed.
        assert!(Key::from_file_ids(1, 1, 0x80).as_raw() < 0);
        assert!(Key::PRIVATE.is_private());
    }

    #[test]
    fn from_path_is_stable_and_depends_on_proj_id() {
        let a = Key::from_path(c"/", 1).unwrap();
        assert_eq!(a, Key::from_path(c"/", 1).unwrap());
        assert_ne!(a, Key::from_path(c"/", 2).unwrap());
        assert_eq!(Key::from_path(c"/no/such/file", 1), Err(rustix::io::Errno::NOENT));
    }
}
